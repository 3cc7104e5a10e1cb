"""Checkpoint summaries: the numbers the service reads from last.pt, from the keys the trainer writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from trainer_engine.utils.checkpoint import (
    CHECKPOINT_KEYS,
    CheckpointError,
    CheckpointSummary,
    read_summary,
    save_checkpoint,
)


def ckpt(**changes: Any) -> dict[str, Any]:
    """A checkpoint as the trainer writes it after its second of three epochs."""
    base: dict[str, Any] = {key: None for key in CHECKPOINT_KEYS}
    base.update(
        epoch=1,
        epochs=3,
        model={"w": torch.zeros(1)},
        best_fitness=0.75,
        fitness=0.5,
        train_metrics={"metrics/accuracy_top1": 0.5, "val/loss": 1.25, "fitness": 0.5},
        losses={"train/loss": 1.5},
        lr={"lr/pg0": 0.01, "lr/pg1": 0.02},
        train_args={"epochs": 3},
    )
    return {**base, **changes}


def test_summary_of_a_completed_epoch(tmp_path: Path) -> None:
    path = save_checkpoint(ckpt(), tmp_path / "last.pt")
    assert read_summary(path) == CheckpointSummary(
        epoch=2,
        epochs=3,
        metrics={"metrics/accuracy_top1": 0.5, "val/loss": 1.25},
        fitness=0.5,
        best_fitness=0.75,
        losses={"train/loss": 1.5},
        lr={"lr/pg0": 0.01, "lr/pg1": 0.02},
    )
    assert not read_summary(path).finished


def test_summary_of_a_finished_run(tmp_path: Path) -> None:
    summary = read_summary(save_checkpoint(ckpt(epoch=2), tmp_path / "last.pt"))
    assert summary.epoch == 3 and summary.finished


def test_summary_saved_inside_the_first_epoch(tmp_path: Path) -> None:
    # A stop inside the first epoch: nothing completed, and the unfinished epoch's numbers are not reported.
    path = save_checkpoint(
        ckpt(epoch=-1, best_fitness=None, fitness=None, train_metrics={}), tmp_path / "last.pt"
    )
    assert read_summary(path) == CheckpointSummary(0, 3, {}, None, None, None, None)


def test_summary_saved_inside_a_later_epoch_keeps_the_completed_epochs_fitness(tmp_path: Path) -> None:
    summary = read_summary(save_checkpoint(ckpt(train_metrics={}), tmp_path / "last.pt"))
    assert (summary.epoch, summary.metrics, summary.fitness, summary.best_fitness) == (2, {}, 0.5, 0.75)
    assert summary.losses is None and summary.lr is None


def test_unknown_epochs_is_never_finished(tmp_path: Path) -> None:
    summary = read_summary(save_checkpoint(ckpt(epoch=9, epochs=None), tmp_path / "last.pt"))
    assert summary.epochs is None and not summary.finished


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        ({"weights": 1}, "no 'model' state dict"),
        ({"model": {}}, "no integer 'epoch'"),
    ],
)
def test_bad_files_raise_checkpoint_error(tmp_path: Path, content: Any, message: str) -> None:
    path = tmp_path / "last.pt"
    if content is not None:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=message):
        read_summary(path)
