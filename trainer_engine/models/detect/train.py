"""DetectionTrainer: the detection hooks of the engine's BaseTrainer (data, model, validator, losses)."""

from __future__ import annotations

import logging
from typing import Any

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

LOGGER = logging.getLogger("trainer_engine")
NOT_IMPLEMENTED = ("rect", "mixup", "copy_paste", "perspective", "bgr")


class DetectionTrainer(BaseTrainer):
    """Train a DetectionModel on a YOLO-format data set (`data=` a data YAML, a dict or synthetic:shapes).

    Override `get_model` to train your own DetectionModel subclass (and its `init_criterion` loss).
    """

    task = "detect"
    default_model = "tiny-det-n.yaml"

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
