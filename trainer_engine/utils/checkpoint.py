"""Checkpoint files: written atomically, read without unpickling code.

A checkpoint holds state dicts, the model config and plain values only, so `torch.load(...,
weights_only=True)` reads it anywhere, without the classes of the process that wrote it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or not one of ours; the message says which and why."""


def save_checkpoint(ckpt: dict[str, Any], path: str | Path) -> Path:
    """Write `ckpt` to `path` through a temporary file, so a crash never leaves a torn checkpoint."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load one of our checkpoints onto the CPU, refusing anything that would need unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint '{path}' not found; give the path of a .pt file written by a trainer"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError... for foreign files
        raise CheckpointError(
            f"cannot load checkpoint '{path}': {type(e).__name__}: {str(e).splitlines()[0]}; "
            "only checkpoints of state dicts and plain values (as trainers write them) are accepted"
        ) from e
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"'{path}' is not a trainer checkpoint (no 'model' state dict in it)")
    return ckpt
