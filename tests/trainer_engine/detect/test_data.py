"""Detection data: YAML checks, label validation with file:line, the synthetic set and the loader."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.trainer_engine.detect.conftest import TINY_SHAPES, write_yolo_set
from trainer_engine.data.detect import DatasetError, YOLODataset, build_dataloader, check_det_dataset
from trainer_engine.data.detect.augment import flip_lr, flip_ud
from trainer_engine.data.detect.synthetic import parse_spec


def _yaml(tmp_path: Path, text: str) -> Path:
    (tmp_path / "images" / "train").mkdir(parents=True, exist_ok=True)
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


BAD_DATA = [
    ("no such file", None, "does not exist; pass a data YAML"),
    ("missing names and val", "path: .\ntrain: images/train\n", r"missing key\(s\) val, names"),
    (
        "missing folder",
        "path: .\ntrain: images/train\nval: images/nope\nnames: [a]\n",
        r"val path .*nope' does not exist",
    ),
    (
        "nc disagrees",
        "path: .\ntrain: images/train\nval: images/train\nnames: [a, b]\nnc: 3\n",
        "nc=3 but names lists 2",
    ),
    ("names gap", "path: .\ntrain: images/train\nval: images/train\nnames: {0: a, 2: b}\n", "without gaps"),
    ("not a mapping", "- just\n- a list\n", "expected a mapping"),
    (
        "empty image folder",
        "path: .\ntrain: images/train\nval: images/train\nnames: [a]\n",
        "no images found",
    ),
]


@pytest.mark.parametrize(("case", "text", "message"), BAD_DATA, ids=[c[0] for c in BAD_DATA])
def test_bad_data_yaml_is_a_clear_error(tmp_path: Path, case: str, text: str | None, message: str) -> None:
    path = tmp_path / "missing.yaml" if text is None else _yaml(tmp_path, text)
    with pytest.raises(DatasetError, match=message):
        data = check_det_dataset(str(path))
        YOLODataset(data["train"], 32, data["nc"])


BAD_SYNTHETIC = [
    ("synthetic:shapes?trian=5", "did you mean 'train'"),
    ("synthetic:shapes?size=abc", "must be an integer"),
    ("synthetic:shapes?classes=99", "must be between 1 and 6"),
    ("synthetic:circles", "unknown synthetic set"),
]


@pytest.mark.parametrize(("data", "message"), BAD_SYNTHETIC)
def test_bad_synthetic_options(data: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        parse_spec(data)


def test_bad_label_lines_are_reported_with_file_and_line_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = "\n".join(
        [
            "0 0.5 0.5 0.2 0.2",  # good
            "1 1.2 0.5 0.2 0.2",  # outside the image
            "7 0.5 0.5 0.2 0.2",  # unknown class (2 names)
            "0 0.5 0.5",  # too few fields
            "x 0.5 0.5 0.2 0.2",  # not a number
            "1 0.5 0.5 0 0.1",  # zero width
            "1 0.3 0.3 0.1 0.1",  # good
        ]
    )
    data = check_det_dataset(str(write_yolo_set(tmp_path, {"img": lines})))
    with caplog.at_level(logging.WARNING, logger="trainer_engine"):
        ds = YOLODataset(data["train"], 32, data["nc"])
    label_file = str(tmp_path / "labels" / "train" / "img.txt")
    expected = {
        2: "outside the image",
        3: "not an integer in 0..1",
        4: "expected 5 values",
        5: "non-numeric",
        6: "width/height must be > 0",
    }
    for lineno, reason in expected.items():
        assert any(f"{label_file}:{lineno}: " in p and reason in p for p in ds.problems), (
            lineno,
            ds.problems,
        )
    assert len(ds.problems) == 5 and f"{label_file}:2:" in caplog.text
    assert ds.labels[0][:, 0].tolist() == [0, 1]


def test_undecodable_image_is_skipped_and_all_bad_is_an_error(tmp_path: Path) -> None:
    data = check_det_dataset(
        str(write_yolo_set(tmp_path, {"good": "0 0.5 0.5 0.2 0.2\n", "bad": "1 0.5 0.5 0.2 0.2\n"}))
    )
    (tmp_path / "images" / "train" / "bad.png").write_bytes(b"not a png")
    ds = YOLODataset(data["train"], 32, data["nc"])
    assert len(ds) == 1 and any("bad.png: image does not decode" in p for p in ds.problems)
    (tmp_path / "images" / "train" / "good.png").write_bytes(b"nor this")
    with pytest.raises(DatasetError, match="no usable images"):
        YOLODataset(data["train"], 32, data["nc"])


def test_training_split_without_any_valid_label_is_refused(tmp_path: Path) -> None:
    data = check_det_dataset(str(write_yolo_set(tmp_path, {"a": "5 0.5 0.5 0.2 0.2\n", "b": ""})))
    with pytest.raises(DatasetError, match="no valid labels"):
        YOLODataset(data["train"], 32, data["nc"], split="train")


def test_label_cache_is_reused_and_invalidated_on_edit(tmp_path: Path) -> None:
    data = check_det_dataset(str(write_yolo_set(tmp_path, {"a": "0 0.5 0.5 0.2 0.2\n"})))
    YOLODataset(data["train"], 32, data["nc"])
    cache = tmp_path / "labels" / "train.cache.json"
    assert cache.is_file()
    (tmp_path / "labels" / "train" / "a.txt").write_text("1 0.5 0.5 0.4 0.4\n0 0.2 0.2 0.1 0.1\n")
    ds = YOLODataset(data["train"], 32, data["nc"])
    assert ds.labels[0][:, 0].tolist() == [1, 0]


def test_synthetic_shapes_is_a_cached_yolo_folder(data_dir: Path) -> None:
    data = check_det_dataset(TINY_SHAPES)
    root = Path(data["path"])
    assert root.parent == data_dir and (root / "data.yaml").is_file()
    assert len(list((root / "images" / "train").glob("*.jpg"))) == 16
    assert len(list((root / "labels" / "val").glob("*.txt"))) == 8
    assert data["nc"] == 4 and data["names"][0] == "circle"
    mtime = (root / "data.yaml").stat().st_mtime_ns
    assert check_det_dataset(TINY_SHAPES)["path"] == str(root)
    assert (root / "data.yaml").stat().st_mtime_ns == mtime  # generated once
    assert not [p for p in data_dir.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_augmenting_loader_keeps_boxes_in_the_image_and_in_their_batch() -> None:
    data = check_det_dataset(TINY_SHAPES)
    hyp = {"mosaic": 1.0, "fliplr": 0.5, "flipud": 0.5, "degrees": 10.0, "scale": 0.5, "translate": 0.1}
    ds = YOLODataset(data["train"], 64, data["nc"], augment=True, hyp=hyp)
    batch = next(iter(build_dataloader(ds, 8, 0)))
    assert batch["img"].shape == (8, 3, 64, 64) and batch["img"].dtype == torch.uint8
    boxes = batch["bboxes"]
    assert len(boxes) == len(batch["cls"]) == len(batch["batch_idx"]) > 0
    assert (boxes[:, 2:] > 0).all() and (boxes[:, :2] - boxes[:, 2:] / 2 >= -1e-4).all()
    assert (boxes[:, :2] + boxes[:, 2:] / 2 <= 1 + 1e-4).all()
    assert set(batch["batch_idx"].long().tolist()) <= set(range(8))
    ds.close_mosaic()
    assert ds.mosaic == 0.0


def test_letterbox_places_boxes_of_an_image_larger_than_imgsz(tmp_path: Path) -> None:
    data = check_det_dataset(str(write_yolo_set(tmp_path, {"a": "0 0.5 0.5 0.5 0.5\n"})))
    Image.new("RGB", (64, 32)).save(tmp_path / "images" / "train" / "a.png")  # 2:1, twice imgsz
    item = YOLODataset(data["train"], 32, data["nc"])[0]
    assert item["img"].shape == (3, 32, 32)
    assert item["bboxes"].tolist() == [[0.5, 0.5, 0.5, 0.25]]  # 32x16 image at y offset 8
    assert item["ratio_pad"] == (0.5, (0, 8)) and item["ori_shape"] == (32, 64)


def test_single_cls_presents_one_class_but_checks_labels_against_all(tmp_path: Path) -> None:
    data_yaml = write_yolo_set(tmp_path, {"a": "1 0.5 0.5 0.2 0.2\n2 0.5 0.5 0.2 0.2\n"})
    data = check_det_dataset(str(data_yaml), single_cls=True)
    assert data["nc"] == 1 and data["names"] == {0: "object"} and data["label_nc"] == 2
    ds = YOLODataset(data["train"], 32, data["label_nc"], single_cls=True)
    assert ds.labels[0][:, 0].tolist() == [0.0]  # class 2 is outside the real names: skipped
    assert any("a.txt:2: class 2" in p for p in ds.problems)


def test_flips_mirror_the_boxes_with_the_image() -> None:
    img = np.zeros((32, 64, 3), np.uint8)
    img[0:20, 0:10] = 255
    box = np.array([[0.0, 0.0, 10.0, 20.0]])
    lr_img, lr_box = flip_lr(img, box)
    ud_img, ud_box = flip_ud(img, box)
    assert lr_box.tolist() == [[54.0, 0.0, 64.0, 20.0]] and lr_img[0:20, 54:64].min() == 255
    assert ud_box.tolist() == [[0.0, 12.0, 10.0, 32.0]] and ud_img[12:32, 0:10].min() == 255
