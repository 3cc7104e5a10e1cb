"""Fixtures of the detection tests: a tiny YOLO folder to break."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

TINY_SHAPES = "synthetic:shapes?train=16&val=8&size=64&seed=0"


def run_overrides(project: Path, **changes: object) -> dict[str, object]:
    """Overrides of a seconds-long CPU run on TINY_SHAPES (64 px, 2 batches an epoch, no worker processes)."""
    base = {"data": TINY_SHAPES, "imgsz": 64, "epochs": 1, "batch": 8, "workers": 0, "device": "cpu"}
    return {**base, "project": str(project), "name": "run", "plots": False, "verbose": False, **changes}


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
