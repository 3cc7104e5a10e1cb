"""Detection augmentations on (HWC uint8 image, (n, 4) xyxy pixel boxes): letterbox, mosaic, affine, HSV."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

PAD = 114  # grey fill, the usual letterbox colour


def resized_size(width: int, height: int, size: int) -> tuple[float, tuple[int, int]]:
    """Return the scale that brings the long side to `size` and the resulting (width, height)."""
    r = size / max(width, height)
    return r, (max(1, round(width * r)), max(1, round(height * r)))


def resize_long(img: Image.Image, size: int) -> tuple[Image.Image, float]:
    """Resize so the long side is `size`; return the image and the scale factor."""
    r, new_size = resized_size(img.width, img.height, size)
    if r != 1:
        img = img.resize(new_size, Image.BILINEAR)
    return img, r


def letterbox(img: Image.Image, size: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Fit an image into a size x size canvas keeping its aspect; return it, the scale and the (x, y) pad."""
    resized, r = resize_long(img, size)
    canvas = np.full((size, size, 3), PAD, np.uint8)
    x0, y0 = letterbox_pad(resized.width, resized.height, size)
    canvas[y0 : y0 + resized.height, x0 : x0 + resized.width] = np.asarray(resized)
    return canvas, r, (x0, y0)


def letterbox_pad(width: int, height: int, size: int) -> tuple[int, int]:
    """Return the (x, y) offset that centres a width x height image in a size x size canvas."""
    return round((size - width) / 2 - 0.1), round((size - height) / 2 - 0.1)


def xywhn_to_xyxy(boxes: np.ndarray, w: float, h: float, padx: float = 0, pady: float = 0) -> np.ndarray:
    """Normalised cx cy w h -> pixel x1 y1 x2 y2, shifted by a pad."""
    out = np.empty_like(boxes)
    out[:, 0] = (boxes[:, 0] - boxes[:, 2] / 2) * w + padx
    out[:, 1] = (boxes[:, 1] - boxes[:, 3] / 2) * h + pady
    out[:, 2] = (boxes[:, 0] + boxes[:, 2] / 2) * w + padx
    out[:, 3] = (boxes[:, 1] + boxes[:, 3] / 2) * h + pady
    return out


def xyxy_to_xywhn(boxes: np.ndarray, w: float, h: float) -> np.ndarray:
    """Pixel x1 y1 x2 y2 -> normalised cx cy w h."""
    out = np.empty_like(boxes)
    out[:, 0] = (boxes[:, 0] + boxes[:, 2]) / 2 / w
    out[:, 1] = (boxes[:, 1] + boxes[:, 3]) / 2 / h
    out[:, 2] = (boxes[:, 2] - boxes[:, 0]) / w
    out[:, 3] = (boxes[:, 3] - boxes[:, 1]) / h
    return out


