"""The worker's dataset cache: unpacked once per content hash, shared, locked, evicted least recently used."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import zipfile
from pathlib import Path

import pytest

from trainforge.datasets.archive import ArchiveError, Limits
from worker.dataset_cache import DatasetCache

LIMITS = Limits(max_files=100, max_bytes=10**8, max_ratio=1000.0)


def make_zip(path: Path, payload: bytes) -> tuple[Path, str]:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("set/data.bin", payload)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_set_is_unpacked_once_and_then_hit(tmp_path: Path) -> None:
    archive, sha = make_zip(tmp_path / "a.zip", b"x" * 1000)
    cache = DatasetCache(tmp_path / "cache", max_bytes=10**9)
    first = cache.acquire(sha, archive, "zip", LIMITS)
    second = cache.acquire(sha, archive, "zip", LIMITS)
    assert (first.hit, second.hit) == (False, True)
    assert first.path == second.path and (first.path / "set" / "data.bin").read_bytes() == b"x" * 1000
    first.release()
    second.release()


def _acquire(root: str, archive: str, sha: str, results: multiprocessing.Queue) -> None:
    held = DatasetCache(root, 10**9).acquire(sha, Path(archive), "zip", LIMITS)
    results.put((os.getpid(), held.hit))
    held.release()


def test_jobs_acquiring_at_once_unpack_it_once(tmp_path: Path) -> None:
    archive, sha = make_zip(tmp_path / "a.zip", os.urandom(2_000_000))
    ctx = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue = ctx.Queue()
    procs = [
        ctx.Process(target=_acquire, args=(str(tmp_path / "c"), str(archive), sha, results)) for _ in range(3)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    hits = sorted(results.get(timeout=5)[1] for _ in procs)
    assert hits == [False, True, True]
    assert [p.name for p in (tmp_path / "c" / "sets").iterdir() if p.is_dir()] == [sha]


def test_least_recently_used_sets_are_evicted_unless_in_use(tmp_path: Path) -> None:
    cache = DatasetCache(tmp_path / "cache", max_bytes=2500)
    zips = [make_zip(tmp_path / f"{i}.zip", bytes([i]) * 1000) for i in range(4)]
    a = cache.acquire(zips[0][1], zips[0][0], "zip", LIMITS)
    a.release()
    b = cache.acquire(zips[1][1], zips[1][0], "zip", LIMITS)  # held for the rest of the test
    os.utime(a.path / ".complete", (1, 1))  # a is the oldest
    os.utime(b.path / ".complete", (2, 2))
    c = cache.acquire(zips[2][1], zips[2][0], "zip", LIMITS)
    assert not a.path.exists(), "the least recently used set not in use goes first"
    assert b.path.exists() and c.path.exists()
    c.release()
    os.utime(c.path / ".complete", (3, 3))
    d = cache.acquire(zips[3][1], zips[3][0], "zip", LIMITS)
    assert b.path.exists(), "a set a job holds is never evicted, however old"
    assert not c.path.exists() and d.path.exists()
    b.release()
    d.release()


def test_a_hostile_archive_leaves_nothing_in_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ok.txt", "fine")
        archive.writestr("../escape.txt", "bad")
    cache = DatasetCache(tmp_path / "cache", max_bytes=10**9)
    with pytest.raises(ArchiveError, match=r"'\.\.' in the path"):
        cache.acquire("0" * 64, path, "zip", LIMITS)
    assert [p.name for p in (tmp_path / "cache" / "sets").iterdir()] == ["0" * 64 + ".lock"]
    assert not (tmp_path / "escape.txt").exists()


def test_a_hit_reads_the_recorded_size_instead_of_walking_the_set(tmp_path: Path) -> None:
    cache = DatasetCache(tmp_path / "cache", max_bytes=10**9)
    archive, sha = make_zip(tmp_path / "a.zip", b"z" * 1000)
    cache.acquire(sha, archive, "zip", LIMITS).release()
    marker = cache.sets / sha / ".complete"
    assert int(marker.read_text()) == 1000, "the unpacked size is recorded once, at unpack"

    marker.write_text("5000")  # eviction trusts the record: a hit costs no walk of the set's files
    cache.max_bytes = 4000
    assert cache.evict() == [sha]

    held = cache.acquire(sha, archive, "zip", LIMITS)
    (held.path / ".complete").write_text("")  # a set cached before sizes were recorded is walked
    held.release()
    cache.max_bytes = 999
    assert cache.evict() == [sha]
