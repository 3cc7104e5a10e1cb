"""What a run may write: the disk quota of its run folder and the cap on its train.log.

The supervisor calls `UsageWatch.check()` every few tenths of a second while the child trains:

    train.log over job_log_max_bytes  → cut it: keep its head, a marker line, and its latest tail;
                                        the run goes on (the log may grow again until the next cut)
    run folder over job_disk_quota_bytes → report it; the supervisor stops the child at a batch
                                        boundary (last.pt is saved) and the job fails with "disk quota"

The child appends to train.log (O_APPEND), so a cut made here is seen by its next write. Bytes the
child writes between the read of the tail and the truncation are lost with the cut-out middle.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from trainforge.rundir import RunDir

log = logging.getLogger(__name__)

# Of the cap, how much of the log's beginning (the run's setup) and of its end (the latest lines) stays.
HEAD_SHARE, TAIL_SHARE = 0.25, 0.5


def folder_bytes(path: Path) -> int:
    """Return the bytes of every file under `path` (files that vanish meanwhile count nothing)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
    return total


def marker(cut: int, cap: int) -> bytes:
    """Return the line that stands where a cut removed `cut` bytes of the log."""
    return (
        f"\n[trainforge: {cut} bytes of train.log cut here; the log is capped at {cap} bytes "
        "(job_log_max_bytes); its beginning and latest lines are kept]\n"
    ).encode()


def cut_log(path: Path, cap: int) -> int:
    """Cut the log at `path` down to head + marker + tail when it is over `cap` bytes; return bytes cut."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size <= cap:
        return 0
    head, tail = int(cap * HEAD_SHARE), int(cap * TAIL_SHARE)
    with open(path, "r+b") as f:
        f.seek(size - tail)
        latest = f.read(tail)
        cut = size - head - len(latest)
        f.seek(head)
        f.write(marker(cut, cap) + latest)
        f.truncate()
    return cut


@dataclass
class UsageWatch:
    """The run-time limits of one run on what it writes (None: no limit)."""

    run_dir: RunDir
    disk_quota_bytes: int | None = None
    log_max_bytes: int | None = None

    def cut_log(self) -> None:
        """Cut train.log if it is over its cap."""
        if self.log_max_bytes is not None:
            cut = cut_log(self.run_dir.log, self.log_max_bytes)
            if cut:
                log.info(
                    "%s: cut %d bytes of train.log (cap %d)", self.run_dir.path.name, cut, self.log_max_bytes
                )

    def check(self) -> str | None:
        """Cut the log if it is over its cap; return why the run must stop (disk quota), or None."""
        self.cut_log()
        if self.disk_quota_bytes is None:
            return None
        used = folder_bytes(self.run_dir.path)
        if used > self.disk_quota_bytes:
            return (
                f"the job's files reached {used} bytes, over its disk quota of {self.disk_quota_bytes} bytes "
                "(job_disk_quota_bytes); it was stopped at a batch boundary with last.pt saved"
            )
        return None
