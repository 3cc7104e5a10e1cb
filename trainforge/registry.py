"""Trainer names → "module:Class" references, without importing any trainer (the API never loads torch).

Built-in names are the engine's tasks (`classify`, `detect`). A "package.module:Class" path is
accepted only under a module prefix the operator allows (settings.trainer_modules); the worker
imports it, the API only checks its shape.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from trainer_engine.cfg import TASKS

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
REF_RE = re.compile(rf"^{_IDENT}(\.{_IDENT})*:{_IDENT}(\.{_IDENT})*$")


class TrainerError(ValueError):
    """A trainer name that cannot be run; the message says why and what would work."""


@dataclass(frozen=True)
class TrainerSpec:
    """A resolved trainer: the name the client gave, the "module:Class" to load, and its task if known."""

    name: str
    ref: str
    task: str | None


def builtin_trainers() -> dict[str, str]:
    """Return the built-in trainer names and their "module:Class" references."""
    return dict(TASKS)


def module_allowed(module: str, prefixes: Sequence[str]) -> bool:
    """Return whether `module` lies under one of `prefixes` ("pkg" or "pkg." allows pkg and pkg.*)."""
    for prefix in prefixes:
        base = prefix.rstrip(".")
        if base and (module == base or module.startswith(base + ".")):
            return True
    return False


def resolve_trainer(name: str, allowed_modules: Sequence[str]) -> TrainerSpec:
    """Resolve a trainer name or "package.module:Class" path; raise TrainerError with a fix otherwise."""
    name = name.strip()
    builtins = builtin_trainers()
    if name in builtins:
        return TrainerSpec(name=name, ref=builtins[name], task=name)
    if ":" not in name:
        close = difflib.get_close_matches(name, list(builtins), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise TrainerError(
            f"unknown trainer '{name}'; {hint}use one of {', '.join(sorted(builtins))} "
            "or a 'package.module:Class' path under an allowed module prefix"
        )
    if not REF_RE.match(name):
        raise TrainerError(
            f"trainer '{name}' is not a valid 'package.module:Class' path "
            "(dotted Python identifiers, one colon before the class name)"
        )
    module = name.split(":", 1)[0]
    if not module_allowed(module, allowed_modules):
        allowed = ", ".join(allowed_modules) if allowed_modules else "none are allowed"
        raise TrainerError(
            f"trainer module '{module}' is not under an allowed prefix ({allowed}); "
            "the operator can allow it with TRAINFORGE_TRAINER_MODULES"
        )
    return TrainerSpec(name=name, ref=name, task=None)
