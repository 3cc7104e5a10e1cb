"""The run description: built once by the supervisor after it took the lease, handed to the child once.

The child learns everything about its run from this object, never from the job row or the
environment: the fork server passes it in the fork request, a fresh interpreter (or every
torchrun rank) reads it from the run folder's spec file, named on its command line.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trainforge.rundir import RunDir


@dataclass(frozen=True)
class RunSpec:
    """One attempt of one job, as decided by its supervisor."""

    job_id: str
    attempt: int
    # Who holds the lease for this attempt; with `attempt` it names the writer of every change.
    lease_owner: str
    trainer_ref: str
    # What the trainer is built with: the job's overrides, their file references resolved for its
    # tenant (never the values the tenant wrote), plus the run folder and `resume`.
    overrides: dict[str, Any]
    resume: bool
    world_size: int
    run_dir: RunDir
    # The process whose death must end this run (fresh interpreters cannot inherit a connection).
    supervisor_pid: int = field(default_factory=os.getpid)
    # Where the engine writes label caches (the worker's cache dir, never a dataset folder).
    label_cache_dir: str | None = None

    @classmethod
    def build(
        cls,
        *,
        job_id: str,
        attempt: int,
        lease_owner: str,
        trainer_ref: str,
        overrides: dict[str, Any],
        gpus: int,
        run_dir: RunDir,
    ) -> RunSpec:
        """Decide the run: resume when last.pt exists, train in `run`, one process per GPU."""
        # Decided here once for every rank: a rank must not see a last.pt another rank just wrote.
        resume = run_dir.last.is_file()
        full = {**overrides, **run_dir.trainer_overrides()}
        if resume:
            full["resume"] = True
        return cls(
            job_id=job_id,
            attempt=attempt,
            lease_owner=lease_owner,
            trainer_ref=trainer_ref,
            overrides=full,
            resume=resume,
            world_size=max(gpus, 1),
            run_dir=run_dir,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as JSON-able values."""
        return {**asdict(self), "run_dir": str(self.run_dir.path)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSpec:
        """Rebuild a spec from `to_dict()`'s values."""
        return cls(**{**data, "run_dir": RunDir(Path(data["run_dir"]))})

    def write(self) -> Path:
        """Write the spec file of the run folder atomically; return its path."""
        target = self.run_dir.spec
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_dict()))
        os.replace(tmp, target)
        return target

    @classmethod
    def read(cls, path: str | Path) -> RunSpec:
        """Read a spec file written by `write()`."""
        return cls.from_dict(json.loads(Path(path).read_text()))
