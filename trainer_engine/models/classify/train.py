"""ClassificationTrainer: the engine's loop over ImageFolder (or synthetic) data and a ClassificationModel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer_engine.data.classify import ClassificationDataset, build_dataloader, check_cls_dataset
from trainer_engine.data.classify.transforms import denormalize
from trainer_engine.engine.trainer import BaseTrainer
from trainer_engine.models.classify.val import ClassificationValidator
from trainer_engine.nn.base import BaseModel
from trainer_engine.nn.classification import ClassificationModel
from trainer_engine.utils import plots, progress


class ClassificationTrainer(BaseTrainer):
    """Train an image classifier: `ClassificationTrainer(overrides={"data": ..., "epochs": 3}).train()`."""

    task = "classify"
    default_model = "tiny-cls.yaml"

    def __init__(
        self, cfg: Any = None, overrides: dict[str, Any] | None = None, _callbacks: Any = None
    ) -> None:
        super().__init__(cfg, overrides, _callbacks)
        progress.add_callbacks(self, progress.callbacks, plots.callbacks)

    def get_dataset(self) -> dict[str, Any]:
        """Check the ImageFolder dataset (or generate the synthetic one) and return its splits and names."""
        return check_cls_dataset(self.args.data, split=self.args.split)

    def get_model(self, cfg: Any = None, weights: Any = None, verbose: bool = True) -> nn.Module:
        """Return a ClassificationModel for the dataset's classes, loaded from `weights` when given."""
        model = ClassificationModel(cfg or self.default_model, nc=self.data["nc"], verbose=verbose)
        if weights is not None:
            model.load(weights, verbose=verbose)
        if self.args.dropout:
            for m in model.modules():
                if isinstance(m, nn.Dropout):
                    m.p = self.args.dropout
        return model

    def setup_model(self) -> nn.Module:
        """Build the model; a plain nn.Module from a user's get_model() is wrapped to train on logits."""
        model = super().setup_model()
        return model if isinstance(model, BaseModel) else ClassificationModel.wrap(model, self.data["nc"])

    def build_dataset(
        self, img_path: Any, mode: str = "train", batch: int | None = None
    ) -> ClassificationDataset:
        """Return one split; augmented for training."""
        return ClassificationDataset(
            Path(img_path), args=self.args, augment=mode == "train", prefix=mode, names=self.data["names"]
        )

    def get_dataloader(
        self, dataset_path: Any, batch_size: int = 16, rank: int = 0, mode: str = "train"
    ) -> Any:
        """Return the loader of one split (a DDP shard for rank >= 0)."""
        dataset = self.build_dataset(dataset_path, mode)
        return build_dataloader(
            dataset, batch_size, self.args.workers, shuffle=mode == "train", rank=rank, seed=self.args.seed
        )

    def preprocess_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Move images and labels to the device."""
        batch["img"] = batch["img"].to(self.device, non_blocking=True)
        batch["cls"] = torch.as_tensor(batch["cls"]).to(self.device, non_blocking=True)
        return batch

    def plot_metrics(self) -> None:
        """Draw confusion_matrix.png and val_batch0_pred.jpg from the validator's last pass."""
        validator = self.validator
        if validator is None or not getattr(validator, "_pred", None):
            return
        names = [
            str(n)
            for n in (
                validator.names.values() if isinstance(validator.names, dict) else validator.names or []
            )
        ]
        validator.confusion_matrix().plot(names, self.save_dir / "confusion_matrix.png")
        if validator.plot_batch is not None:
            images, pred, true = validator.plot_batch
            label = lambda c: names[c] if c < len(names) else str(c)  # noqa: E731
            titles = [
                label(int(p)) + ("" if p == t else f" (true {label(int(t))})")
                for p, t in zip(pred, true, strict=True)
            ]
            plots.plot_images(
                denormalize(images), self.save_dir / "val_batch0_pred.jpg", lambda ax, i: None, titles
            )

    def get_validator(self) -> ClassificationValidator:
        """Return the top-1/top-5 validator over the val loader."""
        self.loss_names = ["loss"]
        return ClassificationValidator(
            self.test_loader, self.save_dir, args=self.args, _callbacks=self.callbacks
        )
