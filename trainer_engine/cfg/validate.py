"""Check and coerce user values against TrainArgs' types and limits, with messages that say how to fix."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from typing import Any

from trainer_engine.cfg.args import FIELDS, TrainArgs


class ConfigError(ValueError):
    """A bad configuration value; `.key` names the key, `.message` says what is wrong and what is expected."""

    def __init__(self, key: str | None, message: str, errors: list[ConfigError] | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.message = message
        self.errors = errors or [self]  # every problem found, the first one is the message


_HINTS = typing.get_type_hints(TrainArgs)


def type_name(hint: Any) -> str:
    """Return a readable name for a type hint (`int`, `float | null`, `list[int]`)."""
    if hint is type(None):
        return "null"
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        return f"list[{type_name(typing.get_args(hint)[0])}]"
    return hint.__name__


def key_type(name: str) -> Any:
    """Return the type hint of a config key."""
    return _HINTS[name]


def unknown_key_error(name: str, known: Iterable[str], what: str = "override") -> ConfigError:
    """Build the error for an unknown key, naming the closest valid key."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    hint = (
        f"did you mean '{close[0]}'?" if close else "see default.yaml or override_schema() for the valid keys"
    )
    return ConfigError(name, f"unknown {what} '{name}'; {hint}")


def check_value(name: str, value: Any) -> Any:
    """Return `value` coerced to key `name`'s type, or raise ConfigError naming key, value and expectation."""
    if name == "device":
        value = _normalize_device(value)
    hint = _HINTS[name]
    ok, coerced = _coerce(hint, value)
    if not ok:
        raise ConfigError(name, f"invalid value for '{name}': {value!r}; expected {_expectation(name, hint)}")
    problem = _limit_problem(name, coerced)
    if problem:
        raise ConfigError(name, f"invalid value for '{name}': {value!r}; expected {problem}")
    if "choices" in FIELDS[name].metadata and coerced is not None:
        coerced = _choice(name, coerced)
    return coerced


_NO_CHOICE = object()


def _choice(name: str, value: Any) -> Any:
    # Strings match case-insensitively (optimizer=adamw is AdamW); booleans and null match exactly.
    for choice in FIELDS[name].metadata["choices"]:
        if isinstance(choice, str) and isinstance(value, str) and choice.lower() == value.lower():
            return choice
        if type(choice) is type(value) and choice == value:
            return choice
    return _NO_CHOICE


def _normalize_device(value: Any) -> Any:
    # `device=0`, `device=[0, 1]` and `device="0,1"` all mean GPU indices; keep one spelling.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return ",".join(str(v) for v in value)
    if isinstance(value, str):
        return value.strip().replace(" ", "") or None
    return value


def _coerce(hint: Any, value: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            ok, coerced = _coerce(option, value)
            if ok:
                return True, coerced
        return False, None
    if origin is list:
        if not isinstance(value, list | tuple):
            return False, None
        items = [_coerce(typing.get_args(hint)[0], v) for v in value]
        return all(ok for ok, _ in items), [v for _, v in items]
    return _coerce_scalar(hint, value)


def _coerce_scalar(hint: Any, value: Any) -> tuple[bool, Any]:
    if hint is type(None):
        return value is None, None
    if isinstance(value, bool):
        return hint is bool, value
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return isinstance(value, int), value
    if hint is float:
        return isinstance(value, int | float), float(value) if isinstance(value, int | float) else None
    if hint is str:
        # CLI and JSON users write name=123 or device=0; a number is a fine name.
        if isinstance(value, int | float):
            return True, str(value)
        return isinstance(value, str), value
    return False, None


def _expectation(name: str, hint: Any) -> str:
    limits = _limit_text(name)
    return f"{type_name(hint)} {limits}" if limits else type_name(hint)


def _limit_text(name: str) -> str:
    meta = FIELDS[name].metadata
    parts = []
    if "choices" in meta:
        parts.append("one of " + ", ".join(_show(c) for c in meta["choices"]))
    for op, sign in (("ge", ">="), ("gt", ">"), ("le", "<=")):
        if op in meta:
            parts.append(f"{sign} {meta[op]}")
    return " and ".join(parts)


def _show(choice: Any) -> str:
    return "null" if choice is None else str(choice).lower() if isinstance(choice, bool) else str(choice)


def _limit_problem(name: str, value: Any) -> str | None:
    meta = FIELDS[name].metadata
    if value is None:  # the type check already allowed null for this key
        return None
    if "choices" in meta:
        return None if _choice(name, value) is not _NO_CHOICE else _limit_text(name)
    numbers = value if isinstance(value, list) else [value]
    for number in numbers:
        if isinstance(number, bool) or not isinstance(number, int | float):
            continue
        if (
            ("ge" in meta and number < meta["ge"])
            or ("gt" in meta and number <= meta["gt"])
            or ("le" in meta and number > meta["le"])
        ):
            return f"{type_name(_HINTS[name])} {_limit_text(name)}"
    return None
