"""The built-in synthetic detection set: coloured shapes on cluttered backgrounds, written as a YOLO folder.

`data="synthetic:shapes?train=1000&val=200&size=128&seed=0&classes=4"` (every option optional).
Each image holds 1-6 shapes (circle, square, triangle, cross, ...) of 8-45 % of the image side, in
random colours, over a random two-colour gradient with distractor lines, arcs and speckle noise.
Shapes may overlap partly (never hiding most of another). The set is generated once per option set
from the seed, under `$TRAINER_ENGINE_DATA_DIR` (default `~/.cache/trainer_engine/datasets`), as
`images/{train,val}`, `labels/{train,val}` and a `data.yaml`, so the ordinary YOLO loader reads it.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import yaml
from PIL import Image, ImageDraw

from trainer_engine.data.cache import materialize
from trainer_engine.data.errors import DatasetError

PREFIX = "synthetic:shapes"
GENERATOR_VERSION = 1  # bump when the images change, so old caches are not reused
SHAPES = ["circle", "square", "triangle", "cross", "diamond", "ring"]
SUPERSAMPLE = 2  # draw at twice the size and downsample, for anti-aliased edges


@dataclass(frozen=True)
class ShapesSpec:
    """Options of the synthetic shapes set."""

    train: int = 1000
    val: int = 200
    size: int = 128
    seed: int = 0
    classes: int = 4

    @property
    def dirname(self) -> str:
        """Cache folder name: one per option set and generator version."""
        s = self
        return f"shapes-v{GENERATOR_VERSION}-c{s.classes}-train{s.train}-val{s.val}-size{s.size}-seed{s.seed}"


_LIMITS = {"train": (1, 1_000_000), "val": (1, 1_000_000), "size": (32, 2048), "classes": (1, len(SHAPES))}


def parse_spec(data: str) -> ShapesSpec:
    """Parse `synthetic:shapes?key=value&...` into a ShapesSpec, with clear errors."""
    if data != PREFIX and not data.startswith(PREFIX + "?"):
        raise DatasetError(
            f"unknown synthetic set {data!r}; use {PREFIX} or {PREFIX}?train=256&val=64&size=128"
        )
    fields = list(asdict(ShapesSpec()))
    values: dict[str, int] = {}
    for key, raw in parse_qsl(data.partition("?")[2], keep_blank_values=True):
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise DatasetError(f"unknown {PREFIX} option {key!r}; {hint}options: {', '.join(fields)}")
        try:
            values[key] = int(raw)
        except ValueError:
            raise DatasetError(f"{PREFIX} option {key}={raw!r} must be an integer") from None
        lo, hi = _LIMITS.get(key, (0, 2**31 - 1))
        if not lo <= values[key] <= hi:
            raise DatasetError(f"{PREFIX} option {key}={values[key]} must be between {lo} and {hi}")
    return ShapesSpec(**values)


def synthetic_shapes(data: str = PREFIX) -> str:
    """Return the data.yaml path of a synthetic shapes set, generating it on first use (atomically)."""
    spec = parse_spec(data)
    return str(materialize(spec.dirname, "data.yaml", lambda root: write_shapes(spec, root)) / "data.yaml")


def write_shapes(spec: ShapesSpec, root: Path) -> None:
    """Generate every image and label file of `spec` under `root`."""
    for split_id, split in enumerate(("train", "val")):
        rng = np.random.default_rng([spec.seed, split_id])
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(getattr(spec, split)):
            img, labels = render(rng, spec.size, spec.classes)
            Image.fromarray(img).save(root / "images" / split / f"{i:05d}.jpg", quality=92)
            lines = [f"{c} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}" for c, cx, cy, w, h in labels]
            (root / "labels" / split / f"{i:05d}.txt").write_text("\n".join(lines) + "\n")
    meta = {"path": ".", "train": "images/train", "val": "images/val", "names": SHAPES[: spec.classes]}
    (root / "data.yaml").write_text(f"# {PREFIX} {asdict(spec)}\n" + yaml.safe_dump(meta, sort_keys=False))


def render(rng: np.random.Generator, size: int, classes: int) -> tuple[np.ndarray, list[tuple]]:
    """Draw one image; return it and its `(class, cx, cy, w, h)` normalised labels."""
    big = size * SUPERSAMPLE
    canvas = _background(rng, big)
    draw = ImageDraw.Draw(canvas)
    _clutter(rng, draw, big)
    boxes: list[np.ndarray] = []
    labels = []
    for _ in range(int(rng.integers(1, 7))):
        box = _place(rng, big, boxes)
        if box is None:
            continue
        cls = int(rng.integers(classes))
        _draw_shape(draw, SHAPES[cls], box, _colour(rng), rng)
        boxes.append(box)
        x1, y1, x2, y2 = box / big
        labels.append((cls, (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1))
    img = canvas.resize((size, size), Image.BILINEAR)
    noisy = np.asarray(img, np.float32) + rng.normal(0, 6, (size, size, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8), labels


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    """Return a random two-colour linear gradient."""
    a, b = rng.uniform(0, 255, (2, 3))
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size] / size
    t = np.cos(angle) * xx + np.sin(angle) * yy
    t = (t - t.min()) / (np.ptp(t) + 1e-9)
    return Image.fromarray((a + (b - a) * t[..., None]).astype(np.uint8))


def _clutter(rng: np.random.Generator, draw: ImageDraw.ImageDraw, size: int) -> None:
    """Draw distractors that are not objects: lines, arcs and small dots."""
    for _ in range(int(rng.integers(3, 9))):
        kind = rng.integers(3)
        xy = [tuple(p) for p in rng.uniform(0, size, (2, 2))]
        colour = _colour(rng)
        width = int(rng.integers(1, 3) * SUPERSAMPLE)
        if kind == 0:
            draw.line(xy, fill=colour, width=width)
        elif kind == 1:
            (x1, y1), (x2, y2) = xy
            box = (min(x1, x2), min(y1, y2), max(x1, x2) + 1, max(y1, y2) + 1)
            draw.arc(box, *sorted(rng.uniform(0, 360, 2)), fill=colour, width=width)
        else:
            x, y = xy[0]
            r = rng.uniform(1, 2.5) * SUPERSAMPLE
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)


def _place(rng: np.random.Generator, size: int, boxes: list[np.ndarray]) -> np.ndarray | None:
    """Pick a box that hides at most 40 % of any earlier box (and is not hidden itself); None after tries."""
    for _ in range(20):
        side = rng.uniform(0.08, 0.45) * size
        aspect = rng.uniform(0.7, 1.4)
        w, h = side * aspect**0.5, side / aspect**0.5
        x1, y1 = rng.uniform(0, size - w), rng.uniform(0, size - h)
        box = np.array([x1, y1, x1 + w, y1 + h])
        if all(_covered(box, other) < 0.4 for other in boxes):
            return box
    return None


def _covered(new: np.ndarray, old: np.ndarray) -> float:
    """Fraction of the smaller of two boxes that their intersection covers."""
    iw = max(0.0, min(new[2], old[2]) - max(new[0], old[0]))
    ih = max(0.0, min(new[3], old[3]) - max(new[1], old[1]))
    small = min((new[2] - new[0]) * (new[3] - new[1]), (old[2] - old[0]) * (old[3] - old[1]))
    return iw * ih / small


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """Return a random RGB colour."""
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _draw_shape(
    draw: ImageDraw.ImageDraw, name: str, box: np.ndarray, colour: tuple, rng: np.random.Generator
) -> None:
    """Fill a shape that touches all four sides of its box, with a contrasting outline."""
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    outline = tuple(255 - c for c in colour)
    width = SUPERSAMPLE
    if name == "circle":
        draw.ellipse((x1, y1, x2, y2), fill=colour, outline=outline, width=width)
    elif name == "square":
        draw.rectangle((x1, y1, x2, y2), fill=colour, outline=outline, width=width)
    elif name == "triangle":
        pts = (
            [(x1 + w / 2, y1), (x2, y2), (x1, y2)]
            if rng.random() < 0.5
            else [(x1, y1), (x2, y1), (x1 + w / 2, y2)]
        )
        draw.polygon(pts, fill=colour, outline=outline, width=width)
    elif name == "cross":
        tw, th = w * 0.3, h * 0.3
        pts = [
            (x1 + (w - tw) / 2, y1),
            (x1 + (w + tw) / 2, y1),
            (x1 + (w + tw) / 2, y1 + (h - th) / 2),
            (x2, y1 + (h - th) / 2),
            (x2, y1 + (h + th) / 2),
            (x1 + (w + tw) / 2, y1 + (h + th) / 2),
            (x1 + (w + tw) / 2, y2),
            (x1 + (w - tw) / 2, y2),
            (x1 + (w - tw) / 2, y1 + (h + th) / 2),
            (x1, y1 + (h + th) / 2),
            (x1, y1 + (h - th) / 2),
            (x1 + (w - tw) / 2, y1 + (h - th) / 2),
        ]
        draw.polygon(pts, fill=colour, outline=outline, width=width)
    elif name == "diamond":
        pts = [(x1 + w / 2, y1), (x2, y1 + h / 2), (x1 + w / 2, y2), (x1, y1 + h / 2)]
        draw.polygon(pts, fill=colour, outline=outline, width=width)
    else:  # ring
        draw.ellipse((x1, y1, x2, y2), outline=colour, width=max(width, int(min(w, h) * 0.18)))
