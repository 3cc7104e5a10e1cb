"""DetectionTrainer end to end on a 64 px synthetic set: checkpoints, metrics, the guide's custom loss."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.trainer_engine.detect.conftest import TINY_SHAPES, run_overrides, write_yolo_set
from trainer_engine.cfg import get_cfg
from trainer_engine.data.detect import DatasetError
from trainer_engine.models.detect import DetectionTrainer, DetectionValidator
from trainer_engine.nn.detect_loss import DetectionLoss
from trainer_engine.nn.tasks import DetectionModel

METRIC_KEYS = {"metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)"}
VAL_LOSS_KEYS = {"val/box_loss", "val/cls_loss", "val/dfl_loss"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> DetectionTrainer:
    """One 2-epoch run shared by the tests that only read its results (mosaic closed for the last epoch)."""
    trainer = DetectionTrainer(
        overrides=run_overrides(tmp_path_factory.mktemp("runs"), epochs=2, close_mosaic=1)
    )
    trainer.train()
    return trainer


def test_training_writes_checkpoints_that_load_without_pickled_code(trained: DetectionTrainer) -> None:
    assert trained.last.is_file() and trained.best.is_file()
    ckpt = torch.load(trained.best, map_location="cpu", weights_only=True)
    model = DetectionModel.from_checkpoint(ckpt)
    assert model.yaml == ckpt["model_cfg"] and model.nc == 4
    assert model.names == trained.data["names"]
    decoded, maps = model.eval()(torch.zeros(1, 3, 64, 64))
    assert decoded.shape == (1, 4 + 4, 8 * 8 + 4 * 4 + 2 * 2) and len(maps) == 3


def test_training_reports_ultralytics_keys_and_closes_mosaic(trained: DetectionTrainer) -> None:
    assert trained.train_loader.dataset.mosaic == 0.0
    rows = list(csv.DictReader((trained.save_dir / "results.csv").open()))
    assert len(rows) == 2
    assert {"train/box_loss", "train/cls_loss", "train/dfl_loss"} | METRIC_KEYS | VAL_LOSS_KEYS <= set(
        rows[0]
    )
    assert all(float(rows[-1][k]) >= 0 for k in VAL_LOSS_KEYS)
    assert set(trained.metrics) >= METRIC_KEYS


def test_validator_alone_on_best_pt(trained: DetectionTrainer) -> None:
    args = get_cfg(overrides={**run_overrides(trained.save_dir), "model": str(trained.best)}, task="detect")
    stats = DetectionValidator(args=args)()
    assert METRIC_KEYS | {"fitness"} <= set(stats)
    assert stats["fitness"] == stats["metrics/mAP50-95(B)"]
    assert all(0.0 <= stats[k] <= 1.0 for k in METRIC_KEYS)


def test_fine_tuning_on_other_classes_keeps_the_backbone(trained: DetectionTrainer, tmp_path: Path) -> None:
    data = write_yolo_set(tmp_path / "set", {"a": "0 0.5 0.5 0.4 0.4\n", "b": "1 0.3 0.3 0.2 0.2\n"})
    trainer = DetectionTrainer(overrides=run_overrides(tmp_path, data=str(data), model=str(trained.best)))
    ckpt = torch.load(trained.best, map_location="cpu", weights_only=True)
    model = trainer.get_model(cfg=ckpt["model_cfg"], weights=ckpt, verbose=False)
    assert model.nc == 2
    key = "backbone.stem.0.conv.weight"
    assert torch.equal(model.state_dict()[key], ckpt["model"][key])


def test_checkpoint_with_other_classes_than_the_data_is_refused_by_val(
    trained: DetectionTrainer, tmp_path: Path
) -> None:
    data = write_yolo_set(tmp_path / "set", {"a": "0 0.5 0.5 0.4 0.4\n"})
    args = get_cfg(
        overrides={**run_overrides(tmp_path), "model": str(trained.best), "data": str(data)}, task="detect"
    )
    with pytest.raises(DatasetError, match=r"model predicts nc=4 classes but the data has nc=2 .*fine-tune"):
        DetectionValidator(args=args)()


def test_resume_continues_from_last_pt(tmp_path: Path) -> None:
    first = DetectionTrainer(overrides=run_overrides(tmp_path, val=False))
    first.train()
    resumed = DetectionTrainer(overrides={"resume": str(first.last), "epochs": 2})
    resumed.train()
    assert resumed.save_dir == first.save_dir and resumed.start_epoch == 1
    assert torch.load(resumed.last, map_location="cpu", weights_only=True)["epoch"] == 1


class CountingLoss(DetectionLoss):
    """The guide's custom loss: the default one doubled, counting the training steps it served."""

    train_calls = 0

    def __call__(self, preds: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(preds, list):  # raw maps: a training forward (validation passes a tuple)
            CountingLoss.train_calls += 1
        loss, items = super().__call__(preds, batch)
        return loss * 2.0, items


class MyCustomModel(DetectionModel):
    def init_criterion(self) -> CountingLoss:
        return CountingLoss(self)


class CustomTrainer(DetectionTrainer):
    def get_model(self, cfg: Any = None, weights: Any = None, verbose: bool = True) -> MyCustomModel:
        return MyCustomModel(cfg, nc=self.data["nc"], verbose=False)


def test_guide_custom_model_loss_runs_every_training_step(tmp_path: Path) -> None:
    seen = []
    trainer = CustomTrainer(overrides=run_overrides(tmp_path, model="tiny-det-n.yaml", data=TINY_SHAPES))
    trainer.add_callback("on_train_epoch_end", lambda t: seen.append(t.last))
    trainer.train()
    assert isinstance(trainer.model, MyCustomModel)
    assert isinstance(trainer.model.criterion, CountingLoss)
    assert CountingLoss.train_calls == len(trainer.train_loader) * trainer.args.epochs == 2
    assert seen == [trainer.last] and trainer.best.is_file()
