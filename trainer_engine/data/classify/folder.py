"""Check an ImageFolder dataset (`train/<class>/*`, `val/<class>/*`) and list its images.

Unreadable or corrupt images are skipped with a warning naming each file; a class left without
images, or a split without any, is an error, so training never runs on an empty or lopsided set.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image

from trainer_engine.data.classify.synthetic import ensure_synthetic, is_synthetic
from trainer_engine.data.errors import DatasetError

LOGGER = logging.getLogger(__name__)

IMG_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
LAYOUT = "train/<class>/<image> and val/<class>/<image>"
# In-process memo of verified image lists, so the dataset does not re-verify what the check just did.
_SCANS: dict[tuple[str, tuple[int, ...]], list[tuple[str, int]]] = {}


def check_cls_dataset(data: str | Path | None, split: str = "val") -> dict[str, Any]:
    """Validate a classification dataset and return {path, train, val, nc, names} without writing anything."""
    if data is None or str(data).strip() == "":
        raise DatasetError(
            "data is not set; pass data=<folder with train/ and val/> or data=synthetic:classify"
        )
    if str(data).startswith("synthetic:") and not is_synthetic(str(data)):
        raise DatasetError(
            f"unknown synthetic data set {data!r}; the classify task offers synthetic:classify"
        )
    root = ensure_synthetic(str(data)) if is_synthetic(str(data)) else Path(data).expanduser()
    if not root.exists():
        raise DatasetError(f"dataset folder {str(root)!r} not found; create it with {LAYOUT}")
    if not root.is_dir():
        raise DatasetError(
            f"data {str(root)!r} is a file, not a folder; point data= at a folder with {LAYOUT}"
        )
    train = _split_dir(root, "train")
    val = _split_dir(root, split if split in ("val", "test") else "val")
    names = _class_names(train)
    _check_same_classes(train, val, names)
    for split_dir in (train, val):
        scan_split(split_dir, names)
    out = {"path": root, "train": train, "val": val, "nc": len(names), "names": dict(enumerate(names))}
    if split == "train":
        out["val"] = train
    return out


def _split_dir(root: Path, split: str) -> Path:
    path = root / split
    if not path.is_dir():
        raise DatasetError(
            f"dataset {str(root)!r} has no {split}/ folder; put {split} images in {split}/<class>/<image> "
            f"(layout: {LAYOUT})"
        )
    return path


def _class_names(train: Path) -> list[str]:
    names = sorted(p.name for p in train.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        loose = [p for p in train.iterdir() if p.suffix.lower() in IMG_EXTENSIONS]
        extra = f" ({len(loose)} images lie directly in it: move them into class subfolders)" if loose else ""
        raise DatasetError(f"{str(train)!r} has no class folders{extra}; put each class in train/<class>/")
    if len(names) < 2:
        raise DatasetError(
            f"{str(train)!r} has one class folder ({names[0]}); classification needs at least 2"
        )
    return names


def _check_same_classes(train: Path, val: Path, names: list[str]) -> None:
    val_names = sorted(p.name for p in val.iterdir() if p.is_dir() and not p.name.startswith("."))
    if val_names != names:
        only_train = sorted(set(names) - set(val_names))
        only_val = sorted(set(val_names) - set(names))
        raise DatasetError(
            f"class folders differ between {train.name}/ and {val.name}/: "
            f"only in {train.name}: {only_train}, only in {val.name}: {only_val}; "
            "give both splits the same class folders"
        )


def scan_split(split_dir: Path, names: list[str]) -> list[tuple[str, int]]:
    """Return (image path, class index) for a split's readable images; every class must have some."""
    key = (str(split_dir.resolve()), tuple(os.stat(split_dir / n).st_mtime_ns for n in names))
    if key in _SCANS:
        return _SCANS[key]
    files = [
        (str(p), c)
        for c, name in enumerate(names)
        for p in sorted((split_dir / name).iterdir())
        if p.suffix.lower() in IMG_EXTENSIONS and p.is_file()
    ]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        problems = list(pool.map(verify_image, (f for f, _ in files)))
    bad = [(f, why) for (f, _), why in zip(files, problems, strict=True) if why]
    if bad:
        shown = "; ".join(f"{f}: {why}" for f, why in bad[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        LOGGER.warning("skipping %d unreadable image(s) in %s: %s%s", len(bad), split_dir, shown, more)
    samples = [s for s, why in zip(files, problems, strict=True) if not why]
    counts = [0] * len(names)
    for _, c in samples:
        counts[c] += 1
    empty = [f"{split_dir.name}/{n}" for n, k in zip(names, counts, strict=True) if k == 0]
    if empty:
        raise DatasetError(
            f"class folders with no readable images: {', '.join(empty)}; add images "
            f"({', '.join(IMG_EXTENSIONS)}) or remove the folder from every split"
        )
    _SCANS[key] = samples
    return samples


def verify_image(path: str) -> str | None:
    """Return why an image cannot be used, or None when it decodes."""
    try:
        with Image.open(path) as im:
            im.verify()  # checks structure without a full decode
        with Image.open(path) as im:
            if min(im.size) < 2:
                return f"image is too small ({im.size[0]}x{im.size[1]})"
    except Exception as e:  # PIL raises many types for bad files; each means "skip this one"
        return f"{type(e).__name__}: {e}"
    return None
