"""The fence of a run: the lease owner and attempt that every write of that run is guarded by.

A supervisor that lost its lease (it froze, or lost the database past the lease timeout) may still
have a training child that writes. Each of those writes is one UPDATE of the job row that also
requires `lease_owner` and `attempt` to be the run's, so once the reaper or another worker moved
the job on, the stale run's writes match no row and are refused instead of merged.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement

from trainforge.db.models import Job


class LeaseLostError(RuntimeError):
    """A write of a run whose lease has passed to another run (or ended)."""


@dataclass(frozen=True)
class Fence:
    """The lease a run's writes are made under."""

    owner: str
    attempt: int

    def guard(self) -> list[ColumnElement[bool]]:
        """Return the conditions a job row must meet for this run to write it."""
        return [Job.lease_owner == self.owner, Job.attempt == self.attempt]
