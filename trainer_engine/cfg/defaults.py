"""Read default.yaml: the default value and the help text of every key."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CFG_PATH = Path(__file__).with_name("default.yaml")
_LINE = re.compile(r"^(?P<key>\w+):[^#]*#\s*(?P<help>.+)$")


@functools.cache
def _load() -> tuple[dict[str, Any], dict[str, str]]:
    text = DEFAULT_CFG_PATH.read_text()
    values = yaml.safe_load(text)
    helps = {m["key"]: m["help"].strip() for m in map(_LINE.match, text.splitlines()) if m}
    return values, helps


def default_values() -> dict[str, Any]:
    """Return a fresh dict of every key's default value."""
    return dict(_load()[0])


def help_texts() -> dict[str, str]:
    """Return every key's one-line help text."""
    return dict(_load()[1])
