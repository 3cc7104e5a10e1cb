"""The callback → event bridge, driven by a real (torch-free) trainer in this process."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from trainers import TickTrainer  # tests/worker/trainers.py

from trainer_engine.cfg.events import BATCH_EVENTS
from trainer_engine.engine.callbacks import trainer_event_order
from trainforge.rundir import RunDir
from worker import bridge as bridge_module
from worker.bridge import EPOCH_EVENTS, EventBridge, dedupe_key, plain
from worker.emitter import EventItem


class Recorder:
    """Collects what the bridge would write (the Emitter's two entry points)."""

    def __init__(self) -> None:
        self.events: list[EventItem] = []
        self.progress: list[dict] = []

    def event(self, item: EventItem) -> None:
        self.events.append(item)

    def progress_update(self, progress: dict) -> None:
        self.progress.append(progress)


@pytest.fixture
def run(tmp_path, monkeypatch):
    """Train a TickTrainer with the bridge attached; return the recorder."""

    def go(**overrides):
        recorder = Recorder()
        recorder.progress = []
        emitter = type(
            "E",
            (),
            {
                "event": recorder.event,
                "progress": recorder.progress_update,
                "flush": lambda self: True,
                "fenced": False,
            },
        )()
        trainer = TickTrainer(overrides={"project": str(tmp_path), "name": "job", **overrides})
        EventBridge(emitter, RunDir.of(tmp_path, "job"), attempt=2).attach(trainer)
        trainer.train()
        return recorder

    return go


def test_every_non_batch_event_is_bridged_in_order_with_one_based_epochs(run):
    recorder = run(epochs=2, batches=2)
    types = [e.type for e in recorder.events]
    assert not set(types) & BATCH_EVENTS
    assert types == [e for e in trainer_event_order(epochs=2, batches=2) if e not in BATCH_EVENTS]
    fit = [e for e in recorder.events if e.type == "on_fit_epoch_end"]
    assert [e.data["epoch"] for e in fit] == [1, 2]
    assert all(e.data["epochs"] == 2 for e in fit)
    assert fit[1].data["metrics"] == {"metrics/accuracy_top1": 1.0}
    assert fit[1].data["fitness"] == 2.0 and fit[1].data["best_fitness"] == 2.0
    assert fit[1].data["last"] == "weights/last.pt" and fit[1].data["best"] == "weights/best.pt"
    assert "train/loss" in fit[0].data["losses"] and fit[0].data["lr"] == {"lr/pg0": 0.01}


def test_epoch_events_are_keyed_by_epoch_and_run_events_by_attempt(run):
    recorder = run(epochs=2, batches=1)
    keys = Counter(e.dedupe_key for e in recorder.events)
    assert max(keys.values()) == 1
    assert "on_fit_epoch_end:1" in keys and "on_fit_epoch_end:2" in keys
    assert "on_train_start:attempt-2" in keys


def test_an_epoch_cut_by_a_stop_keys_its_events_apart_from_its_resumed_run(run):
    recorder = run(epochs=3, batches=2, stop_in_epoch=2)
    second = [e for e in recorder.events if e.data.get("epoch") == 2 and e.type in EPOCH_EVENTS]
    assert [(e.type, e.dedupe_key) for e in second] == [
        ("on_train_epoch_start", "on_train_epoch_start:2"),
        ("on_model_save", "on_model_save:2:cut-attempt-2"),
        ("on_params_update", "on_params_update:2:cut-attempt-2"),
    ]
    assert recorder.events[-2].type == "on_train_end" and recorder.events[-2].data["stop_reason"] == "stop"


def test_metrics_are_sent_only_once_validated(run):
    recorder = run(epochs=2, batches=1)
    by_type = {(e.type, e.data.get("epoch")): e.data for e in recorder.events}
    assert "metrics" not in by_type[("on_train_epoch_end", 2)]  # still the previous epoch's numbers
    assert "metrics" in by_type[("on_model_save", 2)]


def test_fit_epoch_end_updates_the_job_columns(run):
    recorder = run(epochs=1, batches=1)
    fit = next(e for e in recorder.events if e.type == "on_fit_epoch_end")
    assert fit.job_values == {
        "epoch": 1,
        "epochs": 1,
        "metrics": {"metrics/accuracy_top1": 1.0},
        "best_path": "weights/best.pt",
        "last_path": "weights/last.pt",
    }


def test_batches_become_throttled_progress(run, monkeypatch):
    monkeypatch.setattr(bridge_module, "PROGRESS_INTERVAL_S", 0.05)
    started = time.monotonic()
    recorder = run(epochs=1, batches=20, batch_s=0.01)
    elapsed = time.monotonic() - started
    # At most one update per interval (plus the first), however slow the machine made the batches.
    assert 1 <= len(recorder.progress) <= elapsed / 0.05 + 1
    assert len(recorder.progress) < 20 or elapsed > 20 * 0.05
    last = recorder.progress[-1]
    assert last["epoch"] == 1 and last["batches"] == 20 and 1 <= last["batch"] <= 20
    assert "train/loss" in last["losses"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [({"a": (1, 2.5)}, {"a": [1, 2.5]}), (Path("weights/last.pt"), "weights/last.pt"), ("x", "x")],
)
def test_plain_values(value, expected):
    assert plain(value) == expected


def test_a_diverged_loss_is_stored_as_null_by_the_one_json_writer():
    from trainforge.db.session import json_dumps

    # The bridge passes NaN through; the service's JSON writer (DB columns and Redis) makes it null.
    assert (
        json_dumps(plain({"loss": float("nan"), "lr": [float("inf"), 0.1]}))
        == '{"loss": null, "lr": [null, 0.1]}'
    )


def test_dedupe_key_for_epochless_events():
    assert dedupe_key("on_fit_epoch_end", None, 3) == "on_fit_epoch_end:attempt-3"
