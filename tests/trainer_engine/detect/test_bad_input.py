"""Bad input to DetectionTrainer: each case fails (or warns) with a message naming the file and the fix."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.trainer_engine.detect.conftest import run_overrides, write_yolo_set
from trainer_engine.data.detect import DatasetError
from trainer_engine.models.detect import DetectionTrainer

GOOD = {"a": "0 0.5 0.5 0.4 0.4\n", "b": "1 0.3 0.3 0.2 0.2\n"}


def _data_yaml(root: Path, text: str) -> str:
    write_yolo_set(root, GOOD)
    (root / "data.yaml").write_text(text)
    return str(root / "data.yaml")


AT_INIT = [
    ("no data", None, "no data given; pass data="),
    (
        "no names",
        "path: .\ntrain: images/train\nval: images/val\n",
        r"data.yaml: missing key\(s\) names; a detection",
    ),
    (
        "missing val folder",
        "path: .\ntrain: images/train\nval: images/nope\nnames: [a, b]\n",
        r"data.yaml: val path '.*images/nope' does not exist; fix 'val:' or 'path:'",
    ),
    (
        "nc vs names",
        "path: .\ntrain: images/train\nval: images/val\nnames: [a, b]\nnc: 3\n",
        "nc=3 but names lists 2",
    ),
]


@pytest.mark.parametrize(("case", "text", "message"), AT_INIT, ids=[c[0] for c in AT_INIT])
def test_bad_data_yaml_fails_before_anything_is_written(
    tmp_path: Path, case: str, text: str | None, message: str
) -> None:
    data = _data_yaml(tmp_path / "set", text) if text else None
    with pytest.raises(DatasetError, match=message):
        DetectionTrainer(overrides=run_overrides(tmp_path / "runs", data=data))
    assert not (tmp_path / "runs").exists()


def _break(root: Path, case: str) -> None:
    images, labels = root / "images" / "train", root / "labels" / "train"
    if case == "empty train folder":
        for f in images.iterdir():
            f.unlink()
    elif case == "no image decodes":
        for f in images.iterdir():
            f.write_bytes(b"not an image")
    elif case == "every label line invalid":
        (labels / "a.txt").write_text("7 0.5 0.5 0.2 0.2\n")
        (labels / "b.txt").write_text("1 1.2 0.5 0.2 0.2\n")


AT_TRAIN = [
    ("empty train folder", r"no images found in train path"),
    ("no image decodes", r"no usable images in train .*a.png: image does not decode"),
    ("every label line invalid", r"train split .* has 2 images but no valid labels"),
]


@pytest.mark.parametrize(("case", "message"), AT_TRAIN, ids=[c[0] for c in AT_TRAIN])
def test_training_never_starts_on_an_empty_dataset(tmp_path: Path, case: str, message: str) -> None:
    data = write_yolo_set(tmp_path / "set", GOOD)
    _break(tmp_path / "set", case)
    trainer = DetectionTrainer(overrides=run_overrides(tmp_path / "runs", data=str(data)))
    started = []
    trainer.add_callback("on_train_start", started.append)
    with pytest.raises(DatasetError, match=message):
        trainer.train()
    assert not started and not trainer.save_dir.exists()


def test_bad_lines_are_logged_with_file_and_line_and_training_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = write_yolo_set(tmp_path / "set", {**GOOD, "c": "0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.2 0.2\n0 0.5\n"})
    trainer = DetectionTrainer(overrides=run_overrides(tmp_path / "runs", data=str(data), val=False))
    with caplog.at_level(logging.WARNING, logger="trainer_engine"):
        trainer.train()
    assert "labels/train/c.txt:2: class 7 is not an integer in 0..1" in caplog.text
    assert "labels/train/c.txt:3: expected 5 values 'class cx cy w h', found 2; line skipped" in caplog.text
    assert trainer.last.is_file()
