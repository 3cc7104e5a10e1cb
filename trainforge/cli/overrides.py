"""Parse `key=value` command-line overrides into typed values, the way a YAML file would read them.

Values are YAML 1.2 core-schema scalars: `epochs=3` is an int, `lr0=0.01` a float, `amp=false` a
bool, `model=null` None, and anything else a string (`data=synthetic:classify`, `device=0,1`).
Quote a value to keep it a string (`name='"007"'` in a shell). `[...]` / `{...}` are YAML flow lists
and mappings (`classes=[0,2]`). Unlike YAML 1.1, `yes`/`no`/`on`/`off` stay strings and `010` is 10.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# The YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
_NULL = {"null", "Null", "NULL", "~"}
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?[0-9]+")
_OCT = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_NAN = re.compile(r"\.(nan|NaN|NAN)")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


class OverrideError(ValueError):
    """A command-line override that cannot be read; the message says how to write it."""


def parse_value(text: str) -> Any:
    """Turn one override value into the int, float, bool, None, list, dict or str it spells."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in _NULL:
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.fullmatch(text):
        return int(text)
    if _OCT.fullmatch(text):
        return int(text[2:], 8)
    if _HEX.fullmatch(text):
        return int(text[2:], 16)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.fullmatch(text):
        return float("nan")
    if text[:1] in "[{":
        return _parse_flow(text)
    return text


def _parse_flow(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise OverrideError(
            f"cannot read {text!r} as a YAML list or mapping ({problem}); write e.g. [0,1] or "
            "{a: 1}, or quote it to pass it as a string"
        ) from exc


def parse_override(argument: str) -> tuple[str, Any]:
    """Split one `key=value` argument and type its value; raise OverrideError when malformed."""
    key, sep, value = argument.partition("=")
    key = key.strip()
    if not sep:
        raise OverrideError(f"override {argument!r} has no '=': write key=value, e.g. epochs=3")
    if not key:
        raise OverrideError(f"override {argument!r} has no key before '=': write key=value, e.g. epochs=3")
    if not _KEY.fullmatch(key):
        raise OverrideError(
            f"override key {key!r} is not a name: keys are letters, digits and '_' (e.g. lr0=0.01)"
        )
    if value == "":
        raise OverrideError(
            f"override {key!r} has an empty value: write {key}=null for none, or {key}=\"''\" "
            "for an empty string"
        )
    return key, parse_value(value)


def parse_overrides(arguments: list[str]) -> dict[str, Any]:
    """Parse every `key=value` argument into one dict; a key given twice is an error."""
    overrides: dict[str, Any] = {}
    for argument in arguments:
        key, value = parse_override(argument)
        if key in overrides:
            raise OverrideError(f"override {key!r} is given twice; keep one {key}=... argument")
        overrides[key] = value
    return overrides
