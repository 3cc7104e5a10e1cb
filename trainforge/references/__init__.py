"""Resolve the overrides that name a file (`data`, `model`, `pretrained`) for the job's tenant.

A value is one of, tried in this order:

    <scheme>:<rest>     a tenant resource, resolved by its scheme (`job:<id>/best.pt`, see schemes.py)
    synthetic:<set>     a built-in synthetic data set (`synthetic:classify?classes=4`)
    a built-in name     a bundled model config (`tiny-cls`, `tiny-det-n`) or a torchvision classifier
    an absolute path    only when it lies, symlinks resolved, under a folder of TRAINFORGE_DATA_ROOTS

The service resolves a job's values twice: at submit, where a refusal is a 422 naming the key,
and in the worker's supervisor, which hands only the resolved values to the training child (the
job row keeps what the tenant wrote). Another tenant's resource is refused with the same words as
one that does not exist, and a path outside the roots with the same words whether it exists or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainforge.errors import Invalid
from trainforge.references import builtin, roots
from trainforge.references.context import Context
from trainforge.references.schemes import SCHEMES, scheme_of

__all__ = ["FILE_KEYS", "MAX_LENGTH", "Context", "resolve", "resolve_overrides"]

# Every engine override that names a file the trainer reads. The keys naming where it writes
# (project, name, exist_ok, resume) are the service's own: jobs.service refuses them.
FILE_KEYS = ("data", "model", "pretrained")
MAX_LENGTH = 1024


def resolve_overrides(ctx: Context, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return `overrides` with every file key resolved for `ctx`'s tenant; raise Invalid naming the key."""
    resolved = dict(overrides)
    for key in FILE_KEYS:
        value = overrides.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)  # the engine reads `model=123` as the name "123": resolve that name
        if isinstance(value, str):
            resolved[key] = resolve(ctx, key, value)
    return resolved


def resolve(ctx: Context, key: str, value: str) -> str:
    """Return what the trainer reads for `key=value`, or raise Invalid saying what is wrong and the fix."""
    _check_text(ctx, key, value)
    scheme = scheme_of(value)
    if scheme is not None and scheme != builtin.SYNTHETIC:
        entry = SCHEMES.get(scheme)
        if entry is None or key not in entry.keys:
            ways = usage(ctx, key)
            raise Invalid(
                f"override '{key}': '{scheme}:' references are not accepted here; give {ways}", key=key
            )
        return entry.resolve(ctx, key, value[len(scheme) + 1 :])
    if key == "data" and scheme == builtin.SYNTHETIC:
        return builtin.synthetic(ctx, value)
    if key == "model" and builtin.is_name(value):
        return builtin.model_name(ctx, value)
    if key == "pretrained" and builtin.is_name(value):
        message = f"override 'pretrained': {value!r} is not a checkpoint; give true, false, {usage(ctx, key)}"
        raise Invalid(message, key=key)
    return roots.confine(ctx, key, value, usage(ctx, key))


def usage(ctx: Context, key: str) -> str:
    """Return the ways `key` may be given on this server, for error messages."""
    ways = [entry.usage for entry in SCHEMES.values() if key in entry.keys]
    ways += builtin.usage(key)
    if ctx.settings.data_roots:
        ways.append("an absolute path under a data root")
    return " or ".join(ways)


def _check_text(ctx: Context, key: str, value: str) -> None:
    """Refuse values no file reference can be: empty, over-long, or holding control characters."""
    if not value.strip():
        raise Invalid(f"override '{key}' is empty; give {usage(ctx, key)}, or leave '{key}' out", key=key)
    if len(value) > MAX_LENGTH:
        raise Invalid(
            f"override '{key}' is {len(value)} characters long; a reference has at most {MAX_LENGTH}",
            key=key,
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise Invalid(f"override '{key}' contains a control character; remove it", key=key)
