"""Check an unpacked dataset and describe it: its layout, splits, classes and counts, and every problem.

Two layouts, told apart by what the top folder holds (one wrapping folder is looked through):

    YOLO detection     data.yaml (train, val, names; `path` relative) + images/<split>/ + labels/<split>/
    ImageFolder        train/<class>/<image>, val/<class>/<image>

The engine's own parsing does the reading (`check_det_dataset`, `img_files`, `label_path`,
`parse_label_file`, `image_shape`; `verify_image` for ImageFolder), so a set that passes here reads
the same way in training. Places are paths relative to the dataset's top folder, never the server's.
Images without a label file are warnings (YOLO reads them as background); everything else is a
problem and makes the dataset invalid.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from trainer_engine.data.classify.folder import IMG_EXTENSIONS, verify_image
from trainer_engine.data.detect.labels import image_shape, img_files, label_path, parse_label_file
from trainer_engine.data.detect.yaml_data import check_det_dataset
from trainer_engine.data.errors import DatasetError
from trainforge.datasets.service import DATA_YAML

# Problems and warnings listed in full up to this many; the counts are always exact.
MAX_LISTED = 200
_THREADS = min(8, os.cpu_count() or 1)


@dataclass
class Report:
    """What a dataset holds and what is wrong with it."""

    task: str | None = None
    layout: str | None = None
    root: str = "."
    splits: dict[str, dict[str, Any]] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return whether the dataset can be trained on."""
        return self.task is not None and not self.problems

    def to_dict(self) -> dict[str, Any]:
        """Return the report as stored on the dataset row (long lists cut, with their full counts)."""
        return {
            "task": self.task,
            "layout": self.layout,
            "root": self.root,
            "names": self.names,
            "splits": self.splits,
            "problem_count": len(self.problems),
            "problems": self.problems[:MAX_LISTED],
            "warning_count": len(self.warnings),
            "warnings": self.warnings[:MAX_LISTED],
        }

    def summary(self) -> str:
        """Return one line naming the first problems, for the row's error field."""
        shown = "; ".join(self.problems[:3])
        more = f" (and {len(self.problems) - 3} more, see the report)" if len(self.problems) > 3 else ""
        return f"{len(self.problems)} problem(s): {shown}{more}"


