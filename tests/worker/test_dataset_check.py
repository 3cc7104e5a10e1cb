"""Dataset validation: what a good set reports, and a table of broken sets, each problem with its place."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from dataset_helpers import image_folder, yolo_set

from worker.dataset_check import check_dataset


def test_a_yolo_set_is_described_per_split_and_class(tmp_path: Path) -> None:
    yolo_set(tmp_path / "up" / "shapes", images=4)  # one wrapping folder, as a zip of a folder has
    report = check_dataset(tmp_path / "up")
    assert report.ok, report.problems
    assert (report.task, report.layout, report.root, report.names) == ("detect", "yolo", "shapes", ["a", "b"])
    assert report.splits["train"] == {
        "images": 4,
        "usable_images": 4,
        "instances": 4,
        "classes": {"a": {"images": 2, "instances": 2}, "b": {"images": 2, "instances": 2}},
    }
    assert not list((tmp_path / "up").rglob("*.cache.json")), "validation writes nothing into the set"


def test_an_image_folder_set_is_described(tmp_path: Path) -> None:
    report = check_dataset(image_folder(tmp_path / "set", images=3))
    assert report.ok, report.problems
    assert (report.task, report.layout, report.names) == ("classify", "imagefolder", ["cat", "dog"])
    assert report.splits["val"] == {"images": 6, "classes": {"cat": {"images": 3}, "dog": {"images": 3}}}


def _label(line: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        (root / "labels" / "train" / "img3.txt").write_text(
            "0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n" + line
        )

    return edit


def _yaml(text: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        (root / "data.yaml").write_text(text)

    return edit


def _corrupt(path: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        (root / path).write_bytes(b"\x89PNG\r\n\x1a\nnot really")

    return edit


def _empty_val(root: Path) -> None:
    for path in (root / "images" / "val").iterdir():
        path.unlink()


def _remove(path: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        target = root / path
        for child in sorted(target.rglob("*"), reverse=True):
            child.unlink() if child.is_file() else child.rmdir()
        target.rmdir()

    return edit


BROKEN_YOLO = [
    (
        "class out of range",
        _label("7 0.5 0.5 0.2 0.2\n"),
        "labels/train/img3.txt:4: class 7 is not an integer in 0..1",
    ),
    ("too few values", _label("0 0.5 0.5\n"), "labels/train/img3.txt:4: expected 5 values"),
    (
        "box outside",
        _label("0 0.9 0.9 0.5 0.5\n"),
        "labels/train/img3.txt:4: box 0.9 0.9 0.5 0.5 reaches outside",
    ),
    ("undecodable image", _corrupt("images/train/img1.png"), "images/train/img1.png: image does not decode"),
    ("empty split", _empty_val, "val: empty split, no images in images/val"),
    ("missing names", _yaml("train: images/train\nval: images/val\n"), "missing key(s) names"),
    (
        "path escapes",
        _yaml("path: ../..\ntrain: images/train\nval: images/val\nnames: [a, b]\n"),
        "path '../..' points outside the dataset",
    ),
    (
        "absolute train",
        _yaml("train: /etc\nval: images/val\nnames: [a, b]\n"),
        "train '/etc' points outside the dataset",
    ),
    (
        "missing split folder",
        _yaml("train: images/nope\nval: images/val\nnames: [a, b]\n"),
        "train path 'images/nope' does not exist",
    ),
    ("not yaml", _yaml("names: [a, b\n"), "data.yaml: not valid YAML"),
]


@pytest.mark.parametrize(("case", "edit", "problem"), BROKEN_YOLO, ids=[c[0] for c in BROKEN_YOLO])
def test_broken_yolo_sets_name_each_problem_and_its_place(
    tmp_path: Path, case: str, edit: Callable[[Path], None], problem: str
) -> None:
    root = yolo_set(tmp_path / "set")
    edit(root)
    report = check_dataset(root)
    assert not report.ok
    assert any(problem in p for p in report.problems), report.problems
    assert str(tmp_path) not in " ".join(report.problems), (
        "places are relative to the dataset, not the server"
    )


def test_an_image_without_labels_is_a_warning_not_a_problem(tmp_path: Path) -> None:
    root = yolo_set(tmp_path / "set")
    (root / "labels" / "train" / "img2.txt").unlink()
    report = check_dataset(root)
    assert report.ok
    assert report.warnings == [
        "images/train/img2.png: no label file labels/train/img2.txt (read as background)"
    ]


BROKEN_FOLDERS = [
    ("one class", _remove("train/dog"), "train/: 1 class folder(s); classification needs at least 2"),
    ("classes differ", _remove("val/dog"), "val/dog: class folder in train/ but not val/"),
    ("no val", _remove("val"), "val/: missing"),
    ("undecodable", _corrupt("train/cat/1.png"), "train/cat/1.png: image does not decode"),
]


@pytest.mark.parametrize(("case", "edit", "problem"), BROKEN_FOLDERS, ids=[c[0] for c in BROKEN_FOLDERS])
def test_broken_image_folders_name_each_problem(
    tmp_path: Path, case: str, edit: Callable[[Path], None], problem: str
) -> None:
    root = image_folder(tmp_path / "set")
    edit(root)
    report = check_dataset(root)
    assert not report.ok
    assert any(problem in p for p in report.problems), report.problems


def test_an_unknown_layout_says_what_is_expected(tmp_path: Path) -> None:
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "readme.txt").write_text("hi")
    (tmp_path / "set" / "other.txt").write_text("hi")
    report = check_dataset(tmp_path / "set")
    assert not report.ok and report.task is None
    assert "unknown layout: expected data.yaml" in report.problems[0]
