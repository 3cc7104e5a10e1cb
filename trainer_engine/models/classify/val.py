"""ClassificationValidator: top-1 / top-5 accuracy and the validation loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer_engine.data.classify import ClassificationDataset, build_dataloader, check_cls_dataset
from trainer_engine.engine.validator import BaseValidator
from trainer_engine.models.classify.metrics import ClassifyMetrics, topk_indices
from trainer_engine.nn.classification import ClassificationModel
from trainer_engine.utils import LOGGER
from trainer_engine.utils.plots import ConfusionMatrix


class ClassificationValidator(BaseValidator):
    """Score class predictions; `metrics` is a ClassifyMetrics, fitness = (top1 + top5) / 2."""

    task = "classify"

    def init_metrics(self, model: nn.Module) -> None:
        """Reset the collected predictions and targets."""
        self.metrics = ClassifyMetrics()
        self.names = getattr(model, "names", None)
        self._pred: list[torch.Tensor] = []
        self._targets: list[torch.Tensor] = []
        # For the run's plots (plots=True): the first batch as seen, and its predictions.
        self.plot_batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def preprocess(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Move images and labels to the device."""
        batch["img"] = batch["img"].to(self.device, non_blocking=True)
        batch["cls"] = torch.as_tensor(batch["cls"]).to(self.device, non_blocking=True)
        return batch

    def postprocess(self, preds: Any) -> torch.Tensor:
        """Return the top-5 class indices per image."""
        return topk_indices(preds)

    def update_metrics(self, preds: torch.Tensor, batch: dict[str, Any]) -> None:
        """Collect a batch's top-k predictions and labels."""
        self._pred.append(preds.cpu())
        self._targets.append(batch["cls"].cpu())
        if self.args.plots and self.plot_batch is None:
            self.plot_batch = (batch["img"][:16].cpu(), preds[:16, 0].cpu(), batch["cls"][:16].cpu())

    def confusion_matrix(self) -> ConfusionMatrix:
        """Return the top-1 confusion matrix of the last pass."""
        nc = len(self.names) if self.names else int(torch.cat(self._targets).max()) + 1
        matrix = ConfusionMatrix(nc)
        if self._pred:
            matrix.update_classes(torch.cat(self._pred)[:, 0].numpy(), torch.cat(self._targets).numpy())
        return matrix

    def get_stats(self) -> dict[str, float]:
        """Compute top1/top5 over the pass."""
        if self._pred:
            self.metrics.process(torch.cat(self._targets), torch.cat(self._pred))
        return self.metrics.results_dict

    def get_dataset(self) -> dict[str, Any]:
        """Check the dataset named by `args.data`."""
        return check_cls_dataset(self.args.data, split=self.args.split)

    def get_dataloader(self, dataset_path: Any, batch_size: int) -> Any:
        """Return an unaugmented loader of the split to validate."""
        names = self.data["names"] if self.data else None
        dataset = ClassificationDataset(Path(dataset_path), args=self.args, augment=False, names=names)
        return build_dataloader(dataset, batch_size, self.args.workers, shuffle=False)

    def load_model(self, model: nn.Module | str | Path | None) -> nn.Module:
        """Return `model`, or the model of a checkpoint file on `args.device`."""
        if isinstance(model, nn.Module):
            return model
        if model is None:
            raise ValueError("no model to validate; pass model=<path to best.pt>")
        return ClassificationModel.from_checkpoint(model).to(self.device_for_args())

    def print_results(self) -> None:
        """Log top1/top5."""
        LOGGER.info("top1_acc %.4f  top5_acc %.4f", self.metrics.top1, self.metrics.top5)
