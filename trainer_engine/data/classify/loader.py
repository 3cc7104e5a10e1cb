"""Build the DataLoader for a classification split (single process or one DDP rank)."""

from __future__ import annotations

import os

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler


def build_dataloader(
    dataset: Dataset,
    batch: int,
    workers: int = 0,
    shuffle: bool = True,
    rank: int = -1,
    seed: int = 0,
) -> DataLoader:
    """Return a DataLoader; under DDP (`rank >= 0`) each rank reads its own shard of the dataset."""
    n_gpu = max(torch.cuda.device_count(), 1)
    # Worker processes beyond the CPUs only add start-up time and memory.
    nw = max(0, min(int(workers), (os.cpu_count() or 1) // n_gpu, len(dataset) // max(batch, 1) or 1))
    sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed) if rank >= 0 else None
    generator = torch.Generator()
    generator.manual_seed(seed + max(rank, 0))
    return DataLoader(
        dataset,
        batch_size=batch,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=nw,
        # Keep workers between epochs: re-forking them every epoch costs more than a short epoch.
        persistent_workers=nw > 0,
        pin_memory=torch.cuda.is_available(),
        generator=generator,
    )
