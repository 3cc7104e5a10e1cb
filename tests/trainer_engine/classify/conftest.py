"""Fixtures for the classification tests: a private data cache and small ImageFolder trees."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from classify_helpers import write_png


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point TRAINER_ENGINE_DATA_DIR at a session temp dir so synthetic sets are generated once, privately."""
    path = tmp_path_factory.mktemp("datasets")
    old = os.environ.get("TRAINER_ENGINE_DATA_DIR")
    os.environ["TRAINER_ENGINE_DATA_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("TRAINER_ENGINE_DATA_DIR", None)
    else:
        os.environ["TRAINER_ENGINE_DATA_DIR"] = old


@pytest.fixture
def make_folder(tmp_path: Path) -> Callable[..., Path]:
    """Build an ImageFolder tree: make_folder({"train": {"a": 2, "b": 2}, "val": {...}})."""

    def make(layout: dict[str, dict[str, int]], name: str = "ds") -> Path:
        root = tmp_path / name
        root.mkdir()
        for split, classes in layout.items():
            (root / split).mkdir()
            for cls, n in classes.items():
                (root / split / cls).mkdir()
                for i in range(n):
                    write_png(root / split / cls / f"{i}.png", seed=i)
        return root

    return make
