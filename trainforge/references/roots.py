"""Raw paths: allowed only under the operator's data roots, compared after resolving symlinks.

A refused path gets the same words whether it exists or not, so a tenant cannot probe the worker's
disk; only inside a root, where the tenant may read anyway, does a message say what is missing.
The artifacts folder is never a data root, even when a root contains it: it holds every tenant's runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from trainforge.errors import Invalid
from trainforge.references.context import Context

# What a raw path may be, per key.
CHECKPOINT_SUFFIXES = (".pt", ".pth")
YAML_SUFFIXES = (".yaml", ".yml")
MODEL_SUFFIXES = CHECKPOINT_SUFFIXES + YAML_SUFFIXES
# A detection data YAML is a few lines; this bounds what is read to check it.
MAX_DATA_YAML_BYTES = 1 << 20


def confine(ctx: Context, key: str, value: str, usage: str) -> str:
    """Return the real path of `value` when it lies under a data root and fits `key`; else raise Invalid."""
    if not os.path.isabs(value):
        message = f"override '{key}': {value!r} is not a reference or an absolute path; give {usage}"
        raise Invalid(message, key=key)
    if not ctx.settings.data_roots:
        message = f"override '{key}': this server allows no file paths (it lists no data roots); give {usage}"
        raise Invalid(message, key=key)
    real = os.path.realpath(value)
    if not allowed(ctx, real):
        message = f"override '{key}': {value!r} is not under a data root of this server; give {usage}"
        raise Invalid(message, key=key)
    if not os.path.exists(real):
        raise Invalid(f"override '{key}': {value!r} does not exist", key=key)
    _check_kind(key, value, real)
    if key == "data" and real.endswith(YAML_SUFFIXES):
        _confine_data_yaml(ctx, value, real)
    return real


def allowed(ctx: Context, real: str) -> bool:
    """Return whether the resolved path `real` lies under a data root and outside the artifacts folder."""
    artifacts = os.path.realpath(ctx.settings.artifacts_dir)
    return any(_within(real, str(root)) for root in ctx.settings.data_roots) and not _within(real, artifacts)


def _within(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def _check_kind(key: str, value: str, real: str) -> None:
    """Refuse a path that cannot be what `key` reads (a folder as a checkpoint, a .txt as a model)."""
    is_file = os.path.isfile(real)
    if key == "pretrained" and not (is_file and real.endswith(CHECKPOINT_SUFFIXES)):
        raise Invalid(f"override 'pretrained': {value!r} is not a checkpoint file (.pt or .pth)", key=key)
    if key == "model" and not (is_file and real.endswith(MODEL_SUFFIXES)):
        raise Invalid(
            f"override 'model': {value!r} is not a checkpoint (.pt, .pth) or model config (.yaml) file",
            key=key,
        )
    if key == "data" and is_file and not real.endswith(YAML_SUFFIXES):
        raise Invalid(f"override 'data': {value!r} is a file but not a data YAML (.yaml)", key=key)


def _confine_data_yaml(ctx: Context, value: str, real: str) -> None:
    """Refuse a data YAML whose `path`, `train`, `val` or `test` leads out of the data roots."""
    if os.path.getsize(real) > MAX_DATA_YAML_BYTES:
        raise Invalid(f"override 'data': {value!r} is over 1 MiB; a data YAML is a few lines", key="data")
    try:
        cfg = yaml.safe_load(Path(real).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return  # the engine reports a broken file, without quoting it
    if not isinstance(cfg, dict):
        return
    for name, path in _named_paths(cfg, Path(real).parent):
        if not allowed(ctx, os.path.realpath(path)):
            raise Invalid(
                f"override 'data': the data YAML {value!r} sets '{name}' to a folder outside the data "
                "roots; keep a data set's images under a data root and name them relative to it",
                key="data",
            )


def _named_paths(cfg: dict[str, Any], folder: Path) -> list[tuple[str, Path]]:
    """Return the folders a data YAML makes the engine read, as check_det_dataset joins them."""
    root = cfg.get("path")
    base = Path(root) if isinstance(root, str) and root else folder
    base = base if base.is_absolute() else folder / base
    out = [("path", base)]
    for split in ("train", "val", "test"):
        value = cfg.get(split)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                out.append((split, Path(item) if Path(item).is_absolute() else base / item))
    return out
