"""Which devices a run trains on, how many DDP ranks it needs, and how many CPU threads each may use."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from trainer_engine.cfg import ConfigError
from trainer_engine.utils.torch_utils import parse_device, select_device


def wanted_world_size(device: str | None, world_size: int | None) -> int:
    """Return the number of DDP ranks `device` / `world_size` ask for (one per GPU listed by default)."""
    kind, indices = parse_device(device)
    if world_size:
        if kind == "cuda" and len(indices) not in (1, world_size):
            raise ConfigError(
                "world_size",
                f"world_size={world_size} does not match device={device!r} "
                f"({len(indices)} GPUs); leave world_size unset to use one process per GPU",
            )
        return world_size
    return len(indices) if kind == "cuda" else 1


def rank_device(device: str | None, world_size: int, local_rank: int) -> torch.device:
    """Return the device this rank trains on."""
    kind, _ = parse_device(device)
    if kind == "auto" and world_size > 1:
        # One process per GPU when there are GPUs; gloo on the CPU otherwise.
        return select_device(str(max(local_rank, 0)) if torch.cuda.is_available() else "cpu")
    return select_device(device, local_rank)


@contextlib.contextmanager
def cpu_threads(device: str | None, workers: int, world_size: int) -> Iterator[None]:
    """On the CPU, leave the loader workers their cores: torch threads beyond the rest only spin-wait."""
    if parse_device(device)[0] in ("cuda", "mps") or torch.cuda.is_available():
        yield
        return
    cores = max((os.cpu_count() or 1) // world_size, 1)
    before = torch.get_num_threads()
    torch.set_num_threads(min(before, max(cores - min(workers, cores), 1)))
    try:
        yield
    finally:
        torch.set_num_threads(before)
