"""The worker's cache of unpacked datasets, by content hash, shared by every job on this machine.

    <cache_dir>/sets/<sha256>/          one unpacked dataset (complete once `.complete`, its size, is in it)
    <cache_dir>/sets/<sha256>.lock      flock: exclusive while unpacking or evicting, shared while in use
    <cache_dir>/labels/                 the engine's label caches (never inside a dataset folder)

A job holds the set's lock shared for as long as it trains on it; only unpacking a set that is not
there yet takes it exclusively (into a temporary folder renamed into place). Eviction removes the
least recently used sets past `max_bytes`, skipping any whose lock it cannot take at once (in use).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from trainforge.datasets.archive import Limits, extract

COMPLETE = ".complete"


@dataclass
class CachedSet:
    """An unpacked set held (shared lock) for one job; `release()` lets eviction take it again."""

    path: Path
    hit: bool
    _lock: IO[bytes]

    def release(self) -> None:
        """Drop the shared lock."""
        with contextlib.suppress(OSError):
            self._lock.close()


class DatasetCache:
    """Unpacked datasets under `root`, at most about `max_bytes` of them."""

    def __init__(self, root: str | Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.sets = self.root / "sets"
        self.max_bytes = max_bytes

    @property
    def label_dir(self) -> Path:
        """Return where the engine writes its label caches for jobs on this worker."""
        return self.root / "labels"

    def acquire(self, sha256: str, archive: Path, fmt: str, limits: Limits) -> CachedSet:
        """Return the unpacked set of `archive` (unpacking it once), held until `release()`."""
        self.sets.mkdir(parents=True, exist_ok=True)
        target = self.sets / sha256
        lock = open(self.sets / f"{sha256}.lock", "ab")  # noqa: SIM115 - closed by CachedSet.release
        try:
            fcntl.flock(lock, fcntl.LOCK_SH)
            hit = (target / COMPLETE).is_file()
            if not hit:
                # Exclusive only to unpack: jobs already training on the set keep their shared locks,
                # so a second job waits only for an unpack in progress, never for a run to end.
                fcntl.flock(lock, fcntl.LOCK_UN)
                fcntl.flock(lock, fcntl.LOCK_EX)
                hit = (target / COMPLETE).is_file()  # another job unpacked it while we waited
                if not hit:
                    self._unpack(archive, fmt, target, limits)
                fcntl.flock(lock, fcntl.LOCK_SH)
            os.utime(target / COMPLETE)  # the LRU clock
        except BaseException:
            lock.close()
            raise
        held = CachedSet(target, hit, lock)
        self.evict(keep=sha256)
        return held

    def _unpack(self, archive: Path, fmt: str, target: Path, limits: Limits) -> None:
        """Unpack into a temporary folder and rename it into place."""
        shutil.rmtree(target, ignore_errors=True)  # a set left incomplete by a crash
        tmp = self.sets / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
        try:
            extract(archive, fmt, tmp, limits)
            # Recorded once: eviction runs at every job start and must not walk every cached file.
            (tmp / COMPLETE).write_text(str(_size(tmp)))
            os.rename(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def evict(self, keep: str | None = None) -> list[str]:
        """Remove least recently used sets not in use until the cache fits; return their hashes."""
        if not self.sets.is_dir():
            return []
        sets = []
        for path in self.sets.iterdir():
            marker = path / COMPLETE
            if path.is_dir() and marker.is_file():
                sets.append((marker.stat().st_mtime, path.name, _recorded_size(path)))
        total = sum(size for _, _, size in sets)
        removed = []
        for _, sha, size in sorted(sets):
            if total <= self.max_bytes:
                break
            if sha == keep:
                continue
            if self._remove_unused(sha):
                total -= size
                removed.append(sha)
        return removed

    def _remove_unused(self, sha: str) -> bool:
        """Remove set `sha` if no job holds it; return whether it was removed."""
        with open(self.sets / f"{sha}.lock", "ab") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            shutil.rmtree(self.sets / sha, ignore_errors=True)
            return True


def _recorded_size(path: Path) -> int:
    """Return the size a set's `.complete` marker records (walk the set if it records none)."""
    recorded = (path / COMPLETE).read_text().strip()
    return int(recorded) if recorded.isdigit() else _size(path)


def _size(path: Path) -> int:
    """Return the bytes of the files below `path`."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
