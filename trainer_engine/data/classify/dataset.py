"""ClassificationDataset: one split of an ImageFolder dataset, yielding {"img", "cls"} samples."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset

from trainer_engine.data.classify.folder import scan_split
from trainer_engine.data.classify.transforms import classify_augmentations, classify_transforms
from trainer_engine.data.errors import DatasetError


class ClassificationDataset(Dataset):
    """Images of `root/<class>/*` with class indices; augmented when `augment` (the training split)."""

    def __init__(
        self,
        root: str | Path,
        args: Any = None,
        augment: bool = False,
        prefix: str = "",
        names: list[str] | dict[int, str] | None = None,
    ) -> None:
        self.root = Path(root)
        if names is None:
            names = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))
        self.names = list(names.values()) if isinstance(names, dict) else list(names)
        self.prefix = prefix
        self.imgsz = int(getattr(args, "imgsz", 224) or 224)
        self.samples = scan_split(self.root, self.names)
        fraction = float(getattr(args, "fraction", 1.0) or 1.0)
        if augment and fraction < 1.0:
            self.samples = _stratified_subset(self.samples, fraction, len(self.names))
        self.transform: Callable[[Image.Image], torch.Tensor] = (
            classify_augmentations(self.imgsz, args) if augment else classify_transforms(self.imgsz)
        )

    def __len__(self) -> int:
        """Return the number of images."""
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        """Load, convert to RGB and transform image `i`."""
        path, cls = self.samples[i]
        try:
            with Image.open(path) as im:
                img = im.convert("RGB")
        except Exception as e:  # a file that changed or broke after the scan
            raise DatasetError(
                f"cannot read image {path}: {type(e).__name__}: {e}; fix or remove the file"
            ) from e
        return {"img": self.transform(img), "cls": cls}


def _stratified_subset(samples: list[tuple[str, int]], fraction: float, nc: int) -> list[tuple[str, int]]:
    # Keep the first `fraction` of every class: the list is sorted by class, so a plain cut drops classes.
    by_class: list[list[tuple[str, int]]] = [[] for _ in range(nc)]
    for s in samples:
        by_class[s[1]].append(s)
    return [s for group in by_class for s in group[: max(1, round(len(group) * fraction))]]
