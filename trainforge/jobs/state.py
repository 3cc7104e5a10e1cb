"""The job state machine: allowed transitions between statuses, and the one guarded UPDATE that moves a job.

    queued ──▶ running ──▶ succeeded | failed
      │          │ ╲──▶ retrying ──▶ running ...        (stale lease: the reaper re-queues)
      │          ╰──▶ cancelling ──▶ cancelled          (cancel while running)
      ╰──▶ cancelled                                    (cancel before it runs; also from retrying)

A transition is a single `UPDATE jobs SET status=:to WHERE id=:id AND status IN (:from...)`, so two
processes racing one job cannot both move it: exactly one UPDATE matches the row.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from trainforge.db.models import Job
from trainforge.db.types import db_now
from trainforge.vocab import TERMINAL, JobStatus

S = JobStatus

TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    S.QUEUED: frozenset({S.RUNNING, S.CANCELLED, S.FAILED}),
    S.RETRYING: frozenset({S.RUNNING, S.CANCELLED, S.FAILED}),
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLING, S.CANCELLED, S.RETRYING}),
    # Training may finish or fail before it notices the cancel; a dead worker leaves it cancelled.
    S.CANCELLING: frozenset({S.CANCELLED, S.SUCCEEDED, S.FAILED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}


class TransitionError(ValueError):
    """A transition the state machine does not allow (a programming error, not a lost race)."""


def can_transition(from_: JobStatus | str, to: JobStatus | str) -> bool:
    """Return whether the state machine allows moving from `from_` to `to`."""
    return JobStatus(to) in TRANSITIONS[JobStatus(from_)]


def sources(to: JobStatus | str) -> frozenset[JobStatus]:
    """Return every status from which `to` can be reached."""
    target = JobStatus(to)
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


def transition(
    session: Session,
    job_id: str,
    to: JobStatus | str,
    *,
    from_: JobStatus | str | Iterable[JobStatus | str] | None = None,
    owner: str | None = None,
    values: dict[str, Any] | None = None,
    where: Iterable[ColumnElement[bool]] = (),
) -> bool:
    """Move job `job_id` to `to` if its status is in `from_` (default: any allowed); return if it moved.

    `owner` also requires `jobs.lease_owner == owner` (only the lease holder may finish its job);
    `values` are further columns to set in the same UPDATE; `where` adds guard conditions.
    Entering `running` stamps started_at (first time only); entering a terminal status stamps
    finished_at and clears the lease. Never commits.
    """
    target = JobStatus(to)
    if from_ is None:
        allowed = sources(target)
    elif isinstance(from_, str):
        allowed = frozenset({JobStatus(from_)})
    else:
        allowed = frozenset(JobStatus(s) for s in from_)
    bad = sorted(s for s in allowed if not can_transition(s, target))
    if bad:
        raise TransitionError(f"job status cannot go from {', '.join(bad)} to {target}")
    # The database's clock: leases and the re-send of waiting jobs compare these with db_now().
    now = db_now()
    changes: dict[str, Any] = {"status": target.value, "updated_at": now}
    if target is S.RUNNING:
        changes["started_at"] = _coalesce_now(now)
    if target in TERMINAL:
        changes.update(finished_at=now, lease_owner=None)
    changes.update(values or {})
    stmt = (
        update(Job)
        .where(Job.id == job_id, Job.status.in_([s.value for s in allowed]), *where)
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    if owner is not None:
        stmt = stmt.where(Job.lease_owner == owner)
    result = session.execute(stmt)
    moved = result.rowcount == 1  # type: ignore[attr-defined]
    if moved:
        _refresh_identity(session, job_id)
    return moved


def _coalesce_now(now: ColumnElement[datetime]) -> ColumnElement[datetime]:
    """Return an SQL expression keeping started_at when set (a resumed run started earlier)."""
    return func.coalesce(Job.started_at, now)


def _refresh_identity(session: Session, job_id: str) -> None:
    """Expire a loaded Job so attribute reads see the UPDATE (the UPDATE bypassed the ORM)."""
    job = session.identity_map.get(identity_key(Job, job_id))
    if job is not None:
        session.expire(job)
