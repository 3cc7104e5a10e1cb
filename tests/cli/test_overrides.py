"""key=value overrides typed by the engine's parser (one meaning everywhere), and the errors of bad ones."""

from __future__ import annotations

import math

import pytest

from trainer_engine.cfg import parse_key_values, parse_value
from trainforge.cli.overrides import OverrideError, parse_override, parse_overrides


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        ("epochs=3", ("epochs", 3)),
        ("lr0=0.01", ("lr0", 0.01)),
        ("lr0=1e-3", ("lr0", 0.001)),
        ("lrf=.5", ("lrf", 0.5)),
        ("seed=-1", ("seed", -1)),
        ("amp=false", ("amp", False)),
        ("amp=True", ("amp", True)),
        ("model=null", ("model", None)),
        ("conf=none", ("conf", None)),  # the engine's spelling of None, now the CLI's too
        ("conf=None", ("conf", None)),
        ("amp=FALSE", ("amp", False)),
        ('name="none"', ("name", "none")),  # quoted: the string
        ("model=~", ("model", "~")),
        ("data=synthetic:classify", ("data", "synthetic:classify")),
        ("device=0,1", ("device", "0,1")),
        ("device=cpu", ("device", "cpu")),
        ("device=0", ("device", 0)),
        ("name=yes", ("name", "yes")),  # YAML 1.1 would make this True
        ("name=010", ("name", 10)),  # YAML 1.1 would read octal 8
        ("name='007'", ("name", "007")),
        ('name="true"', ("name", "true")),
        ("name=\"''\"", ("name", "''")),
        ("classes=[0,2]", ("classes", [0, 2])),
        ("extra={a: 1}", ("extra", {"a": 1})),
        ("project=runs/exp=1", ("project", "runs/exp=1")),  # only the first '=' splits
        ("warmup_epochs=0x10", ("warmup_epochs", "0x10")),
        (" epochs=3", ("epochs", 3)),
    ],
)
def test_parse_override_types_values_as_the_engine_does(argument: str, expected: tuple[str, object]) -> None:
    assert parse_override(argument) == expected
    assert type(parse_override(argument)[1]) is type(expected[1])
    # The CLI adds argument checks only: the value is the engine's.
    assert parse_key_values([argument.strip()]) == dict([expected])


def test_special_floats() -> None:
    assert parse_value("inf") == math.inf
    assert parse_value("-inf") == -math.inf
    assert math.isnan(parse_value("nan"))


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("epochs", "has no '=': write key=value"),
        ("=3", "has no key before '='"),
        ("  =3", "has no key before '='"),
        ("my key=3", "is not a name"),
        ("1x=3", "is not a name"),
        ("epochs=", "has an empty value: write epochs=null"),
        ("classes=[0,", "cannot read '[0,' as a YAML list or mapping"),
    ],
)
def test_malformed_override_says_how_to_fix_it(argument: str, message: str) -> None:
    with pytest.raises(OverrideError, match=message.replace("[", r"\[")):
        parse_override(argument)


def test_parse_overrides_collects_and_refuses_duplicates() -> None:
    assert parse_overrides(["epochs=3", "imgsz=32"]) == {"epochs": 3, "imgsz": 32}
    assert parse_overrides([]) == {}
    with pytest.raises(OverrideError, match="'epochs' is given twice"):
        parse_overrides(["epochs=3", "epochs=4"])
