"""A resumed run re-emits the checkpoint epoch's epoch-end events from last.pt (deduplicated by key)."""

from __future__ import annotations

import pytest

from trainforge.rundir import RunDir
from worker.bridge import EventBridge
from worker.resume import checkpoint_summary, reemit_checkpoint_epoch

torch = pytest.importorskip("torch")


class Recorder:
    """Collects queued events."""

    def __init__(self) -> None:
        self.events = []

    def event(self, item) -> None:
        self.events.append(item)


def save_checkpoint(path, **values) -> None:
    """Write a checkpoint of plain values (and an empty model state), as the engine does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {}, **values}, path)


def test_checkpoint_epoch_events_are_queued_again_with_epoch_keys(tmp_path):
    last = tmp_path / "weights" / "last.pt"
    save_checkpoint(
        last,
        epoch=2,
        epochs=5,
        best_fitness=0.75,
        fitness=0.75,
        train_metrics={"metrics/accuracy_top1": 0.75, "fitness": 0.75},
        train_args={"epochs": 5},
    )
    (tmp_path / "weights" / "best.pt").write_bytes(b"x")
    recorder = Recorder()
    bridge = EventBridge(recorder, RunDir(tmp_path), attempt=2)
    assert reemit_checkpoint_epoch(bridge, object(), last) == 3
    assert [e.type for e in recorder.events] == ["on_train_epoch_end", "on_model_save", "on_fit_epoch_end"]
    assert [e.dedupe_key for e in recorder.events] == [
        "on_train_epoch_end:3",
        "on_model_save:3",
        "on_fit_epoch_end:3",
    ]
    fit = recorder.events[-1].data
    assert fit["epoch"] == 3 and fit["epochs"] == 5
    assert fit["metrics"] == {"metrics/accuracy_top1": 0.75} and fit["fitness"] == 0.75
    assert fit["last"] == "weights/last.pt" and fit["best"] == "weights/best.pt"
    assert fit["resumed_from_checkpoint"] is True


@pytest.mark.parametrize(
    "content",
    [b"not a checkpoint", None, -1, "foreign"],
    ids=["torn file", "no epoch", "stopped inside the first epoch", "not a trainer's file"],
)
def test_unreadable_or_epochless_checkpoints_re_emit_nothing(tmp_path, content):
    last = tmp_path / "last.pt"
    if content is None:
        save_checkpoint(last)
    elif content == "foreign":  # no model state: not written by a trainer
        torch.save({"epoch": 2, "epochs": 5, "train_metrics": {"fitness": 0.5}}, last)
    elif content == -1:  # the engine's "no epoch completed yet"
        save_checkpoint(last, epoch=-1, epochs=5, train_metrics={}, train_args={"epochs": 5})
    else:
        last.write_bytes(content)
    assert checkpoint_summary(last) is None
    recorder = Recorder()
    assert reemit_checkpoint_epoch(EventBridge(recorder, RunDir(tmp_path)), object(), last) == 0
    assert recorder.events == []