def mosaic4(
    tiles: list[tuple[Image.Image, np.ndarray, np.ndarray]], size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Place four (image, normalised boxes, classes) tiles around a random centre of a 2*size canvas."""
    canvas = np.full((2 * size, 2 * size, 3), PAD, np.uint8)
    xc, yc = (int(v) for v in rng.uniform(size * 0.5, size * 1.5, 2))
    all_boxes, all_cls = [], []
    for i, (img, boxes, cls) in enumerate(tiles):
        img, _ = resize_long(img, size)
        w, h = img.size
        # Tile i touches the centre from the top-left, top-right, bottom-left, bottom-right.
        x1, y1 = (xc - w if i % 2 == 0 else xc), (yc - h if i < 2 else yc)
        cx1, cy1 = max(x1, 0), max(y1, 0)
        cx2, cy2 = min(x1 + w, 2 * size), min(y1 + h, 2 * size)
        canvas[cy1:cy2, cx1:cx2] = np.asarray(img)[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1]
        all_boxes.append(xywhn_to_xyxy(boxes, w, h, x1, y1))
        all_cls.append(cls)
    boxes = np.concatenate(all_boxes) if all_boxes else np.zeros((0, 4), np.float32)
    return canvas, boxes, np.concatenate(all_cls) if all_cls else np.zeros(0, np.float32)


def random_affine(
    img: np.ndarray,
    boxes: np.ndarray,
    cls: np.ndarray,
    out_size: int,
    rng: np.random.Generator,
    degrees: float = 0.0,
    translate: float = 0.1,
    scale: float = 0.5,
    shear: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotate/scale/shear/translate around the centre into an out_size square; drop boxes mostly cut off."""
    h, w = img.shape[:2]
    centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], np.float64)
    a, s = math.radians(rng.uniform(-degrees, degrees)), rng.uniform(1 - scale, 1 + scale)
    rot = np.array([[s * math.cos(a), -s * math.sin(a), 0], [s * math.sin(a), s * math.cos(a), 0], [0, 0, 1]])
    sh = np.eye(3)
    sh[0, 1], sh[1, 0] = (math.tan(math.radians(rng.uniform(-shear, shear))) for _ in range(2))
    move = np.eye(3)
    move[:2, 2] = rng.uniform(0.5 - translate, 0.5 + translate, 2) * out_size
    m = move @ sh @ rot @ centre
    inv = np.linalg.inv(m)
    pil = Image.fromarray(img).transform(
        (out_size, out_size), Image.AFFINE, tuple(inv[:2].ravel()), Image.BILINEAR, fillcolor=(PAD,) * 3
    )
    if len(boxes):
        corners = boxes[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 2)
        xy = (np.c_[corners, np.ones(len(corners))] @ m.T)[:, :2].reshape(-1, 8)
        new = np.stack([xy[:, 0::2].min(1), xy[:, 1::2].min(1), xy[:, 0::2].max(1), xy[:, 1::2].max(1)], 1)
        new = new.clip(0, out_size)
        keep = _box_kept(boxes * s, new)
        boxes, cls = new[keep].astype(np.float32), cls[keep]
    return np.asarray(pil), boxes, cls


def _box_kept(
    before: np.ndarray, after: np.ndarray, min_px: float = 2.0, min_area: float = 0.2
) -> np.ndarray:
    """Keep boxes at least min_px wide and tall that kept min_area of their (scaled) area after clipping."""
    w0, h0 = before[:, 2] - before[:, 0], before[:, 3] - before[:, 1]
    w1, h1 = after[:, 2] - after[:, 0], after[:, 3] - after[:, 1]
    return (w1 > min_px) & (h1 > min_px) & (w1 * h1 / (w0 * h0 + 1e-9) > min_area)


def augment_hsv(
    img: np.ndarray, rng: np.random.Generator, hgain: float, sgain: float, vgain: float
) -> np.ndarray:
    """Shift hue and scale saturation and value by random gains, through lookup tables."""
    if not (hgain or sgain or vgain):
        return img
    gh, gs, gv = rng.uniform(-1, 1, 3) * (hgain, sgain, vgain) + (0, 1, 1)
    hsv = np.asarray(Image.fromarray(img).convert("HSV")).copy()
    x = np.arange(256, dtype=np.float32)
    luts = [((x + gh * 255) % 256), np.clip(x * gs, 0, 255), np.clip(x * gv, 0, 255)]
    for c, lut in enumerate(luts):
        hsv[..., c] = lut.astype(np.uint8)[hsv[..., c]]
    return np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"))


def flip_lr(img: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror the image and its boxes left to right."""
    w = img.shape[1]
    boxes = boxes.copy()
    boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
    return np.ascontiguousarray(img[:, ::-1]), boxes


def flip_ud(img: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror the image and its boxes top to bottom."""
    h = img.shape[0]
    boxes = boxes.copy()
    boxes[:, [1, 3]] = h - boxes[:, [3, 1]]
    return np.ascontiguousarray(img[::-1]), boxes
