"""Tiny child entry points for fork-server tests (no torch, so the tests run in milliseconds)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def report(job_id: str) -> int:
    """Write this process's pid, process group and session to the file named by `job_id`; exit 3."""
    Path(job_id).write_text(f"{os.getpid()} {os.getpgrp()} {os.getsid(0)}")
    print("hello from the child", flush=True)
    return 3


def sleep_watched(job_id: str) -> int:
    """Watch the supervisor like a training child does, then sleep (until killed)."""
    from worker.child import watch_supervisor

    watch_supervisor()
    Path(job_id).write_text(str(os.getpid()))
    time.sleep(60)
    return 0


def raise_error(job_id: str) -> int:
    """Fail before doing anything."""
    raise RuntimeError("boom")
