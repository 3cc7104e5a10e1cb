"""Helpers shared by the classification tests (a module of its own: conftest is not importable by name)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SMALL = "synthetic:classify?classes=4&train=256&val=64&size=32&seed=0"


def write_png(path: Path, seed: int = 0, size: int = 8) -> Path:
    """Write a small random RGB PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
    return path


# 64 training images of 16 px: 4 batches of 16 per epoch, an epoch in well under a second.
TINY = "synthetic:classify?classes=4&train=64&val=32&size=16&seed=0"


def tiny_overrides(tmp_path: Path, **changes: object) -> dict[str, object]:
    """Overrides of a run that trains in seconds, under tmp_path/runs/<name>."""
    base = {
        "data": TINY,
        "imgsz": 16,
        "batch": 16,
        "nbs": 16,
        "workers": 0,
        "epochs": 2,
        "project": str(tmp_path / "runs"),
        "verbose": False,
    }
    return {**base, **changes}
