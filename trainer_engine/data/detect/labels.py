"""Find a split's images, read and check their YOLO label files, and cache the result (see data.cache)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from trainer_engine.data.cache import label_cache_file
from trainer_engine.data.errors import DatasetError

LOGGER = logging.getLogger("trainer_engine")
IMG_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
CACHE_VERSION = 1
COORD_TOL = 1e-3  # tolerance for coordinates rounded just past the image edge by label tools


@dataclass
class LabelSet:
    """Images that decode, their (n, 5) `class cx cy w h` labels, and every problem found, as text."""

    im_files: list[str] = field(default_factory=list)
    shapes: list[tuple[int, int]] = field(default_factory=list)  # (height, width)
    labels: list[np.ndarray] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def img_files(paths: list[str]) -> list[str]:
    """List the image files under the given folders or listed in the given .txt files."""
    files: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += [str(f) for f in sorted(p.rglob("*")) if f.suffix.lower() in IMG_SUFFIXES]
        elif p.suffix == ".txt":
            lines = [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
            files += [str(p.parent / ln) if not Path(ln).is_absolute() else ln for ln in lines]
        elif p.suffix.lower() in IMG_SUFFIXES:
            files.append(str(p))
    return files


def label_path(im_file: str) -> Path:
    """Return the label file of an image: the last `images` folder swapped for `labels`, suffix `.txt`."""
    parts = list(Path(im_file).parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def parse_label_file(path: Path, nc: int) -> tuple[np.ndarray, list[str]]:
    """Return the valid (n, 5) rows of a label file and a `file:line: problem` message per bad line."""
    rows, problems = [], []
    if not path.is_file():
        return np.zeros((0, 5), np.float32), problems  # an image with no label file is a background image
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        problem, row = _check_line(line.split(), nc)
        if problem:
            problems.append(f"{path}:{lineno}: {problem}; line skipped")
        else:
            rows.append(row)
    return (np.array(rows, np.float32) if rows else np.zeros((0, 5), np.float32)), problems


def _check_line(fields: list[str], nc: int) -> tuple[str | None, list[float]]:
    """Check one `class cx cy w h` line; return (problem or None, values)."""
    if len(fields) != 5:
        return f"expected 5 values 'class cx cy w h', found {len(fields)}", []
    try:
        values = [float(v) for v in fields]
    except ValueError:
        return f"non-numeric value in {' '.join(fields)!r}", []
    cls, cx, cy, w, h = values
    if cls != int(cls) or not 0 <= cls < nc:
        return f"class {fields[0]} is not an integer in 0..{nc - 1} (the data YAML names {nc} classes)", []
    if w <= 0 or h <= 0:
        return f"box width/height must be > 0, got w={w:g} h={h:g}", []
    lo, hi = -COORD_TOL, 1 + COORD_TOL
    if not all(lo <= v <= hi for v in (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)):
        return (
            f"box {cx:g} {cy:g} {w:g} {h:g} reaches outside the image; coordinates are normalised to 0..1",
            [],
        )
    return None, values


def image_shape(im_file: str) -> tuple[int, int] | None:
    """Return (height, width) if the image decodes, else None."""
    try:
        with Image.open(im_file) as im:
            im.verify()  # checks the file structure without decoding every pixel
        with Image.open(im_file) as im:
            return im.height, im.width
    except Exception:  # PIL raises many types for corrupt files; any of them means "unusable"
        return None


def load_labels(paths: list[str], nc: int, split: str = "train") -> LabelSet:
    """Scan a split (using the cache when the files did not change) and log each problem once."""
    files = img_files(paths)
    if not files:
        raise DatasetError(
            f"no images found in {split} path(s) {paths}; expected {', '.join(sorted(IMG_SUFFIXES))} files"
        )
    key = _files_hash(files, nc)
    cache_file = label_cache_file(label_path(files[0]).parent)
    labels = _read_cache(cache_file, key)
    if labels is None:
        labels = _scan(files, nc)
        _write_cache(cache_file, key, labels)
    for problem in labels.problems:
        LOGGER.warning(problem)
    if not labels.im_files:
        raise DatasetError(
            f"no usable images in {split} path(s) {paths}: {len(labels.problems)} problems, e.g. "
            f"{labels.problems[0] if labels.problems else 'none'}"
        )
    return labels


def _scan(files: list[str], nc: int) -> LabelSet:
    """Read every image header and label file."""
    out = LabelSet()
    for f in files:
        shape = image_shape(f)
        if shape is None:
            out.problems.append(f"{f}: image does not decode; image skipped (re-export it or delete it)")
            continue
        rows, problems = parse_label_file(label_path(f), nc)
        out.problems += problems
        out.im_files.append(f)
        out.shapes.append(shape)
        out.labels.append(rows)
    return out


def _files_hash(files: list[str], nc: int) -> str:
    """Hash paths, sizes and modification times of images and labels, so any edit invalidates the cache."""
    h = hashlib.sha256(f"{CACHE_VERSION}:{nc}".encode())
    for f in files:
        for p in (Path(f), label_path(f)):
            try:
                st = p.stat()
                h.update(f"{p}:{st.st_size}:{st.st_mtime_ns};".encode())
            except OSError:
                h.update(f"{p}:missing;".encode())
    return h.hexdigest()


def _read_cache(path: Path, key: str) -> LabelSet | None:
    """Return the cached LabelSet when its key matches."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("key") != key:
        return None
    labels = [np.array(rows, np.float32).reshape(-1, 5) for rows in data["labels"]]
    return LabelSet(data["im_files"], [tuple(s) for s in data["shapes"]], labels, data["problems"])


def _write_cache(path: Path, key: str, labels: LabelSet) -> None:
    """Write the cache atomically; a read-only dataset folder just goes uncached."""
    data = {
        "key": key,
        "im_files": labels.im_files,
        "shapes": labels.shapes,
        "labels": [rows.tolist() for rows in labels.labels],
        "problems": labels.problems,
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError as exc:
        LOGGER.info("label cache not written (%s): %s", path, exc)
        tmp.unlink(missing_ok=True)
