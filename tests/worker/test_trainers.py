"""The torch-free test trainer fires exactly the event sequence of the engine's own order helper."""

from __future__ import annotations

import pytest
from trainers import TickTrainer  # tests/worker/trainers.py

from trainer_engine.cfg.events import TRAINER_EVENTS
from trainer_engine.engine.callbacks import trainer_event_order


def record(tmp_path, **overrides) -> tuple[TickTrainer, list[str]]:
    """Train a TickTrainer in tmp_path/job with a recorder on every trainer event; return both."""
    trainer = TickTrainer(overrides={"project": str(tmp_path), "name": "job", **overrides})
    fired: list[str] = []
    for event in TRAINER_EVENTS:
        trainer.add_callback(event, lambda _trainer, event=event: fired.append(event))
    trainer.train()
    return trainer, fired


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"epochs": 2, "batches": 3}, {"epochs": 2, "batches": 3}),
        ({"epochs": 3, "batches": 3, "stop_in_epoch": 2}, {"epochs": 3, "batches": 3, "stopped_at": (1, 0)}),
        ({"epochs": 2, "batches": 1, "stop_in_epoch": 1}, {"epochs": 2, "batches": 1, "stopped_at": (0, 0)}),
    ],
    ids=["whole run", "stopped inside an epoch", "stopped at an epoch's last batch"],
)
def test_a_run_fires_the_engines_sequence(tmp_path, overrides, expected):
    assert record(tmp_path, batch_s=0, **overrides)[1] == trainer_event_order(**expected)


def test_a_resumed_run_fires_the_engines_sequence_from_its_checkpoint(tmp_path):
    record(tmp_path, epochs=1, batches=2, batch_s=0)
    trainer, fired = record(tmp_path, epochs=3, batches=2, batch_s=0, resume=True)
    assert fired == trainer_event_order(epochs=3, batches=2, start_epoch=1)
    assert trainer.epoch == 2


def test_resuming_a_finished_run_trains_nothing_and_keeps_its_result(tmp_path):
    record(tmp_path, epochs=2, batches=2, batch_s=0)
    trainer, fired = record(tmp_path, epochs=2, batches=2, batch_s=0, resume=True)
    assert fired == trainer_event_order(epochs=2, batches=2, start_epoch=2)
    assert (trainer.epoch, trainer.epochs, trainer.stop_reason) == (1, 2, None)
    assert trainer.metrics == {"metrics/accuracy_top1": 1.0} and trainer.best_fitness == 2.0
