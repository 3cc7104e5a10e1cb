"""BasePredictor: run a trained model on image files and return one results object per image.

A task subclass loads the model and turns outputs into results; this class lists the sources,
batches and decodes images, and fires the predictor events.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn

from trainer_engine.cfg import TrainArgs, get_cfg
from trainer_engine.engine.callbacks import Callback, CallbackMixin, default_callbacks
from trainer_engine.utils.torch_utils import select_device

IMG_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")


class SourceError(ValueError):
    """A prediction source is missing or holds no readable image; the message names it."""


class BasePredictor(CallbackMixin):
    """`predictor(source, model)` → list of results. Task hooks: load_model, preprocess, postprocess."""

    task: str | None = None

    def __init__(
        self,
        cfg: str | Path | dict[str, Any] | TrainArgs | None = None,
        overrides: dict[str, Any] | None = None,
        _callbacks: dict[str, list[Callback]] | None = None,
    ) -> None:
        self.args = get_cfg(cfg, {"mode": "predict", **(overrides or {})}, task=self.task)
        self.callbacks = _callbacks if _callbacks is not None else default_callbacks()
        self.model: nn.Module | None = None
        self.device: torch.device | None = None
        self.results: list[Any] = []

    @torch.no_grad()
    def __call__(self, source: Any = None, model: nn.Module | str | Path | None = None) -> list[Any]:
        """Predict every image of `source` (a file, a folder, or a list of files) with `model`."""
        paths = list_sources(source if source is not None else self.args.source)
        if self.model is None or model is not None:
            self.device = select_device(self.args.device)
            self.model = self.load_model(model if model is not None else self.args.model)
            self.model.eval()
            self.device = next(self.model.parameters()).device
        self.results = []
        self.run_callbacks("on_predict_start")
        for chunk in _chunks(paths, self.args.batch):
            self.run_callbacks("on_predict_batch_start")
            images = [_open(p) for p in chunk]
            x = self.preprocess(images)
            preds = self.model(x)
            results = self.postprocess(preds, x, images, [str(p) for p in chunk])
            self.run_callbacks("on_predict_postprocess_end")
            self.results.extend(results)
            self.run_callbacks("on_predict_batch_end")
        self.run_callbacks("on_predict_end")
        return self.results

    def load_model(self, model: nn.Module | str | Path | None) -> nn.Module:
        """Return the model on its device: a module as given, or built from a checkpoint."""
        if isinstance(model, nn.Module):
            return model
        raise NotImplementedError(f"{type(self).__name__} must implement load_model() for checkpoints")

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        """Turn decoded RGB images into the model's input batch."""
        raise NotImplementedError(f"{type(self).__name__} must implement preprocess()")

    def postprocess(
        self, preds: Any, x: torch.Tensor, images: list[Image.Image], paths: list[str]
    ) -> list[Any]:
        """Turn raw outputs into one results object per image."""
        raise NotImplementedError(f"{type(self).__name__} must implement postprocess()")


def list_sources(source: Any) -> list[Path]:
    """Return the image files a source names: a file, a folder (sorted, not recursive) or a list."""
    if source is None or source == "":
        raise SourceError("no source given; pass source=<image file, folder or list of images>")
    items = source if isinstance(source, list | tuple) else [source]
    paths: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMG_EXTENSIONS)
            if not found:
                raise SourceError(f"folder '{path}' holds no images ({', '.join(IMG_EXTENSIONS)})")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise SourceError(
                f"source '{path}' does not exist; give an image file, a folder or a list of them"
            )
    return paths


def _open(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except Exception as e:  # PIL raises many types for files that are not images
        raise SourceError(f"cannot read image '{path}': {type(e).__name__}: {e}") from e


def _chunks(items: Sequence[Path], size: int) -> Iterator[Sequence[Path]]:
    for i in range(0, len(items), max(size, 1)):
        yield items[i : i + size]
