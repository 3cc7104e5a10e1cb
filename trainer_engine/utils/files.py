"""Files a run writes besides checkpoints."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


def append_csv_row(path: Path, row: dict[str, Any]) -> None:
    """Append `row` to the CSV at `path`, writing the header (the row's keys) when the file is new."""
    new = not path.is_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row), extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)
