"""A file named by mistake (a key, a password file) never has its contents shown in the error it causes.

The service puts engine errors into job records and logs; each case below writes a secret into a
file the engine then fails to read, and checks the full message says what is wrong without it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer_engine.data.detect import DatasetError, check_det_dataset
from trainer_engine.nn.classification import ClassificationModel, load_weights_file
from trainer_engine.nn.classify_cnn import ModelConfigError
from trainer_engine.nn.detection import DetectionModel
from trainer_engine.utils.checkpoint import CheckpointError, load_checkpoint

SECRET = "hunter2-s3cr3t"
SPLITS = "path: .\ntrain: images\nval: images\n"

DATA_YAML = [
    (
        "broken syntax",
        f"train: [{SECRET}\nval: x\n",
        "{path}: not valid YAML at line 2, column 4; fix the syntax there",
    ),
    ("a scalar", f"{SECRET}\n", "{path}: expected a mapping with train, val and names; got str"),
    (
        "names a scalar",
        f"{SPLITS}names: {SECRET}\n",
        "{path}: names must be a list or a mapping of index to name, not a str",
    ),
    (
        "names keyed by text",
        f"{SPLITS}names: {{{SECRET}: a}}\n",
        "{path}: names must map integer indices to names, like {{0: cat, 1: dog}}",
    ),
    (
        "nc as text",
        f"{SPLITS}names: [a]\nnc: {SECRET}\n",
        "{path}: nc must be an integer (the number of classes) or left out",
    ),
]


@pytest.mark.parametrize(("case", "text", "message"), DATA_YAML, ids=[c[0] for c in DATA_YAML])
def test_data_yaml_errors_do_not_quote_the_file(tmp_path: Path, case: str, text: str, message: str) -> None:
    (tmp_path / "images").mkdir()
    path = tmp_path / "data.yaml"
    path.write_text(text)
    with pytest.raises(DatasetError) as caught:
        check_det_dataset(str(path))
    assert str(caught.value) == message.format(path=path)


def test_a_file_that_is_no_checkpoint_is_named_not_quoted(tmp_path: Path) -> None:
    path = tmp_path / "best.pt"
    path.write_text(f"{SECRET}\n")
    expected = (
        f"cannot load checkpoint '{path}': it is damaged or not a PyTorch file of state "
        "dicts and plain values; only checkpoints as trainers write them are accepted"
    )
    for load in (load_checkpoint, load_weights_file):
        with pytest.raises(CheckpointError) as caught:
            load(path)
        assert str(caught.value) == expected


def test_a_broken_model_config_is_named_not_quoted(tmp_path: Path) -> None:
    path = tmp_path / "model.yaml"
    path.write_text(f"backbone: [{SECRET}\n")
    expected = f"{path}: not valid YAML at line 2, column 1; fix the syntax there"
    with pytest.raises(ModelConfigError) as caught:
        ClassificationModel(str(path), nc=2, verbose=False)
    assert str(caught.value) == expected
    with pytest.raises(ValueError) as caught_det:
        DetectionModel(str(path), nc=2, verbose=False)
    assert str(caught_det.value) == expected
