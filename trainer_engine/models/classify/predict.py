"""ClassificationPredictor: class probabilities per image from a trained checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from trainer_engine.data.classify import classify_transforms
from trainer_engine.engine.predictor import BasePredictor
from trainer_engine.nn.classification import ClassificationModel


@dataclass
class ClassifyResult:
    """The prediction for one image: `probs` over all classes, the best class and the top five."""

    path: str
    names: dict[int, str]
    probs: torch.Tensor

    @property
    def top1(self) -> int:
        """Index of the most probable class."""
        return int(self.probs.argmax())

    @property
    def top1conf(self) -> float:
        """Probability of the most probable class."""
        return float(self.probs.max())

    @property
    def top5(self) -> list[int]:
        """Indices of the (up to) five most probable classes, best first."""
        return self.probs.topk(min(5, len(self.probs))).indices.tolist()

    def summary(self) -> dict[str, Any]:
        """Return plain values: path, class, name, confidence."""
        return {
            "path": self.path,
            "class": self.top1,
            "name": self.names.get(self.top1),
            "conf": self.top1conf,
        }


class ClassificationPredictor(BasePredictor):
    """`ClassificationPredictor(overrides={"model": "best.pt", "imgsz": 32})(source)` → ClassifyResults."""

    task = "classify"

    def load_model(self, model: nn.Module | str | Path | None) -> nn.Module:
        """Return `model`, or rebuild the model of a checkpoint file."""
        if isinstance(model, nn.Module):
            return model
        if model is None:
            raise ValueError("no model to predict with; pass model=<path to best.pt>")
        from trainer_engine.utils.torch_utils import select_device

        return ClassificationModel.from_checkpoint(model).to(select_device(self.args.device))

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        """Resize, centre-crop and normalise as validation does."""
        transform = classify_transforms(self.args.imgsz)
        return torch.stack([transform(im) for im in images]).to(self.device)

    def postprocess(
        self, preds: Any, x: torch.Tensor, images: list[Image.Image], paths: list[str]
    ) -> list[Any]:
        """Return one ClassifyResult per image."""
        probs = preds.float().softmax(1).cpu()
        names = getattr(self.model, "names", {})
        return [ClassifyResult(path, names, p) for path, p in zip(paths, probs, strict=True)]
