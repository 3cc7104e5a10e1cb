"""Where generated (synthetic) data sets are cached, and how one is written there safely."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

DATA_DIR_ENV = "TRAINER_ENGINE_DATA_DIR"
# Where label caches go instead of next to the labels (a service keeps dataset folders read-only).
LABEL_CACHE_ENV = "TRAINER_ENGINE_LABEL_CACHE_DIR"


def data_dir() -> Path:
    """Return the folder where generated data sets are cached ($TRAINER_ENGINE_DATA_DIR or ~/.cache)."""
    default = Path.home() / ".cache" / "trainer_engine" / "datasets"
    return Path(os.environ.get(DATA_DIR_ENV) or default).expanduser()


def label_cache_file(label_dir: Path) -> Path:
    """Return the label cache file of a split's label folder.

    Next to it (`labels/train.cache.json`) by default; under $TRAINER_ENGINE_LABEL_CACHE_DIR, named
    after a hash of the folder's path, when that is set, so nothing is written into the dataset.
    """
    folder = os.environ.get(LABEL_CACHE_ENV)
    if not folder:
        return label_dir.parent / f"{label_dir.name}.cache.json"
    digest = hashlib.sha256(str(label_dir.resolve()).encode()).hexdigest()[:16]
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder) / f"{digest}-{label_dir.name}.cache.json"


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
