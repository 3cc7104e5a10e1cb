"""On resume, re-emit the checkpoint epoch's events that a crash may have lost.

The trainer writes last.pt before on_fit_epoch_end fires; a worker killed between the two leaves an
epoch whose events were never stored, and the resumed run starts at the next epoch. The checkpoint
holds that epoch's numbers, so its events are emitted again from it; the dedupe keys make this a
no-op when they were stored after all.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from worker.bridge import CHECKPOINT_EPOCH_EVENTS, EventBridge, dedupe_key, plain
from worker.emitter import EventItem

log = logging.getLogger(__name__)


def checkpoint_summary(last_pt: Path) -> dict[str, Any] | None:
    """Return the plain values of a checkpoint (epoch 1-based, metrics, fitness), or None if unreadable."""
    import torch  # the child has it already; the supervisor never calls this

    try:
        ckpt = torch.load(last_pt, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file: the resumed run will say more
        log.warning("cannot read %s to re-emit its epoch: %s", last_pt, exc)
        return None
    if not isinstance(ckpt, dict) or ckpt.get("epoch") is None:
        return None
    if int(ckpt["epoch"]) < 0:
        return None  # saved by a run stopped inside its first epoch: no epoch ended, nothing to re-emit
    train_args = ckpt.get("train_args") or {}
    metrics = ckpt.get("train_metrics") or ckpt.get("metrics") or {}
    summary = {
        "epoch": int(ckpt["epoch"]) + 1,
        "epochs": ckpt.get("epochs") or train_args.get("epochs"),
        "metrics": {k: v for k, v in metrics.items() if k != "fitness"} or None,
        "fitness": metrics.get("fitness", ckpt.get("fitness")),
        "best_fitness": ckpt.get("best_fitness"),
        "losses": ckpt.get("losses") or ckpt.get("train_losses"),
        "lr": ckpt.get("lr"),
    }
    return {k: v for k, v in plain(summary).items() if v is not None}


def reemit_checkpoint_epoch(bridge: EventBridge, trainer: Any, last_pt: Path) -> int:
    """Queue the checkpoint epoch's epoch-end events again; return how many were queued."""
    summary = checkpoint_summary(last_pt)
    if summary is None:
        return 0
    summary.setdefault("epochs", getattr(trainer, "epochs", None))
    data = {**summary, "resumed_from_checkpoint": True}
    run_files = {"last": bridge.run_dir.relative(last_pt)}
    if bridge.run_dir.best.is_file():
        run_files["best"] = bridge.run_dir.relative(bridge.run_dir.best)
    for event in CHECKPOINT_EPOCH_EVENTS:
        event_data = {**data, **run_files} if event != "on_train_epoch_end" else dict(data)
        key = dedupe_key(event, summary["epoch"], bridge.attempt)
        bridge.emitter.event(EventItem(event, event_data, key))
    return len(CHECKPOINT_EPOCH_EVENTS)
