"""`python -m trainer_engine detect train|val|predict`: the three modes work standalone, in that order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tests.trainer_engine.detect.conftest import TINY_SHAPES
from trainer_engine.cli import main


def _run(capsys: pytest.CaptureFixture[str], *words: str) -> object:
    assert main(list(words)) == 0
    return json.loads(capsys.readouterr().out)


def test_train_then_val_then_predict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ["imgsz=64", "batch=8", "workers=0", "device=cpu"]
    trained = _run(
        capsys,
        "detect",
        "train",
        f"data={TINY_SHAPES}",
        "epochs=1",
        f"project={tmp_path}",
        "name=cli",
        *common,
    )
    best = trained["best"]
    assert Path(best).is_file() and "metrics/mAP50-95(B)" in trained["metrics"]
    stats = _run(capsys, "detect", "val", f"model={best}", f"data={TINY_SHAPES}", *common)
    assert "fitness" in stats and "metrics/mAP50(B)" in stats
    source = tmp_path / "src"
    source.mkdir()
    Image.new("RGB", (80, 48), (200, 30, 30)).save(source / "wide.png")
    Image.new("RGB", (40, 64), (30, 30, 200)).save(source / "tall.jpg")
    results = _run(capsys, "detect", "predict", f"model={best}", f"source={source}", "conf=0.0", *common)
    assert len(results) == 2
    assert all({"name", "class", "confidence", "box"} <= set(row) for rows in results for row in rows)


def test_bad_data_is_exit_code_2_with_the_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", "train", f"data={tmp_path / 'nope.yaml'}", f"project={tmp_path}"]) == 2
    assert "nope.yaml' does not exist; pass a data YAML" in capsys.readouterr().err
