"""The run's plots (plots=True writes them, plots=False none) and the terminal progress bar."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from detect.conftest import run_overrides

from trainer_engine.models.classify import ClassificationTrainer
from trainer_engine.models.detect import DetectionTrainer
from trainer_engine.utils import plots, progress

CLASSIFY = {"data": "synthetic:classify?classes=3&train=24&val=12&size=16", "imgsz": 16, "batch": 8,
            "workers": 0, "epochs": 2, "verbose": False}  # fmt: skip
IMAGE_NAMES = {"results.png", "confusion_matrix.png", "labels.png", "val_batch0_pred.jpg", "PR_curve.png"}


def images(folder: Path) -> set[str]:
    """Return the plot files of a run folder."""
    return {p.name for p in folder.iterdir() if p.suffix in (".png", ".jpg")}


def is_image(path: Path) -> bool:
    """Return whether `path` starts like a PNG or a JPEG."""
    head = path.read_bytes()[:4]
    return head.startswith(b"\x89PNG") or head.startswith(b"\xff\xd8")


def test_detection_writes_its_plots_after_the_run(tmp_path: Path) -> None:
    trainer = DetectionTrainer(overrides=run_overrides(tmp_path, epochs=2, plots=True))
    trainer.train()
    assert images(trainer.save_dir) == IMAGE_NAMES
    assert all(is_image(trainer.save_dir / name) for name in IMAGE_NAMES)


def test_classification_writes_results_confusion_and_predictions(tmp_path: Path) -> None:
    trainer = ClassificationTrainer(
        overrides={**CLASSIFY, "project": str(tmp_path), "name": "c", "plots": True}
    )
    trainer.train()
    assert images(trainer.save_dir) == {"results.png", "confusion_matrix.png", "val_batch0_pred.jpg"}
    matrix = trainer.validator.confusion_matrix().matrix
    assert matrix.shape == (3, 3) and matrix.sum() == 12  # every val image counted once


def test_plots_false_writes_none(tmp_path: Path) -> None:
    trainer = ClassificationTrainer(
        overrides={**CLASSIFY, "project": str(tmp_path), "name": "c", "plots": False}
    )
    trainer.train()
    assert images(trainer.save_dir) == set()
    assert trainer.validator.plot_batch is None


def test_results_png_has_a_panel_per_column_and_skips_an_empty_file(tmp_path: Path) -> None:
    csv = tmp_path / "results.csv"
    csv.write_text("epoch,time,train/loss,metrics/accuracy_top1\n1,0.5,0.9,0.4\n2,1.0,0.7,\n")
    assert plots.plot_results(csv) == tmp_path / "results.png" and is_image(tmp_path / "results.png")
    (tmp_path / "empty.csv").write_text("epoch,time\n")
    assert plots.plot_results(tmp_path / "empty.csv") is None
    assert plots.plot_results(tmp_path / "missing.csv") is None


def test_detection_confusion_matrix_counts_hits_misses_and_false_alarms() -> None:
    import torch

    matrix = plots.ConfusionMatrix(2, detection=True)
    gt = torch.tensor([[0, 0, 10, 10], [20, 20, 30, 30]], dtype=torch.float32)
    pred = torch.tensor([[0, 0, 10, 10, 0.9, 0], [50, 50, 60, 60, 0.8, 1], [20, 20, 30, 30, 0.1, 1]])
    matrix.update_detections(pred, gt, torch.tensor([0, 1]))
    # class 0 found; class 1 missed (its box scored under CM_CONF); a class-1 box on background.
    assert matrix.matrix.tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]


def test_the_progress_bar_shows_on_a_terminal_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, expect_bar in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, "stderr", stream)
        trainer = ClassificationTrainer(
            overrides={**CLASSIFY, "project": str(tmp_path), "name": "bar", "plots": False}
        )
        trainer.train()
        text = stream.getvalue()
        if expect_bar:
            assert "epoch 1/2" in text and "epoch 2/2" in text and "3/3" in text and "batch/s" in text
            assert "loss=" in text
        else:
            assert "\r" not in text and "epoch 1/2:" not in text
    assert progress.on_terminal() is False
