"""Fixtures of the detection tests: a private synthetic data cache and a tiny YOLO folder to break."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

TINY_SHAPES = "synthetic:shapes?train=16&val=8&size=64&seed=0"


def run_overrides(project: Path, **changes: object) -> dict[str, object]:
    """Overrides of a seconds-long CPU run on TINY_SHAPES (64 px, 2 batches an epoch, no worker processes)."""
    base = {"data": TINY_SHAPES, "imgsz": 64, "epochs": 1, "batch": 8, "workers": 0, "device": "cpu"}
    return {**base, "project": str(project), "name": "run", "plots": False, "verbose": False, **changes}


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Generate synthetic sets under one temp folder per session, never in the user's cache."""
    root = tmp_path_factory.mktemp("datasets")
    old = os.environ.get("TRAINER_ENGINE_DATA_DIR")
    os.environ["TRAINER_ENGINE_DATA_DIR"] = str(root)
    yield root
    if old is None:
        os.environ.pop("TRAINER_ENGINE_DATA_DIR", None)
    else:
        os.environ["TRAINER_ENGINE_DATA_DIR"] = old


def write_yolo_set(root: Path, labels: dict[str, str], names: tuple[str, ...] = ("a", "b")) -> Path:
    """Write images/{train,val} with one 32x32 image per label text and return the data.yaml path."""
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for stem, text in labels.items():
            Image.new("RGB", (32, 32), (40, 90, 200)).save(root / "images" / split / f"{stem}.png")
            (root / "labels" / split / f"{stem}.txt").write_text(text)
    data = root / "data.yaml"
    data.write_text(f"path: .\ntrain: images/train\nval: images/val\nnames: {list(names)}\n")
    return data
