"""The hooks a task trainer provides (the Ultralytics names); BaseTrainer calls them, tasks override them."""

from __future__ import annotations

from typing import Any

from torch import nn

from trainer_engine.utils.checkpoint import load_checkpoint
from trainer_engine.utils.torch_utils import de_parallel


class TaskHooks:
    """Stubs and defaults of the task hooks; docs/engine.md lists which a task must provide."""

    args: Any
    data: dict[str, Any]
    model: nn.Module | None
    loss_names: list[str]
    resume_ckpt: dict[str, Any] | None
    default_model: str | None
    is_main: bool

    def get_dataset(self) -> dict[str, Any]:
        """Check `args.data` and return {"train", "val", "nc", "names", ...}; raise a clear error if bad."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_dataset()")

    def get_model(self, cfg: Any = None, weights: Any = None, verbose: bool = True) -> nn.Module:
        """Return the model to train, built from `cfg` and loaded from `weights` when given."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_model()")

    def build_dataset(self, img_path: Any, mode: str = "train", batch: int | None = None) -> Any:
        """Return the Dataset of one split."""
        raise NotImplementedError(f"{type(self).__name__} must implement build_dataset()")

    def get_dataloader(
        self, dataset_path: Any, batch_size: int = 16, rank: int = 0, mode: str = "train"
    ) -> Any:
        """Return the DataLoader of one split (a DistributedSampler shard when rank >= 0)."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_dataloader()")

    def get_validator(self) -> Any:
        """Return the task's validator (and set `self.loss_names`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_validator()")

    def preprocess_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Move a batch to the device (and scale it) before the forward pass."""
        return batch

    def set_model_attributes(self) -> None:
        """Give the model what it needs from the data and args (nc, names, args)."""
        model = de_parallel(self.model)
        model.nc = self.data["nc"]
        model.names = self.data["names"]
        model.args = self.args

    def label_loss_items(self, loss_items: Any = None, prefix: str = "train") -> list[str] | dict[str, float]:
        """Return the loss keys (no `loss_items`) or a dict of key -> loss value."""
        keys = [f"{prefix}/{name}" for name in self.loss_names]
        if loss_items is None:
            return keys
        values = loss_items.tolist() if hasattr(loss_items, "tolist") else list(loss_items)
        values = values if isinstance(values, list) else [values]
        return {k: round(float(v), 5) for k, v in zip(keys, values, strict=False)}

    def progress_string(self) -> str:
        """Return the header of the per-epoch progress line."""
        return ("%11s" * (3 + len(self.loss_names))) % ("Epoch", "GPU_mem", *self.loss_names, "Size")

    def close_dataloader_mosaic(self) -> None:
        """Turn off mosaic augmentation for the last `close_mosaic` epochs (tasks that use it override)."""

    def plot_metrics(self) -> None:
        """Plot results.csv (tasks may override)."""

    def setup_model(self) -> nn.Module:
        """Build the model: from the resume checkpoint, a `.pt` model, or a model name/config."""
        verbose = self.args.verbose and self.is_main
        if self.resume_ckpt is not None:
            ckpt = self.resume_ckpt
            model = self.get_model(cfg=ckpt.get("model_cfg"), weights=None, verbose=verbose)
            de_parallel(model).load_state_dict(ckpt["model"])
            return model
        name = self.args.model or self.default_model
        weights = None
        if name is not None and str(name).endswith((".pt", ".pth")):
            weights = load_checkpoint(name)
            name = weights.get("model_cfg") or name
        elif isinstance(self.args.pretrained, str):
            weights = load_checkpoint(self.args.pretrained)
        model = self.get_model(cfg=name, weights=weights, verbose=verbose)
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"{type(self).__name__}.get_model() returned {type(model).__name__}, not an nn.Module"
            )
        return model
