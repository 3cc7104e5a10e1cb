"""Where generated (synthetic) data sets are cached, and how one is written there safely."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

DATA_DIR_ENV = "TRAINER_ENGINE_DATA_DIR"


def data_dir() -> Path:
    """Return the folder where generated data sets are cached ($TRAINER_ENGINE_DATA_DIR or ~/.cache)."""
    default = Path.home() / ".cache" / "trainer_engine" / "datasets"
    return Path(os.environ.get(DATA_DIR_ENV) or default).expanduser()


def materialize(dirname: str, done: str, write: Callable[[Path], None]) -> Path:
    """Return data_dir()/dirname, calling `write(folder)` first if the file `done` is not in it yet.

    The set is written into a private temporary folder and renamed into place: a crash leaves only a
    dot-folder, never a half set under the final name, and concurrent writers cannot mix their files.
    """
    root = data_dir() / dirname
    if (root / done).is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{dirname}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        write(tmp)
        os.rename(tmp, root)
    except OSError:
        if not (root / done).is_file():  # a real failure, not another process finishing first
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