def top_folder(folder: Path) -> Path:
    """Return the dataset's top folder: `folder`, or the one folder it wraps (shapes.zip → shapes/)."""
    if (folder / DATA_YAML).is_file() or (folder / "train").is_dir():
        return folder
    entries = [p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


def check_dataset(folder: Path) -> Report:
    """Describe the unpacked dataset in `folder`."""
    top = top_folder(folder)
    report = Report(root=top.relative_to(folder).as_posix() or ".")
    if (top / DATA_YAML).is_file():
        _check_yolo(top, report)
    elif (top / "train").is_dir():
        _check_image_folder(top, report)
    else:
        report.problems.append(
            f"unknown layout: expected {DATA_YAML} with images/ and labels/ (YOLO detection) or "
            "train/<class>/ and val/<class>/ (ImageFolder classification) at the top of the archive"
        )
    return report


class _Places:
    """Rewrites absolute paths under the dataset's top folder to the relative places users know."""

    def __init__(self, top: Path) -> None:
        self.prefixes = sorted({str(top) + os.sep, str(top.resolve()) + os.sep}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for prefix in self.prefixes:
            text = text.replace(prefix, "")
        return text


def _inside(value: Any, what: str) -> str | None:
    """Return why a data.yaml path `value` may not be used (absolute, `..`), or None."""
    if not isinstance(value, str):
        return f"{DATA_YAML}: {what} must be a folder path inside the dataset, got {value!r}"
    path = PurePosixPath(value)
    if path.is_absolute() or ".." in path.parts or "\\" in value:
        return f"{DATA_YAML}: {what} {value!r} points outside the dataset; use a path relative to {DATA_YAML}"
    return None


def _check_yolo(top: Path, report: Report) -> None:
    """Check a YOLO detection set through the engine's own reader."""
    report.layout, places = "yolo", _Places(top)
    try:
        raw = yaml.safe_load((top / DATA_YAML).read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        report.problems.append(f"{DATA_YAML}: not valid YAML ({type(exc).__name__})")
        return
    if not isinstance(raw, dict):
        report.problems.append(f"{DATA_YAML}: expected a mapping with train, val and names")
        return
    bad = [why for key in ("path", "train", "val", "test") if key in raw and raw[key] is not None
           for why in [_inside(raw[key], key)] if why]  # fmt: skip
    if bad:
        report.problems += bad
        return
    try:
        cfg = check_det_dataset(top / DATA_YAML)
    except DatasetError as exc:
        report.problems.append(places(str(exc)))
        return
    report.task, report.names = "detect", [cfg["names"][i] for i in range(cfg["nc"])]
    for split in ("train", "val", "test"):
        if cfg.get(split):
            report.splits[split] = _yolo_split(split, cfg[split], cfg["nc"], report, places)


def _yolo_split(split: str, paths: list[str], nc: int, report: Report, places: _Places) -> dict[str, Any]:
    """Count a split's images and instances per class; add every problem found to the report."""
    for path in paths:
        if not Path(path).is_dir():
            report.problems.append(f"{DATA_YAML}: {split} {places(path)!r} is not a folder of images")
            return {"images": 0, "instances": 0}
    files = img_files(paths)
    if not files:
        report.problems.append(f"{split}: empty split, no images in {', '.join(places(p) for p in paths)}")
        return {"images": 0, "instances": 0}
    with ThreadPoolExecutor(_THREADS) as pool:
        shapes = list(pool.map(image_shape, files))
    instances: Counter[str] = Counter()
    images: Counter[str] = Counter()
    usable = 0
    for file, shape in zip(files, shapes, strict=True):
        if shape is None:
            report.problems.append(f"{places(file)}: image does not decode (re-export it or delete it)")
            continue
        usable += 1
        labels = label_path(file)
        if not labels.is_file():
            report.warnings.append(
                f"{places(file)}: no label file {places(str(labels))} (read as background)"
            )
            continue
        rows, problems = parse_label_file(labels, nc)
        report.problems += [places(p).removesuffix("; line skipped") for p in problems]
        classes = [report.names[int(c)] for c in rows[:, 0]] if len(rows) else []
        instances.update(classes)
        images.update(set(classes))
    return {
        "images": len(files),
        "usable_images": usable,
        "instances": sum(instances.values()),
        "classes": {name: {"images": images[name], "instances": instances[name]} for name in report.names},
    }


def _check_image_folder(top: Path, report: Report) -> None:
    """Check an ImageFolder classification set: same classes in every split, each with readable images."""
    report.layout = "imagefolder"
    splits = [s for s in ("train", "val", "test") if (top / s).is_dir()]
    if "val" not in splits:
        report.problems.append("val/: missing; put validation images in val/<class>/<image>")
    names = sorted(p.name for p in (top / "train").iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(names) < 2:
        report.problems.append(f"train/: {len(names)} class folder(s); classification needs at least 2")
    report.names = names
    for split in splits:
        found = sorted(p.name for p in (top / split).iterdir() if p.is_dir() and not p.name.startswith("."))
        for name in sorted(set(names) ^ set(found)):
            where = "train/ but not " + split if name in names else split + "/ but not train"
            report.problems.append(
                f"{split}/{name}: class folder in {where}/; give every split the same classes"
            )
        report.splits[split] = _folder_split(top, split, names, report)
    report.task = "classify"


def _folder_split(top: Path, split: str, names: list[str], report: Report) -> dict[str, Any]:
    """Verify every image of one split; count them per class."""
    files = [
        (path, name)
        for name in names
        if (top / split / name).is_dir()
        for path in sorted((top / split / name).iterdir())
        if path.is_file() and path.suffix.lower() in IMG_EXTENSIONS
    ]
    with ThreadPoolExecutor(_THREADS) as pool:
        verdicts = list(pool.map(verify_image, (str(p) for p, _ in files)))
    counts: Counter[str] = Counter()
    for (path, name), why in zip(files, verdicts, strict=True):
        if why:
            report.problems.append(
                f"{path.relative_to(top).as_posix()}: image does not decode ({why.split(':')[0]})"
            )
        else:
            counts[name] += 1
    if not files:
        report.problems.append(f"{split}/: empty split, no images")
    for name in names:
        if (top / split / name).is_dir() and counts[name] == 0 and files:
            report.problems.append(f"{split}/{name}: no readable images")
    return {"images": len(files), "classes": {name: {"images": counts[name]} for name in names}}
