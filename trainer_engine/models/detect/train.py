"""DetectionTrainer: the detection hooks of the engine's BaseTrainer (data, model, validator, losses)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from torch import nn
from torch.utils.data import DataLoader

from trainer_engine.data.detect import (
    DatasetError,
    YOLODataset,
    batch_to_device,
    build_dataloader,
    check_det_dataset,
)
from trainer_engine.engine.trainer import BaseTrainer
from trainer_engine.models.detect.val import LOSS_NAMES, DetectionValidator
from trainer_engine.nn.detection import DetectionModel
from trainer_engine.utils import plots, progress

LOGGER = logging.getLogger("trainer_engine")
NOT_IMPLEMENTED = ("rect", "mixup", "copy_paste", "perspective", "bgr")


class DetectionTrainer(BaseTrainer):
    """Train a DetectionModel on a YOLO-format data set (`data=` a data YAML, a dict or synthetic:shapes).

    Override `get_model` to train your own DetectionModel subclass (and its `init_criterion` loss).
    """

    task = "detect"
    default_model = "tiny-det-n.yaml"

    def __init__(
        self, cfg: Any = None, overrides: dict[str, Any] | None = None, _callbacks: Any = None
    ) -> None:
        super().__init__(cfg, overrides, _callbacks)
        progress.add_callbacks(self, progress.callbacks, plots.callbacks)

    def plot_metrics(self) -> None:
        """Draw labels.png, and from the validator's last pass confusion_matrix.png, PR_curve.png and
        val_batch0_pred.jpg."""
        names = [str(v) for _, v in sorted(dict(self.data["names"]).items())]
        labels = getattr(self.train_loader.dataset, "labels", None)
        if labels:
            rows = np.concatenate([lb for lb in labels if len(lb)] or [np.zeros((0, 5))])
            plots.plot_labels(rows[:, 0], rows[:, 3:5], names, self.save_dir / "labels.png")
        validator = self.validator
        if validator is None or getattr(validator, "confusion", None) is None:
            return
        validator.confusion.plot(names, self.save_dir / "confusion_matrix.png")
        stats = validator.stats
        if stats.tp:
            plots.plot_pr_curve(np.concatenate(stats.tp)[:, 0], np.concatenate(stats.conf),
                                np.concatenate(stats.pred_cls), np.concatenate(stats.target_cls), names,
                                self.save_dir / "PR_curve.png")  # fmt: skip
        if validator.plot_batch is not None:
            batch = validator.plot_batch
            plots.plot_images(batch["img"], self.save_dir / "val_batch0_pred.jpg",
                              lambda ax, i: _draw_boxes(ax, batch["pred"][i], names))  # fmt: skip

    def get_dataset(self) -> dict[str, Any]:
        """Check the data set and return its dict: `train`, `val` (absolute paths), `nc`, `names`."""
        if not self.args.data:
            raise DatasetError(
                "no data given; pass data=path/to/data.yaml (YOLO format) or data=synthetic:shapes"
            )
        return check_det_dataset(self.args.data, self.args.single_cls)

    def build_dataset(
        self, img_path: str | list[str], mode: str = "train", batch: int | None = None
    ) -> YOLODataset:
        """Build the YOLODataset of a split; only the training split is augmented."""
        train = mode == "train"
        if train:
            for key in NOT_IMPLEMENTED:
                if self.args.get(key):
                    LOGGER.warning(
                        "%s=%s is not implemented for detection; it is ignored", key, self.args.get(key)
                    )
        return YOLODataset(
            img_path,
            imgsz=self.args.imgsz,
            nc=self.data.get("label_nc", self.data["nc"]),
            augment=train,
            hyp=self.args,
            split=mode,
            fraction=self.args.fraction if train else 1.0,
            single_cls=self.args.single_cls,
            cache=self.args.cache,
        )

    def get_dataloader(
        self, dataset_path: str | list[str], batch_size: int = 16, rank: int = 0, mode: str = "train"
    ) -> DataLoader:
        """Return the loader of a split: shuffled (and DDP-sharded when rank >= 0) for training."""
        dataset = self.build_dataset(dataset_path, mode, batch_size)
        train = mode == "train"
        return build_dataloader(
            dataset,
            batch_size,
            self.args.workers,
            shuffle=train,
            rank=rank if train else -1,
            seed=self.args.seed,
        )

    def preprocess_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Move the batch to the device with images scaled to 0..1."""
        return batch_to_device(batch, self.device)

    def get_model(
        self, cfg: Any = None, weights: dict[str, Any] | None = None, verbose: bool = True
    ) -> nn.Module:
        """Build a DetectionModel for the data's classes; copy matching weights from a checkpoint dict."""
        model = DetectionModel(
            cfg or self.default_model, nc=self.data["nc"], verbose=verbose and self.rank in (-1, 0)
        )
        if weights:
            state = weights.get("model", weights)
            model.load(state, verbose=verbose)
        return model

    def get_validator(self) -> DetectionValidator:
        """Return the validator that computes mAP and the validation losses during training."""
        self.loss_names = list(LOSS_NAMES)
        return DetectionValidator(
            self.test_loader, save_dir=self.save_dir, args=self.args.copy(), _callbacks=self.callbacks
        )

    def close_dataloader_mosaic(self) -> None:
        """Switch mosaic off for the last `close_mosaic` epochs (workers restart each epoch and see it)."""
        LOGGER.info("closing dataloader mosaic")
        self.train_loader.dataset.close_mosaic()


def _draw_boxes(ax: Any, pred: Any, names: list[str], conf: float = 0.25) -> None:
    """Draw one image's detections (xyxy, score, class) above `conf` with their class and score."""
    from matplotlib.patches import Rectangle

    for x1, y1, x2, y2, score, c in pred[pred[:, 4] >= conf].tolist()[:50]:
        color = f"C{int(c) % 10}"
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, linewidth=1.2))
        label = names[int(c)] if int(c) < len(names) else str(int(c))
        ax.text(x1, y1, f"{label} {score:.2f}", fontsize=6, color="white", backgroundcolor=color, va="bottom")
