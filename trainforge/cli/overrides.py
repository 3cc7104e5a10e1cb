"""`key=value` command-line overrides, typed by the engine's own parser (`trainer_engine.cfg`).

One parser for the engine's CLI and this one, so a value means the same everywhere:
`none`/`null` (any case) is None, `true`/`false` (any case) a bool, `3` an int, `0.01`/`1e-3` a
float, `[0,2]` / `{a: 1}` a YAML list / mapping, and anything else a string (`device=0,1`,
`data=synthetic:classify`). Quote a value to keep it a string (`name='"none"'` in a shell). This
module only adds what a command line needs on top: keys that are names, each given once, and a
value that is not empty.
"""

from __future__ import annotations

import re
from typing import Any

from trainer_engine.cfg import ConfigError, parse_key_values

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


class OverrideError(ValueError):
    """A command-line override that cannot be read; the message says how to write it."""


def parse_override(argument: str) -> tuple[str, Any]:
    """Split one `key=value` argument and type its value; raise OverrideError when malformed."""
    key, sep, _ = argument.partition("=")
    key = key.strip()
    if not sep:
        raise OverrideError(f"override {argument!r} has no '=': write key=value, e.g. epochs=3")
    if not key:
        raise OverrideError(f"override {argument!r} has no key before '=': write key=value, e.g. epochs=3")
    if not _KEY.fullmatch(key):
        raise OverrideError(
            f"override key {key!r} is not a name: keys are letters, digits and '_' (e.g. lr0=0.01)"
        )
    if not argument.partition("=")[2].strip():
        # The engine reads an empty value as None; on a command line it is more often an unset
        # shell variable (lr0=$LR), so it has to be spelled out.
        raise OverrideError(
            f"override {key!r} has an empty value: write {key}=null for none, or {key}=\"''\" "
            "for an empty string"
        )
    try:
        ((key, value),) = parse_key_values([argument.strip()]).items()
    except ConfigError as exc:
        raise OverrideError(f"override {key!r}: {exc.message}") from None
    return key, value


def parse_overrides(arguments: list[str]) -> dict[str, Any]:
    """Parse every `key=value` argument into one dict; a key given twice is an error."""
    overrides: dict[str, Any] = {}
    for argument in arguments:
        key, value = parse_override(argument)
        if key in overrides:
            raise OverrideError(f"override {key!r} is given twice; keep one {key}=... argument")
        overrides[key] = value
    return overrides
