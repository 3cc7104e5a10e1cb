"""The model base class of every task: a forward that trains on a batch dict or predicts on a tensor."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class BaseModel(nn.Module):
    """A task model: `model(batch_dict)` returns `(loss, loss_items)`, `model(images)` returns predictions.

    Subclasses implement `predict(x)` and `init_criterion()`; users override either, as in the
    Ultralytics guide (`MyCustomModel(DetectionModel).init_criterion`).
    """

    criterion: Any = None

    def forward(self, x: torch.Tensor | dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        """Compute the loss for a batch dict, or predictions for an image tensor."""
        if isinstance(x, dict):
            return self.loss(x, *args, **kwargs)
        return self.predict(x, *args, **kwargs)

    def predict(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        """Run the network on a batch of images."""
        raise NotImplementedError

    def init_criterion(self) -> Any:
        """Build the loss callable `criterion(preds, batch) -> (loss, loss_items)`."""
        raise NotImplementedError

    def loss(self, batch: dict[str, Any], preds: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return `(loss, loss_items)` for a batch; builds the criterion on first use."""
        if self.criterion is None:
            self.criterion = self.init_criterion()
        if preds is None:
            preds = self.predict(batch["img"])
        return self.criterion(preds, batch)
