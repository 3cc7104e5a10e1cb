"""Tiny datasets written on the fly for the dataset tests (`from dataset_helpers import ...`).

`yolo_set(root)` writes a two-class YOLO folder of 32 px images, `image_folder(root)` an ImageFolder
one; both take edits so a test breaks one thing. `pack(folder, fmt)` zips or tars a folder.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

from PIL import Image

COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40)]


def png(colour: tuple[int, int, int], size: int = 32) -> bytes:
    """Return a PNG of one colour with a lighter square in the middle."""
    image = Image.new("RGB", (size, size), colour)
    image.paste((255, 255, 255), (size // 4, size // 4, 3 * size // 4, 3 * size // 4))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def yolo_set(root: Path, images: int = 4, names: tuple[str, ...] = ("a", "b")) -> Path:
    """Write data.yaml, images/{train,val}/imgN.png and labels/{train,val}/imgN.txt; return `root`."""
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i in range(images):
            cls = i % len(names)
            (root / "images" / split / f"img{i}.png").write_bytes(png(COLOURS[cls]))
            (root / "labels" / split / f"img{i}.txt").write_text(f"{cls} 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text(f"path: .\ntrain: images/train\nval: images/val\nnames: {list(names)}\n")
    return root


def image_folder(root: Path, images: int = 3, names: tuple[str, ...] = ("cat", "dog")) -> Path:
    """Write train/<class>/ and val/<class>/ with `images` PNGs per class; return `root`."""
    for split in ("train", "val"):
        for c, name in enumerate(names):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(images):
                (root / split / name / f"{i}.png").write_bytes(png(COLOURS[c]))
    return root


def pack(folder: Path, fmt: str = "zip", top: str | None = None) -> bytes:
    """Return `folder` packed as a zip or tar.gz (entries under `top/` when given)."""
    out = io.BytesIO()
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    prefix = f"{top}/" if top else ""
    if fmt == "zip":
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, prefix + path.relative_to(folder).as_posix())
    else:
        with tarfile.open(fileobj=out, mode="w:gz") as tar:
            for path in files:
                tar.add(path, prefix + path.relative_to(folder).as_posix())
    return out.getvalue()
