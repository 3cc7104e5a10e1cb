"""Fixtures of every engine test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Train on one intra-op thread: on a small, shared CPU the OpenMP threads spin-wait on each other
    whenever one is preempted, which made tiny runs many times slower, not faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
