"""BaseValidator: one validation pass, during training (on the trainer's EMA) or on its own (a .pt file).

A task subclass turns predictions into metrics; this class owns the loop, devices, the validation
loss during training and the validator events (on_val_start, on_val_batch_start, on_val_batch_end,
on_val_end).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer_engine.cfg import TrainArgs, get_cfg
from trainer_engine.engine.callbacks import Callback, CallbackMixin, default_callbacks
from trainer_engine.utils.torch_utils import de_parallel, select_device


class BaseValidator(CallbackMixin):
    """`validator(trainer=...)` during training or `validator(model=...)` alone; returns a metrics dict.

    Task hooks: `get_dataset`, `get_dataloader`, `load_model`, `preprocess`, `init_metrics`,
    `postprocess`, `update_metrics`, `get_stats` (must hold "fitness"), `finalize_metrics`,
    `print_results`.
    """

    task: str | None = None

    def __init__(
        self,
        dataloader: Any = None,
        save_dir: str | Path | None = None,
        args: TrainArgs | dict[str, Any] | None = None,
        _callbacks: dict[str, list[Callback]] | None = None,
    ) -> None:
        self.args = args if isinstance(args, TrainArgs) else get_cfg(overrides=args or {}, task=self.task)
        self.dataloader = dataloader
        self.save_dir = Path(save_dir) if save_dir is not None else None
        self.callbacks = _callbacks if _callbacks is not None else default_callbacks()
        self.training = False
        self.device: torch.device | None = None
        self.model: nn.Module | None = None
        self.data: dict[str, Any] | None = None
        self.loss: torch.Tensor | None = None
        self.metrics: Any = None
        self.speed: dict[str, float] = {}

    @torch.no_grad()
    def __call__(self, trainer: Any = None, model: nn.Module | str | Path | None = None) -> dict[str, float]:
        """Run one validation pass; return the metrics (and, during training, the val losses)."""
        self.training = trainer is not None
        if self.training:
            self.device = trainer.device
            self.data = trainer.data
            model = trainer.ema.ema if trainer.ema is not None else de_parallel(trainer.model)
            self.dataloader = self.dataloader or trainer.test_loader
            self.loss = None
        else:
            self.device = self.device_for_args()
            model = self.load_model(model if model is not None else self.args.model)
            self.device = next(model.parameters()).device
            if self.dataloader is None:
                self.data = self.get_dataset()
                self.dataloader = self.get_dataloader(self.data[self.args.split], self.args.batch)
        model.eval()
        self.model = model
        self.run_callbacks("on_val_start")
        self.init_metrics(de_parallel(model))
        start, n_images = time.perf_counter(), 0
        for batch in self.dataloader:
            self.run_callbacks("on_val_batch_start")
            batch = self.preprocess(batch)
            preds = model(batch["img"])
            if self.training:
                items = model.loss(batch, preds)[1].detach()
                self.loss = items if self.loss is None else self.loss + items
            self.update_metrics(self.postprocess(preds), batch)
            n_images += len(batch["img"])
            self.run_callbacks("on_val_batch_end")
        self.speed = {"ms_per_image": 1000 * (time.perf_counter() - start) / max(n_images, 1)}
        stats = self.get_stats()
        self.finalize_metrics()
        self.run_callbacks("on_val_end")
        if self.training:
            mean_loss = self.loss / max(len(self.dataloader), 1) if self.loss is not None else None
            return (
                {**stats, **trainer.label_loss_items(mean_loss, prefix="val")}
                if mean_loss is not None
                else stats
            )
        self.print_results()
        return stats

    # --- hooks ---------------------------------------------------------------------------------------

    def get_dataset(self) -> dict[str, Any]:
        """Check `args.data` and return its {"train", "val", "nc", "names"} (standalone validation)."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_dataset()")

    def get_dataloader(self, dataset_path: Any, batch_size: int) -> Any:
        """Return the DataLoader of the split to validate (standalone validation)."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_dataloader()")

    def load_model(self, model: nn.Module | str | Path | None) -> nn.Module:
        """Return the model to validate, on `args.device`: a module as given, or loaded from a checkpoint."""
        if isinstance(model, nn.Module):
            return model
        raise NotImplementedError(f"{type(self).__name__} must implement load_model() for checkpoints")

    def device_for_args(self) -> torch.device:
        """Return the device `args.device` names (used when loading a model to validate alone)."""
        return select_device(self.args.device)

    def preprocess(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Move a batch to the device."""
        return batch

    def init_metrics(self, model: nn.Module) -> None:
        """Reset the metrics before a pass."""

    def postprocess(self, preds: Any) -> Any:
        """Turn raw model outputs into predictions the metrics read."""
        return preds

    def update_metrics(self, preds: Any, batch: dict[str, Any]) -> None:
        """Add a batch's predictions to the metrics."""

    def get_stats(self) -> dict[str, float]:
        """Return the metrics of the pass, with "fitness"."""
        return {}

    def finalize_metrics(self) -> None:
        """Set final values (speed, confusion matrix) after the pass."""

    def print_results(self) -> None:
        """Log the metrics of a standalone pass."""
