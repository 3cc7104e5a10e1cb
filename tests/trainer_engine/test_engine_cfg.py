"""Config: defaults, validation messages, schema, CLI value parsing, and no torch on import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trainer_engine.cfg import (
    TASKS,
    ConfigError,
    TrainArgs,
    get_cfg,
    override_schema,
    parse_key_values,
)
from trainer_engine.cfg.args import FIELDS
from trainer_engine.cfg.defaults import default_values, help_texts
from trainer_engine.cfg.events import BATCH_EVENTS, EVENTS, PREDICTOR_EVENTS, TRAINER_EVENTS, VALIDATOR_EVENTS


def test_import_needs_no_torch():
    code = (
        "import sys, trainer_engine.cfg as c, trainer_engine.cfg.events as e; c.get_cfg(); "
        "c.override_schema(); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_batch_events_are_the_per_batch_trainer_events():
    assert {"on_train_batch_start", "optimizer_step", "on_before_zero_grad", "on_train_batch_end"} == (
        BATCH_EVENTS
    )
    assert set(EVENTS) == set(TRAINER_EVENTS) | set(VALIDATOR_EVENTS) | set(PREDICTOR_EVENTS)
    assert all(doc.startswith("Called when") for doc in EVENTS.values())


def test_default_yaml_and_trainargs_declare_the_same_keys_with_help():
    assert set(default_values()) == set(FIELDS)
    assert set(help_texts()) == set(FIELDS)


def test_defaults_are_valid_and_plain():
    args = get_cfg()
    assert isinstance(args, TrainArgs)
    assert args.to_dict() == {**default_values(), "cache": False}
    for key in (
        "epochs",
        "patience",
        "imgsz",
        "lr0",
        "conf",
        "iou",
        "max_det",
        "box",
        "mosaic",
        "world_size",
    ):
        assert key in args


def test_overrides_coerce_and_merge(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("epochs: 7\nlr0: 0.02\n")
    args = get_cfg(cfg, {"lr0": 1, "device": [0, 1], "optimizer": "adamw", "name": 5}, task="classify")
    assert (args.epochs, args.lr0, args.device, args.optimizer, args.name, args.task) == (
        7,
        1.0,
        "0,1",
        "AdamW",
        "5",
        "classify",
    )
    assert isinstance(args.lr0, float)
    assert get_cfg(args).to_dict() == args.to_dict()  # TrainArgs round-trips


BAD = [
    ({"epoch": 3}, "epoch", "unknown override 'epoch'; did you mean 'epochs'?"),
    ({"lr_0": 0.1}, "lr_0", "did you mean 'lr0'?"),
    ({"imgsize": 32}, "imgsize", "did you mean 'imgsz'?"),
    ({"zzzz": 1}, "zzzz", "unknown override 'zzzz'; see default.yaml"),
    ({"epochs": "ten"}, "epochs", "invalid value for 'epochs': 'ten'; expected int >= 1"),
    ({"epochs": 0}, "epochs", "invalid value for 'epochs': 0; expected int >= 1"),
    ({"batch": 2.5}, "batch", "invalid value for 'batch': 2.5; expected int >= 1"),
    ({"imgsz": True}, "imgsz", "invalid value for 'imgsz': True; expected int >= 8"),
    ({"lr0": -0.1}, "lr0", "invalid value for 'lr0': -0.1; expected float > 0.0"),
    ({"fliplr": 1.5}, "fliplr", "invalid value for 'fliplr': 1.5; expected float >= 0.0 and <= 1.0"),
    ({"optimizer": "sgdd"}, "optimizer", "expected one of SGD, Adam, AdamW, NAdam, RAdam, RMSProp, auto"),
    ({"amp": "yes"}, "amp", "invalid value for 'amp': 'yes'; expected bool"),
    ({"task": "segment"}, "task", "expected one of classify, detect"),
    ({"time": 0}, "time", "expected float | null > 0"),
    ({"classes": [0, -1]}, "classes", "expected list[int] | null >= 0"),
    ({"conf": "high"}, "conf", "expected float | null >= 0.0 and <= 1.0"),
]


@pytest.mark.parametrize(
    ("overrides", "key", "message"), BAD, ids=[b[1] + "-" + str(i) for i, b in enumerate(BAD)]
)
def test_bad_overrides_name_key_value_and_expectation(overrides, key, message):
    with pytest.raises(ConfigError) as err:
        get_cfg(overrides=overrides)
    assert err.value.key == key
    assert message in err.value.message
    assert isinstance(err.value, ValueError)


def test_every_problem_is_listed():
    with pytest.raises(ConfigError) as err:
        get_cfg(overrides={"epochs": -1, "batch": "x"})
    assert [e.key for e in err.value.errors] == ["epochs", "batch"]


def test_bad_cfg_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        get_cfg(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="must hold key: value"):
        get_cfg(tmp_path / "list.yaml")


def test_override_schema_filters_by_task():
    full, classify, detect = override_schema(), override_schema("classify"), override_schema("detect")
    assert full["epochs"] == {
        "type": "int",
        "default": 100,
        "help": "number of epochs to train for",
        "minimum": 1,
    }
    assert "mosaic" in detect and "mosaic" not in classify
    assert "dropout" in classify and "dropout" not in detect
    assert set(classify) | set(detect) == set(full)
    with pytest.raises(ConfigError, match="did you mean 'detect'"):
        override_schema("detec")


def test_tasks_are_import_strings():
    assert set(TASKS) == {"classify", "detect"}
    assert all(":" in target for target in TASKS.values())


def test_parse_key_values():
    parsed = parse_key_values(["epochs=3", "lr0=1e-3", "device=0,1", "resume=True", "name=exp", "conf=none"])
    assert parsed == {"epochs": 3, "lr0": 0.001, "device": "0,1", "resume": True, "name": "exp", "conf": None}
    assert parse_key_values(["classes=[0, 2]"]) == {"classes": [0, 2]}
    with pytest.raises(ConfigError, match="argument 'epochs' is not key=value; write it like epochs=3"):
        parse_key_values(["epochs"])
