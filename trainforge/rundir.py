"""The one owner of a run folder's layout, shared by the worker and the API (no torch here).

    <artifacts_dir>/<job_id>/       the engine's save_dir (project=<artifacts_dir>, name=<job_id>)
        weights/last.pt             written after every epoch; a resumed run starts from it
        weights/best.pt             the best epoch so far
        results.csv                 one row per completed epoch (written by the engine)
        train.log                   the training child's stdout and stderr, appended across attempts
        .runspec.json               the run description a fresh-interpreter child reads (worker.runspec)
        .outcome.json               how the last attempt ended, written by the child (worker.outcome)
        .events-<attempt>.spool     events an attempt could not write yet, in order (worker.emitter);
                                    the next attempt writes what an attempt left behind

The engine writes the first three itself from `project`/`name`; `trainer_overrides()` is the one
place that points it here, so the names below and the engine's agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

WEIGHTS = "weights"
LAST = f"{WEIGHTS}/last.pt"
BEST = f"{WEIGHTS}/best.pt"
RESULTS = "results.csv"
LOG = "train.log"
SPEC = ".runspec.json"
OUTCOME = ".outcome.json"
SPOOL_PREFIX, SPOOL_SUFFIX = ".events-", ".spool"
# The short names the API lists and serves the checkpoints under.
ARTIFACT_ALIASES = {"best.pt": BEST, "last.pt": LAST}


@dataclass(frozen=True)
class RunDir:
    """The folder of one job's run and the paths of the files in it."""

    path: Path

    @classmethod
    def of(cls, artifacts_dir: str | Path, job_id: str) -> RunDir:
        """Return the run folder of `job_id` under `artifacts_dir`."""
        return cls(Path(artifacts_dir) / job_id)

    @property
    def weights(self) -> Path:
        """Return the folder of the checkpoints."""
        return self.path / WEIGHTS

    @property
    def last(self) -> Path:
        """Return the checkpoint of the last completed epoch."""
        return self.path / LAST

    @property
    def best(self) -> Path:
        """Return the checkpoint of the best epoch."""
        return self.path / BEST

    @property
    def results(self) -> Path:
        """Return the engine's per-epoch results table."""
        return self.path / RESULTS

    @property
    def log(self) -> Path:
        """Return the training log."""
        return self.path / LOG

    @property
    def spec(self) -> Path:
        """Return the run description handed to a fresh-interpreter child."""
        return self.path / SPEC

    @property
    def outcome(self) -> Path:
        """Return the file in which the child reports how the run ended."""
        return self.path / OUTCOME

    def spool(self, attempt: int) -> Path:
        """Return the file in which attempt `attempt` keeps the events the database has not taken yet."""
        return self.path / f"{SPOOL_PREFIX}{attempt}{SPOOL_SUFFIX}"

    def spools(self) -> dict[int, Path]:
        """Return the spool files in the folder by attempt."""
        found = {}
        for path in self.path.glob(f"{SPOOL_PREFIX}*{SPOOL_SUFFIX}"):
            number = path.name[len(SPOOL_PREFIX) : -len(SPOOL_SUFFIX)]
            if number.isdigit():
                found[int(number)] = path
        return dict(sorted(found.items()))

    def trainer_overrides(self) -> dict[str, str | bool]:
        """Return the overrides that make the engine's save_dir this folder (and reuse it on resume)."""
        return {"project": str(self.path.parent), "name": self.path.name, "exist_ok": True}

    def relative(self, path: str | Path) -> str:
        """Return `path` relative to this folder (posix), or as given when it lies outside."""
        try:
            return Path(path).resolve().relative_to(self.path.resolve()).as_posix()
        except ValueError:
            return str(path)
