"""Fixtures for the classification tests: small ImageFolder trees."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from classify_helpers import write_png


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
