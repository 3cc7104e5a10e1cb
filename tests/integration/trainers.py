"""Trainers for end-to-end tests; workers load them as `tests.integration.trainers:...` (allowed prefix)."""

from __future__ import annotations

import time
from typing import Any

from trainer_engine.models.classify import ClassificationTrainer


class ExplodingTrainer(ClassificationTrainer):
    """A classifier whose first epoch ends in an error, as a user's buggy callback would."""

    def __init__(self, cfg: Any = None, overrides: Any = None, _callbacks: Any = None) -> None:
        super().__init__(cfg=cfg, overrides=overrides, _callbacks=_callbacks)
        self.add_callback("on_train_epoch_end", _explode)


def _explode(trainer: Any) -> None:
    """Fail the way user code does."""
    raise ValueError(f"exploding on purpose at epoch {trainer.epoch + 1}")


class SlowTrainer(ClassificationTrainer):
    """A classifier slowed down per batch, so tests can act in the middle of a run."""

    def __init__(self, cfg: Any = None, overrides: Any = None, _callbacks: Any = None) -> None:
        super().__init__(cfg=cfg, overrides=overrides, _callbacks=_callbacks)
        self.add_callback("on_train_batch_end", _pause)


def _pause(trainer: Any) -> None:
    """Stand in for a heavier batch."""
    time.sleep(0.1)


class ChattyTrainer(SlowTrainer):
    """A slowed-down classifier that prints a long numbered line after every batch (fills train.log)."""

    def __init__(self, cfg: Any = None, overrides: Any = None, _callbacks: Any = None) -> None:
        super().__init__(cfg=cfg, overrides=overrides, _callbacks=_callbacks)
        self.batches_seen = 0
        self.add_callback("on_train_batch_end", _chatter)


def _chatter(trainer: Any) -> None:
    """Print one ~1 KB line naming the batch."""
    trainer.batches_seen += 1
    print(f"chatty batch {trainer.batches_seen} " + "x" * 1000, flush=True)
