"""The whole ordered list of trainer events of real runs equals the one `trainer_event_order` spells out."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from classify_helpers import tiny_overrides

from trainer_engine.cfg.events import TRAINER_EVENTS
from trainer_engine.engine.callbacks import trainer_event_order
from trainer_engine.models.classify import ClassificationTrainer
from trainer_engine.utils.checkpoint import load_checkpoint, read_summary

BATCHES = 4  # tiny_overrides: 64 images in batches of 16


def record(trainer: ClassificationTrainer) -> list[str]:
    """Append the name of every trainer event the trainer fires to the returned list."""
    seen: list[str] = []
    for event in TRAINER_EVENTS:
        trainer.add_callback(event, lambda t, e=event: seen.append(e))
    return seen


def test_a_normal_run_with_gradient_accumulation(tmp_path: Path) -> None:
    # nbs 32 over batches of 16: a step every second batch (no warm-up, which would ramp accumulate in).
    trainer = ClassificationTrainer(overrides=tiny_overrides(tmp_path, epochs=2, nbs=32, warmup_epochs=0))
    seen = record(trainer)
    trainer.train()
    assert trainer.accumulate == 2
    assert seen == trainer_event_order(epochs=2, batches=BATCHES, accumulate=2)
    assert trainer.stop_reason is None


def test_a_run_stopped_inside_an_epoch(tmp_path: Path) -> None:
    trainer = ClassificationTrainer(overrides=tiny_overrides(tmp_path, epochs=3))
    seen = record(trainer)

    def stop_at_second_batch_of_second_epoch(t: ClassificationTrainer) -> None:
        if t.epoch == 1 and seen.count("on_train_batch_end") == BATCHES + 2:
            t.stop = True

    trainer.add_callback("on_train_batch_end", stop_at_second_batch_of_second_epoch)
    trainer.train()
    assert seen == trainer_event_order(epochs=3, batches=BATCHES, stopped_at=(1, 1))
    assert trainer.stop_reason == "stop" and load_checkpoint(trainer.last)["epoch"] == 0


def test_a_run_stopped_at_the_last_batch_of_an_epoch_completes_it(tmp_path: Path) -> None:
    trainer = ClassificationTrainer(overrides=tiny_overrides(tmp_path, epochs=3))
    seen = record(trainer)
    trainer.add_callback(
        "on_train_batch_end", lambda t: setattr(t, "stop", seen.count("on_train_batch_end") == 4)
    )
    trainer.train()
    assert seen == trainer_event_order(epochs=3, batches=BATCHES, stopped_at=(0, BATCHES - 1))
    assert load_checkpoint(trainer.last)["epoch"] == 0


def test_a_resumed_run(tmp_path: Path) -> None:
    ClassificationTrainer(overrides=tiny_overrides(tmp_path, epochs=2)).train()
    resumed = ClassificationTrainer(overrides={**tiny_overrides(tmp_path, epochs=3), "resume": True})
    seen = record(resumed)
    resumed.train()
    assert seen == trainer_event_order(epochs=3, batches=BATCHES, start_epoch=2)
    assert load_checkpoint(resumed.last)["epoch"] == 2


def test_a_resume_of_a_finished_run_trains_nothing_and_reports_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = ClassificationTrainer(overrides=tiny_overrides(tmp_path, epochs=2))
    first.train()
    before = read_summary(first.last)
    resumed = ClassificationTrainer(overrides={**tiny_overrides(tmp_path, epochs=2), "resume": True})
    seen = record(resumed)
    with caplog.at_level(logging.INFO, logger="trainer_engine"):
        resumed.train()
    assert seen == trainer_event_order(epochs=2, batches=BATCHES, start_epoch=2)
    assert [r.getMessage() for r in caplog.records if "nothing left to train" in r.getMessage()] == [
        f"{first.last} holds all 2 epochs: nothing left to train (pass a larger epochs to train on)"
    ]
    assert (resumed.epoch, resumed.epochs, resumed.stop_reason) == (1, 2, None)
    assert (resumed.best, resumed.last) == (first.best, first.last)
    assert resumed.metrics == before.metrics and resumed.fitness == before.fitness
    assert read_summary(resumed.last) == before  # nothing was trained or re-saved
