"""How a training run ended, as the child leaves it for its supervisor: one small JSON file per run.

The exit code says whether train() returned; this file says the rest (why it stopped, the
trainer's error message, best/last, timings) without the supervisor parsing logs.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from trainforge.rundir import RunDir


@dataclass
class Outcome:
    """What the child reports: ok (train() returned), stop_reason, error ("Type: message"), paths, timings."""

    ok: bool = False
    stop_reason: str | None = None
    error: str | None = None
    epoch: int | None = None
    epochs: int | None = None
    metrics: dict[str, Any] | None = None
    best: str | None = None
    last: str | None = None
    timings: dict[str, float] = field(default_factory=dict)


def write_outcome(run: RunDir, outcome: Outcome) -> None:
    """Write the outcome atomically (a reader never sees half a file)."""
    run.path.mkdir(parents=True, exist_ok=True)
    tmp = run.outcome.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(outcome), default=str))
    os.replace(tmp, run.outcome)


def read_outcome(run: RunDir) -> Outcome | None:
    """Return the outcome of the last run in `run`, or None when the child left none."""
    try:
        data = json.loads(run.outcome.read_text())
    except (OSError, ValueError):
        return None
    known = {k: v for k, v in data.items() if k in Outcome.__dataclass_fields__}
    return Outcome(**known)


def clear_outcome(run: RunDir) -> None:
    """Remove the outcome of an earlier attempt before a new child starts."""
    run.outcome.unlink(missing_ok=True)
