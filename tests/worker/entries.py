"""Tiny child entry points for fork-server tests (no torch, so the tests run in milliseconds)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def report(path: str) -> int:
    """Write this process's pid, process group and session to the file `path`; exit 3."""
    Path(path).write_text(f"{os.getpid()} {os.getpgrp()} {os.getsid(0)}")
    print("hello from the child", flush=True)
    return 3


def sleep_watched(path: str) -> int:
    """Write this process's pid to `path` and sleep until killed (the fork server watches the supervisor)."""
    Path(path).write_text(str(os.getpid()))
    time.sleep(60)
    return 0


def raise_error(path: str) -> int:
    """Fail before doing anything."""
    raise RuntimeError("boom")
