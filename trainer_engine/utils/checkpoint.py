"""Checkpoint files: written atomically, read without unpickling code, summarised for the service.

A checkpoint holds state dicts, the model config and plain values only, so `torch.load(...,
weights_only=True)` reads it anywhere, without the classes of the process that wrote it.
`CHECKPOINT_KEYS` is the one list of what the trainer writes; `read_summary` reads the run's
numbers from exactly those keys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

# Every key the trainer writes into last.pt / best.pt (engine/checkpoint.py builds the dict).
CHECKPOINT_KEYS: frozenset[str] = frozenset(
    {
        "epoch",  # the last completed epoch, 0-based; -1 when saved inside the first epoch
        "epochs",  # the epochs the run was configured for
        "best_fitness",
        "fitness",  # the last completed epoch's fitness
        "model",  # state dict (the EMA weights when EMA is on)
        "ema",
        "updates",
        "optimizer",
        "scaler",
        "train_args",  # the validated config, so a run resumes from the file alone
        "train_metrics",  # the completed epoch's val metrics + "fitness"; {} when saved inside an epoch
        "losses",  # the saved epoch's mean training losses, by label ("train/loss")
        "lr",  # the saved epoch's learning rates by param group ("lr/pg0")
        "model_cfg",
        "model_class",
        "nc",
        "names",
        "date",
        "version",
    }
)


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or not one of ours; the message says which and why."""


@dataclass(frozen=True)
class CheckpointSummary:
    """The plain numbers of a checkpoint: how far the run got and what its last completed epoch scored."""

    epoch: int  # epochs completed, 1-based (0: saved inside the first epoch)
    epochs: int | None  # epochs the run was configured for
    metrics: dict[str, float]  # the completed epoch's validation metrics, without "fitness"
    fitness: float | None
    best_fitness: float | None
    losses: dict[str, float] | None  # that epoch's mean training losses by name
    lr: dict[str, float] | None  # that epoch's learning rates by param group name

    @property
    def finished(self) -> bool:
        """True when the run trained every epoch it was configured for."""
        return self.epochs is not None and self.epoch >= self.epochs


def save_checkpoint(ckpt: dict[str, Any], path: str | Path) -> Path:
    """Write `ckpt` to `path` through a temporary file, so a crash never leaves a torn checkpoint."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
    return path


def load_torch_file(path: str | Path) -> Any:
    """Load a .pt file onto the CPU with tensors and plain values only; CheckpointError if it is not one.

    The error names the file and never quotes its bytes (torch's own messages can), so a file named
    by mistake does not show up in a job's record.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint '{path}' not found; give the path of a .pt file written by a trainer"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises UnpicklingError, KeyError, EOFError... for foreign files
        raise CheckpointError(
            f"cannot load checkpoint '{path}': it is damaged or not a PyTorch file "
            "of state dicts and plain values; only checkpoints as trainers write them are accepted"
        ) from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load one of our checkpoints onto the CPU, refusing anything that would need unpickling code."""
    ckpt = load_torch_file(path)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"'{path}' is not a trainer checkpoint (no 'model' state dict in it)")
    return ckpt


def read_summary(path: str | Path) -> CheckpointSummary:
    """Return the summary of the checkpoint at `path`; raise CheckpointError when it is not one of ours."""
    return summarize(load_checkpoint(path), path)


def summarize(ckpt: dict[str, Any], path: str | Path = "checkpoint") -> CheckpointSummary:
    """Return the summary of a loaded checkpoint dict; raise CheckpointError when its epoch is missing."""
    if not isinstance(ckpt.get("epoch"), int):
        raise CheckpointError(f"'{path}' is not a trainer checkpoint (no integer 'epoch' in it)")
    epochs = ckpt.get("epochs")
    metrics = dict(ckpt.get("train_metrics") or {})
    # Saved inside an epoch: train_metrics is {}, and losses/lr are that unfinished epoch's, not the
    # completed one's, so they are left out rather than attributed to the wrong epoch.
    inside_epoch = "fitness" not in metrics
    metrics.pop("fitness", None)
    return CheckpointSummary(
        epoch=ckpt["epoch"] + 1,
        epochs=int(epochs) if epochs is not None else None,
        metrics={k: float(v) for k, v in metrics.items()},
        fitness=_float(ckpt.get("fitness")),
        best_fitness=_float(ckpt.get("best_fitness")),
        losses=None if inside_epoch else _floats(ckpt.get("losses")),
        lr=None if inside_epoch else _floats(ckpt.get("lr")),
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _floats(values: dict[str, Any] | None) -> dict[str, float] | None:
    return {str(k): float(v) for k, v in values.items()} if values else None
