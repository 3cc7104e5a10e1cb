"""DetectionPredictor: boxes come back in the original image's pixels, with scores, classes and names."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from trainer_engine.models.detect import DetectionPredictor, Results


class FixedDetector(nn.Module):
    """Stand-in model: one box at letterboxed (16, 24)-(48, 40), score 0.9 for class 1 of 2."""

    names = {0: "cat", 1: "dog"}

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.tensor([16.0, 24.0, 48.0, 40.0, 0.1, 0.9]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.anchor.view(1, 6, 1).expand(len(x), 6, 1), None


@pytest.fixture
def wide_image(tmp_path: Path) -> Path:
    path = tmp_path / "wide.png"
    Image.new("RGB", (128, 64), (10, 200, 30)).save(path)  # letterboxed to 64x32 at y offset 16
    return path


def test_boxes_are_mapped_back_to_original_pixels(wide_image: Path) -> None:
    predictor = DetectionPredictor(overrides={"imgsz": 64, "device": "cpu"})
    (result,) = predictor(source=str(wide_image), model=FixedDetector())
    assert isinstance(result, Results) and result.orig_shape == (64, 128)
    assert result.boxes.xyxy.tolist() == [[32.0, 16.0, 96.0, 48.0]]
    assert result.boxes.conf.tolist() == pytest.approx([0.9]) and result.boxes.cls.tolist() == [1.0]
    assert result.names == {0: "cat", 1: "dog"}
    assert result.summary()[0]["name"] == "dog" and "1 dog" in str(result)


def test_conf_and_classes_filter(wide_image: Path) -> None:
    high = DetectionPredictor(overrides={"imgsz": 64, "device": "cpu", "conf": 0.95})
    assert len(high(source=[str(wide_image)], model=FixedDetector())[0]) == 0
    other = DetectionPredictor(overrides={"imgsz": 64, "device": "cpu", "classes": [0]})
    assert len(other(source=str(wide_image), model=FixedDetector())[0]) == 0
