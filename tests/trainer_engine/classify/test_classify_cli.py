"""`python -m trainer_engine classify ...`: key=value arguments like the Ultralytics CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from classify_helpers import TINY

from trainer_engine.cli import main

ROOT = Path(__file__).resolve().parents[3]


def test_train_val_predict_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = [f"data={TINY}", "imgsz=16", "batch=16", "workers=0", "verbose=false"]
    assert main(["classify", "train", *common, "epochs=1", f"project={tmp_path}", "name=cli"]) == 0
    out = json.loads(capsys.readouterr().out)
    best = Path(out["best"])
    assert best.is_file() and "metrics/accuracy_top1" in out["metrics"]

    assert (
        main(["classify", "train", *common, "epochs=2", f"project={tmp_path}", "name=cli", "resume=True"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["save_dir"] == str(tmp_path / "cli")

    assert main(["classify", "val", f"model={best}", f"data={TINY}", "imgsz=16"]) == 0
    assert "fitness" in json.loads(capsys.readouterr().out)

    folder = next((Path(os.environ["TRAINER_ENGINE_DATA_DIR"])).glob("classify-*train64*")) / "val" / "disk"
    assert main(["classify", "predict", f"model={best}", f"source={folder}", "imgsz=16"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == len(list(folder.iterdir())) and {"path", "class", "name", "conf"} <= set(
        results[0]
    )


BAD = [
    (["classify", "train", "epoch=3"], "unknown override 'epoch'; did you mean 'epochs'?"),
    (["classify", "train", "epochs"], "argument 'epochs' is not key=value; write it like epochs=3"),
    (["classify", "train", "lr0=-1"], "invalid value for 'lr0': -1"),
    (["classify", "train", "data=/nonexistent"], "dataset folder '/nonexistent' not found"),
    (
        ["classify", "predict", "model=/nonexistent.pt", "source=/nonexistent"],
        "source '/nonexistent' does not exist",
    ),
    (["segment", "train"], "expected TASK MODE first"),
    (["classify", "tune"], "expected TASK MODE first"),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_arguments_exit_2_with_a_message(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_module_entry_point_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "trainer_engine", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "epochs" in done.stdout and "lr0" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "trainer_engine", "classify", "train", "imgsize=32"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "did you mean 'imgsz'?" in bad.stderr and "Traceback" not in bad.stderr
