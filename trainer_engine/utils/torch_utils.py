"""Devices, seeding, the weight EMA and small model helpers."""

from __future__ import annotations

import copy
import math
import os
import random
from typing import Any

import numpy as np
import torch
from torch import nn

from trainer_engine.cfg import ConfigError


def parse_device(device: str | None) -> tuple[str, list[int]]:
    """Split a device string into its kind ("cpu", "cuda", "mps", "auto") and GPU indices; CUDA untouched."""
    text = (
        (device or "").strip().lower().replace("cuda:", "").replace("cuda", "0" if device == "cuda" else "")
    )
    if text == "":
        return "auto", []
    if text in ("cpu", "mps"):
        return text, []
    try:
        indices = [int(part) for part in text.split(",") if part != ""]
    except ValueError as e:
        raise ConfigError(
            "device", f"invalid value for 'device': {device!r}; expected cpu, mps, 0, cuda:0 or 0,1"
        ) from e
    if not indices or any(i < 0 for i in indices) or len(set(indices)) != len(indices):
        raise ConfigError(
            "device", f"invalid value for 'device': {device!r}; expected distinct GPU indices like 0,1"
        )
    return "cuda", indices


def select_device(device: str | None, rank: int = -1) -> torch.device:
    """Return the torch device for `device` (this rank's GPU under DDP); a clear error if it is absent."""
    kind, indices = parse_device(device)
    if kind == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError("device", "device='mps' requested but MPS is not available; use device=cpu")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise ConfigError("device", f"device={device!r} requested but CUDA is not available; use device=cpu")
    count = torch.cuda.device_count()
    missing = [i for i in indices if i >= count]
    if missing:
        raise ConfigError(
            "device", f"device={device!r}: GPU {missing[0]} does not exist (found {count} GPU(s))"
        )
    index = indices[max(rank, 0)] if rank < len(indices) else indices[0]
    torch.cuda.set_device(index)
    return torch.device(f"cuda:{index}")


def init_seeds(seed: int = 0, deterministic: bool = False) -> None:
    """Seed python, numpy and torch; optionally ask torch for deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def de_parallel(model: nn.Module) -> nn.Module:
    """Return the plain model inside a DDP/DataParallel wrapper."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel) else model


class ModelEMA:
    """Exponential moving average of a model's weights, with a decay that ramps up over the first updates."""

    def __init__(
        self, model: nn.Module, decay: float = 0.9999, tau: float = 2000.0, updates: int = 0
    ) -> None:
        self.ema = copy.deepcopy(de_parallel(model)).eval()
        self.updates = updates
        self._source: nn.Module | None = None
        self._pairs: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
        # Early on the average would be dominated by random init weights; ramp the decay up.
        self.decay = lambda x: decay * (1 - math.exp(-x / tau))
        for p in self.ema.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average one step towards `model`'s weights."""
        self.updates += 1
        d = self.decay(self.updates)
        if self._source is not model:
            # state_dict() tensors share storage with the live weights, so the pairing is built once,
            # not per step (two state_dict() calls a step cost more than the average itself).
            model_state = de_parallel(model).state_dict()
            ema_state = self.ema.state_dict()
            keys = [k for k, v in ema_state.items() if v.dtype.is_floating_point]
            self._pairs = ([ema_state[k] for k in keys], [model_state[k] for k in keys])
            self._source = model
        # One fused kernel over all tensors instead of a Python loop per tensor.
        torch._foreach_lerp_(self._pairs[0], self._pairs[1], 1.0 - d)

    def state_dict(self) -> dict[str, Any]:
        """Return the EMA weights as a state dict."""
        return self.ema.state_dict()
