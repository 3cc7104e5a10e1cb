"""Fixtures of every engine test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Generate synthetic sets under one temp folder per session, never in the user's cache."""
    root = tmp_path_factory.mktemp("datasets")
    old = os.environ.get("TRAINER_ENGINE_DATA_DIR")
    os.environ["TRAINER_ENGINE_DATA_DIR"] = str(root)
    yield root
    if old is None:
        os.environ.pop("TRAINER_ENGINE_DATA_DIR", None)
    else:
        os.environ["TRAINER_ENGINE_DATA_DIR"] = old


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Train on one intra-op thread: on a small, shared CPU the OpenMP threads spin-wait on each other
    whenever one is preempted, which made tiny runs many times slower, not faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
