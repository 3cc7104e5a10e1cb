"""Bridge every trainer callback to a job event (rank 0 only); per-batch events become throttled progress.

Each event carries that moment's epoch (1-based), epochs, losses, lr and, once validated, metrics,
fitness, best_fitness and the checkpoint paths. Epoch events use the dedupe key "<type>:<epoch>", so
a resumed run never stores one twice; run-wide events are keyed by attempt. A trainer that fires
`on_fit_epoch_end` again for an epoch (some re-fire it after their final evaluation) is reported
once per epoch: the repeat is dropped here, before it could reach a subscriber.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

from trainer_engine.cfg.events import BATCH_EVENTS, TRAINER_EVENTS
from trainforge.jobs.fence import LeaseLostError
from trainforge.rundir import RunDir
from worker.emitter import Emitter, EventItem

EPOCH_EVENTS = frozenset(
    {"on_train_epoch_start", "on_train_epoch_end", "on_model_save", "on_fit_epoch_end", "on_params_update"}
)
# Events at which trainer.metrics belong to the current epoch (validation already ran).
VALIDATED_EVENTS = frozenset({"on_model_save", "on_fit_epoch_end", "on_params_update", "on_train_end"})
# What an epoch cut short by a stop still fires; a resumed run trains that epoch again and fires them anew.
CUT_EPOCH_EVENTS = frozenset({"on_model_save", "on_params_update"})
# The epoch-end events re-emitted from last.pt after a resume, in order (see worker/resume.py).
CHECKPOINT_EPOCH_EVENTS = ("on_train_epoch_end", "on_model_save", "on_fit_epoch_end")
PROGRESS_INTERVAL_S = 0.5

log = logging.getLogger(__name__)


def plain(value: Any) -> Any:
    """Turn tensors, numpy values and paths into plain values (the service's JSON writer nulls NaN)."""
    if hasattr(value, "tolist"):  # torch tensors and numpy arrays/scalars, without importing either
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def dedupe_key(event: str, epoch: int | None, attempt: int) -> str:
    """Return the key that makes re-emitting an event a no-op."""
    if event in EPOCH_EVENTS and epoch is not None:
        return f"{event}:{epoch}"
    return f"{event}:attempt-{attempt}"


class EventBridge:
    """Callbacks that turn a trainer's events into job events and progress updates."""

    def __init__(self, emitter: Emitter, run_dir: RunDir, attempt: int = 1) -> None:
        self.emitter = emitter
        self.run_dir = run_dir
        self.attempt = attempt
        self.first_batch_at: float | None = None
        self._batch = 0
        self._last_progress = 0.0
        self._epoch_ended = False
        self._fit_epochs: set[int] = set()

    def attach(self, trainer: Any) -> None:
        """Add this bridge's callbacks to every trainer event."""
        for event in TRAINER_EVENTS:
            if event == "on_train_batch_start":
                trainer.add_callback(event, self._on_batch_start)
            elif event == "on_train_batch_end":
                trainer.add_callback(event, self._on_batch_end)
            elif event not in BATCH_EVENTS:
                trainer.add_callback(event, partial(self._on_event, event))

    def _on_event(self, event: str, trainer: Any) -> None:
        """Queue a job event for `event` with the trainer's state at this moment."""
        if event == "on_train_epoch_end":
            self._epoch_ended = True
        if event == "on_train_epoch_start":
            self._batch = 0
            self._epoch_ended = False
            # Every earlier epoch's events are stored (or spooled) before this epoch can write last.pt, so
            # a crash can only lose the checkpoint epoch's, which a resumed run re-emits (worker/resume.py).
            if not self.emitter.flush():
                log.warning("the previous epoch's events are not kept yet; training goes on")
        data = self.snapshot(trainer, event)
        epoch = data.get("epoch") if event in EPOCH_EVENTS else None
        if event == "on_fit_epoch_end" and epoch is not None:
            if epoch in self._fit_epochs:
                return  # re-fired for an epoch already reported (e.g. after a final evaluation)
            self._fit_epochs.add(epoch)
        key = dedupe_key(event, epoch, self.attempt)
        if event in CUT_EPOCH_EVENTS and not self._epoch_ended:
            # Keyed by epoch alone, the cut epoch's events would shadow those of its resumed, full run.
            key = f"{key}:cut-attempt-{self.attempt}"
        self.emitter.event(EventItem(event, data, key, job_values=self._job_values(event, data)))
        if event == "on_train_epoch_end":
            self._check_fence()

    def _check_fence(self) -> None:
        """Stop the run before its epoch writes results.csv and checkpoints if its lease has moved on.

        The run folder is shared by the job's attempts, and files have no fence of their own: a run
        frozen past its lease and woken again (SIGSTOP, a long GC pause of its host) would otherwise
        write its older last.pt and best.pt over those of the attempt that took the job over. The
        epoch's event is the write that finds out: refused by the database once the lease moved.
        """
        self.emitter.flush()
        if self.emitter.fenced:
            raise LeaseLostError(
                "the lease passed to another attempt; this run stops before writing its epoch"
            )

    def _on_batch_start(self, trainer: Any) -> None:
        """Note when the first batch starts (dispatch latency is measured up to here)."""
        if self.first_batch_at is None:
            self.first_batch_at = time.time()

    def _on_batch_end(self, trainer: Any) -> None:
        """Count the batch; at most every PROGRESS_INTERVAL_S store the progress on the job."""
        self._batch += 1
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_INTERVAL_S:
            return
        self._last_progress = now
        loader = getattr(trainer, "train_loader", None)
        progress = {
            "epoch": _epoch(trainer),
            "epochs": getattr(trainer, "epochs", None),
            "batch": self._batch,
            "batches": _len(loader),
            "losses": _losses(trainer),
        }
        self.emitter.progress(plain(progress))

    def snapshot(self, trainer: Any, event: str) -> dict[str, Any]:
        """Return the event data: epoch (1-based), epochs, losses, lr and, once validated, metrics."""
        data: dict[str, Any] = {"epoch": _epoch(trainer), "epochs": getattr(trainer, "epochs", None)}
        if event not in {"on_pretrain_routine_start", "on_train_epoch_start"}:
            data["losses"] = _losses(trainer)
            data["lr"] = getattr(trainer, "lr", None)
        if event in VALIDATED_EVENTS:
            data["metrics"] = getattr(trainer, "metrics", None)
            data["fitness"] = getattr(trainer, "fitness", None)
            data["best_fitness"] = getattr(trainer, "best_fitness", None)
            data.update(self.paths(trainer))
        if event == "on_train_start":
            # Where this attempt trains from: 1, or the epoch after its checkpoint when it resumed.
            start = getattr(trainer, "start_epoch", None)
            data["first_epoch"] = None if start is None else int(start) + 1
        if event == "on_train_end":
            data["stop_reason"] = getattr(trainer, "stop_reason", None)
        return {k: v for k, v in plain(data).items() if v is not None}

    def paths(self, trainer: Any) -> dict[str, str]:
        """Return best/last as paths relative to the run directory, for the files that exist."""
        found = {}
        for key in ("best", "last"):
            path = getattr(trainer, key, None)
            if path is not None and Path(path).is_file():
                found[key] = self.run_dir.relative(path)
        return found

    @staticmethod
    def _job_values(event: str, data: dict[str, Any]) -> dict[str, Any]:
        """Return the job columns an event updates (what GET /v1/jobs/{id} shows)."""
        values: dict[str, Any] = {}
        if event in EPOCH_EVENTS or event in VALIDATED_EVENTS:
            values = {"epoch": data.get("epoch"), "epochs": data.get("epochs")}
        if event in VALIDATED_EVENTS:
            values.update(metrics=data.get("metrics"), best_path=data.get("best"), last_path=data.get("last"))
        return {k: v for k, v in values.items() if v is not None}


def _epoch(trainer: Any) -> int | None:
    """Return the trainer's current epoch, 1-based."""
    epoch = getattr(trainer, "epoch", None)
    return None if epoch is None else int(epoch) + 1


def _losses(trainer: Any) -> dict[str, Any] | None:
    """Return the epoch's running mean losses by name, or None before the first batch."""
    tloss = getattr(trainer, "tloss", None)
    if tloss is None:
        return None
    try:
        items = trainer.label_loss_items(tloss, prefix="train")
    except (AttributeError, TypeError, ValueError):
        return None
    return items if isinstance(items, dict) else None


def _len(obj: Any) -> int | None:
    """Return len(obj), or None when it has none."""
    try:
        return len(obj)
    except TypeError:
        return None
