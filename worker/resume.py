"""On resume, write what an earlier attempt left unwritten, and re-emit the checkpoint epoch's events.

An attempt stopped while the database was away leaves its unwritten events in its spool file
(worker.emitter); the next attempt writes them first, in order, under its own lease. Epoch events
past the checkpoint are dropped: that epoch is trained again and reports anew.

The trainer writes last.pt before on_fit_epoch_end fires; a worker killed between the two leaves an
epoch whose events were never stored, and the resumed run starts at the next epoch. The checkpoint
holds that epoch's numbers, so its events are emitted again from it; the dedupe keys make this a
no-op when they were stored after all. The checkpoint is read only through the engine's
`read_summary`, which knows the keys the trainer writes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from worker.bridge import CHECKPOINT_EPOCH_EVENTS, EPOCH_EVENTS, EventBridge, dedupe_key, plain
from worker.emitter import EventItem, read_spool

if TYPE_CHECKING:
    from trainer_engine.utils.checkpoint import CheckpointSummary

log = logging.getLogger(__name__)


def checkpoint_summary(last_pt: Path) -> CheckpointSummary | None:
    """Return the summary of a checkpoint with at least one completed epoch, or None."""
    # Imports torch: only a resuming child pays for it (the supervisor never calls this).
    from trainer_engine.utils.checkpoint import read_summary

    try:
        summary = read_summary(last_pt)
    except Exception as exc:  # a torn or foreign file: the resumed run will say more
        log.warning("cannot read %s to re-emit its epoch: %s", last_pt, exc)
        return None
    # Saved by a run stopped inside its first epoch: no epoch ended, nothing to re-emit.
    return summary if summary.epoch >= 1 else None


def reemit_checkpoint_epoch(bridge: EventBridge, trainer: Any, last_pt: Path) -> int:
    """Queue the checkpoint epoch's epoch-end events again; return how many were queued."""
    summary = checkpoint_summary(last_pt)
    if summary is None:
        return 0
    values = {
        "epoch": summary.epoch,
        "epochs": summary.epochs or getattr(trainer, "epochs", None),
        "metrics": summary.metrics or None,
        "fitness": summary.fitness,
        "best_fitness": summary.best_fitness,
        "losses": summary.losses,
        "lr": summary.lr,
    }
    data = {k: v for k, v in plain(values).items() if v is not None}
    data["resumed_from_checkpoint"] = True
    run_files = {"last": bridge.run_dir.relative(last_pt)}
    if bridge.run_dir.best.is_file():
        run_files["best"] = bridge.run_dir.relative(bridge.run_dir.best)
    for event in CHECKPOINT_EPOCH_EVENTS:
        event_data = {**data, **run_files} if event != "on_train_epoch_end" else dict(data)
        key = dedupe_key(event, summary.epoch, bridge.attempt)
        bridge.emitter.event(EventItem(event, event_data, key))
    return len(CHECKPOINT_EPOCH_EVENTS)


def replay_spools(bridge: EventBridge, attempt: int, last_pt: Path | None) -> int:
    """Queue the events earlier attempts left in their spools, oldest first; return how many.

    The files are removed once their events are kept by this attempt (written, or in its own spool).
    """
    earlier = {n: path for n, path in bridge.run_dir.spools().items() if n < attempt}
    if not earlier:
        return 0
    done_epoch = _checkpoint_epoch(last_pt)
    queued = 0
    for path in earlier.values():
        for item in read_spool(path):
            epoch = item.data.get("epoch")
            if (
                done_epoch is not None
                and item.type in EPOCH_EVENTS
                and isinstance(epoch, int)
                and epoch > done_epoch
            ):
                continue  # trained again by this attempt
            bridge.emitter.event(item)
            queued += 1
    if bridge.emitter.flush():
        for path in earlier.values():
            path.unlink(missing_ok=True)
    log.info("replayed %d event(s) left by earlier attempts", queued)
    return queued


def _checkpoint_epoch(last_pt: Path | None) -> int | None:
    """Return the last completed epoch of the checkpoint (0: none), or None when it cannot be read."""
    if last_pt is None or not last_pt.is_file():
        return 0
    from trainer_engine.utils.checkpoint import read_summary

    try:
        return int(read_summary(last_pt).epoch)
    except Exception as exc:  # unknown: keep every spooled event rather than lose one
        log.warning("cannot read %s to sort out the spooled events: %s", last_pt, exc)
        return None
