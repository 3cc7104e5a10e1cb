"""The built-in synthetic classification set: patterns on random colours, written as an ImageFolder.

`data="synthetic:classify?classes=4&train=512&val=128&size=32&seed=0"` (every option optional).
Each class is a pattern (stripes, checkerboard, disk, ring, ...) drawn with a random foreground and
background colour from the same distribution for every class, at a random scale, phase and position,
with pixel noise: the mean colour of an image says nothing about its class, its shape does.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
from PIL import Image

from trainer_engine.data.cache import materialize
from trainer_engine.data.errors import DatasetError

PREFIX = "synthetic:classify"
GENERATOR_VERSION = 1  # bump when the images change, so old caches are not reused

Mask = Callable[[np.random.Generator, np.ndarray, np.ndarray, int], np.ndarray]


def _stripes(axis: str) -> Mask:
    def draw(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, size: int) -> np.ndarray:
        period = rng.uniform(0.15, 0.3) * size
        coord = {"h": yy, "v": xx, "d": (xx + yy) / np.sqrt(2)}[axis]
        return ((coord + rng.uniform(0, period)) % period) < period / 2

    return draw


def _checker(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, size: int) -> np.ndarray:
    cell = rng.uniform(0.1, 0.2) * size
    oy, ox = rng.uniform(0, 2 * cell, 2)
    return ((np.floor((yy + oy) / cell) + np.floor((xx + ox) / cell)) % 2) == 0


def _radius(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, size: int) -> np.ndarray:
    cy, cx = rng.uniform(0.35, 0.65, 2) * size
    return np.hypot(yy - cy, xx - cx)


def _disk(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, size: int) -> np.ndarray:
    return _radius(rng, yy, xx, size) < rng.uniform(0.25, 0.38) * size


def _ring(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, size: int) -> np.ndarray:
    r = _radius(rng, yy, xx, size)
    outer = rng.uniform(0.28, 0.4) * size
    return (r < outer) & (r > outer - rng.uniform(0.1, 0.15) * size)


def _cross(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, size: int) -> np.ndarray:
    cy, cx = rng.uniform(0.35, 0.65, 2) * size
    half = rng.uniform(0.08, 0.14) * size
    return (np.abs(yy - cy) < half) | (np.abs(xx - cx) < half)


def _square(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, size: int) -> np.ndarray:
    cy, cx = rng.uniform(0.35, 0.65, 2) * size
    half = rng.uniform(0.2, 0.3) * size
    return (np.abs(yy - cy) < half) & (np.abs(xx - cx) < half)


def _dots(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, size: int) -> np.ndarray:
    cell = rng.uniform(0.2, 0.3) * size
    oy, ox = rng.uniform(0, cell, 2)
    dy, dx = (yy + oy) % cell - cell / 2, (xx + ox) % cell - cell / 2
    return np.hypot(dy, dx) < cell * 0.3


def _triangle(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, size: int) -> np.ndarray:
    cy, cx = rng.uniform(0.4, 0.6, 2) * size
    h = rng.uniform(0.5, 0.75) * size
    top = cy - h / 2
    inside_height = (yy >= top) & (yy <= top + h)
    return inside_height & (np.abs(xx - cx) <= (yy - top) * 0.6)


# Class name -> mask drawer; `classes=N` takes the first N.
PATTERNS: dict[str, Mask] = {
    "checker": _checker,
    "disk": _disk,
    "hstripes": _stripes("h"),
    "vstripes": _stripes("v"),
    "ring": _ring,
    "cross": _cross,
    "square": _square,
    "dstripes": _stripes("d"),
    "dots": _dots,
    "triangle": _triangle,
}


@dataclass(frozen=True)
class SyntheticSpec:
    """Options of the synthetic set; `train`/`val` are image counts per split, spread over the classes."""

    classes: int = 4
    train: int = 512
    val: int = 128
    size: int = 32
    seed: int = 0

    @property
    def names(self) -> list[str]:
        """Class names in index order."""
        return sorted(list(PATTERNS)[: self.classes])

    @property
    def dirname(self) -> str:
        """Cache folder name: one per option set and generator version."""
        s = self
        return (
            f"classify-v{GENERATOR_VERSION}-c{s.classes}-train{s.train}-val{s.val}-size{s.size}-seed{s.seed}"
        )


_LIMITS = {"classes": (2, len(PATTERNS)), "train": (2, 1_000_000), "val": (2, 1_000_000), "size": (8, 1024)}


def is_synthetic(data: object) -> bool:
    """Tell whether `data` names the synthetic classification set."""
    return isinstance(data, str) and (data == PREFIX or data.startswith(PREFIX + "?"))


def parse_spec(data: str) -> SyntheticSpec:
    """Parse `synthetic:classify?key=value&...` into a SyntheticSpec, with clear errors."""
    query = data[len(PREFIX) + 1 :] if "?" in data else ""
    values: dict[str, int] = {}
    fields = list(asdict(SyntheticSpec()))
    for key, raw in parse_qsl(query, keep_blank_values=True):
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise DatasetError(
                f"unknown synthetic:classify option {key!r}; {hint}options: {', '.join(fields)}"
            )
        try:
            values[key] = int(raw)
        except ValueError:
            raise DatasetError(f"synthetic:classify option {key}={raw!r} must be an integer") from None
        lo, hi = _LIMITS.get(key, (0, 2**31 - 1))
        if not lo <= values[key] <= hi:
            raise DatasetError(f"synthetic:classify option {key}={values[key]} must be between {lo} and {hi}")
    spec = SyntheticSpec(**values)
    for split in ("train", "val"):
        if getattr(spec, split) < spec.classes:
            raise DatasetError(
                f"synthetic:classify {split}={getattr(spec, split)} is fewer images than "
                f"classes={spec.classes}; "
                "give at least one image per class"
            )
    return spec


def ensure_synthetic(data: str) -> Path:
    """Return the ImageFolder root of a synthetic set, generating it on first use (atomically)."""
    spec = parse_spec(data)
    # dataset.json is written last, so its presence means the set is complete.
    return materialize(spec.dirname, "dataset.json", lambda root: write_synthetic(spec, root))


def write_synthetic(spec: SyntheticSpec, root: Path) -> None:
    """Generate every image of `spec` as PNG files in `root/{train,val}/<class>/`."""
    for split_id, split in enumerate(("train", "val")):
        rng = np.random.default_rng([spec.seed, split_id])
        total = getattr(spec, split)
        for c, name in enumerate(spec.names):
            folder = root / split / name
            folder.mkdir(parents=True)
            count = total // spec.classes + (c < total % spec.classes)
            for i in range(count):
                Image.fromarray(render(name, rng, spec.size)).save(folder / f"{i:05d}.png")
    meta = {**asdict(spec), "names": spec.names, "generator_version": GENERATOR_VERSION}
    (root / "dataset.json").write_text(json.dumps(meta, indent=2))


def render(name: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """Draw one HxWx3 uint8 image of pattern `name`."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    mask = PATTERNS[name](rng, yy, xx, size)[..., None]
    fg, bg = _colour_pair(rng)
    img = np.where(mask, fg, bg) + rng.normal(0, 0.06, (size, size, 3))
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def _colour_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # Both colours come from one distribution whatever the class, so the class-mean colour is the same
    # grey for all; redraw pairs too close to tell apart so every image shows its pattern.
    while True:
        a, b = rng.uniform(0, 1, (2, 3))
        if np.abs(a - b).sum() > 0.6:
            return a, b
