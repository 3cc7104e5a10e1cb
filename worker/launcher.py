"""Start the training child in its own process group and signal or wait for it.

Two ways to start it: forked by the warm fork server (worker.zygote; milliseconds, torch already
imported) or as a fresh interpreter (`python -m worker.child`, or `torchrun` for several GPUs).
Either way the child leads its own session, so one signal to its group reaches every process it
started (DDP ranks, data-loader workers), and the Celery worker never imports torch. The child gets
its RunSpec once: in the fork request, or from the spec file its command line names.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Protocol

from worker.runspec import RunSpec
from worker.zygote import ZygoteClient

# The one fork server of this worker process tree, set by worker.lifecycle when the worker starts.
_zygote: ZygoteClient | None = None


def set_zygote(zygote: ZygoteClient | None) -> None:
    """Use `zygote` to fork training children (None: start fresh interpreters)."""
    global _zygote
    _zygote = zygote


def get_zygote() -> ZygoteClient | None:
    """Return the fork server in use, if any."""
    return _zygote


class Child(Protocol):
    """A started training child."""

    pid: int

    def wait(self, timeout: float) -> int | None:
        """Wait up to `timeout` s; return the exit code (negative: killed by that signal) or None."""

    def signal_group(self, sig: int) -> None:
        """Send `sig` to the child's whole process group."""

    def close(self) -> None:
        """Release what is held to watch the child."""


def _killpg(pgid: int, sig: int) -> None:
    """Signal a process group; one that is gone already is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class ForkedChild:
    """A child forked by the fork server; its exit code arrives on the request's connection."""

    def __init__(self, conn: socket.socket, pid: int) -> None:
        self.conn = conn
        self.pid = pid
        self._code: int | None = None
        self._done = False
        self._sel = selectors.DefaultSelector()
        self._sel.register(conn, selectors.EVENT_READ)
        self._buffer = b""

    def wait(self, timeout: float) -> int | None:
        """Wait for the server's exit message (or the connection's end) for up to `timeout` s."""
        deadline = time.monotonic() + timeout
        while not self._done:
            left = deadline - time.monotonic()
            if left <= 0 or not self._sel.select(left):
                return None
            chunk = self.conn.recv(4096)
            if not chunk:
                # Every holder of the server side closed: the child exited, and the server with it.
                self._done = True
                break
            self._buffer += chunk
            if b"\n" in self._buffer:
                self._code = int(json.loads(self._buffer.split(b"\n", 1)[0])["exit"])
                self._done = True
        return self._code if self._code is not None else UNKNOWN_EXIT

    def signal_group(self, sig: int) -> None:
        """Signal the child's process group (the child called setsid, so its pgid is its pid)."""
        if not self._done:
            _killpg(self.pid, sig)

    def close(self) -> None:
        """Close the connection (the child treats that as its supervisor going away)."""
        self._sel.close()
        self.conn.close()


# Reported when the fork server vanished before it could tell the child's exit status.
UNKNOWN_EXIT = -255


class PopenChild:
    """A child started as a fresh interpreter (or torchrun) in a new session."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.pid = process.pid

    def wait(self, timeout: float) -> int | None:
        """Wait up to `timeout` s for the process to exit."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal_group(self, sig: int) -> None:
        """Signal the process group the child leads."""
        if self.process.poll() is None:
            _killpg(self.pid, sig)

    def close(self) -> None:
        """Make sure nothing of the group is left behind."""
        _killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


def child_command(spec_path: Path, world_size: int) -> list[str]:
    """Return the command line of a fresh training child (torchrun for more than one process)."""
    if world_size > 1:
        return [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={world_size}",
            "-m",
            "worker.child",
            str(spec_path),
        ]
    return [sys.executable, "-m", "worker.child", str(spec_path)]


def start_child(spec: RunSpec) -> Child:
    """Start the training child of `spec`, its output appended to the run's log."""
    run = spec.run_dir
    run.path.mkdir(parents=True, exist_ok=True)
    zygote = _zygote
    if spec.world_size == 1 and zygote is not None and zygote.alive():
        run.spec.unlink(missing_ok=True)  # an earlier attempt's file would describe another run
        conn, pid = zygote.spawn(spec.to_dict(), str(run.log), os.getcwd())
        return ForkedChild(conn, pid)
    command = child_command(spec.write(), spec.world_size)
    with open(run.log, "ab") as log_file:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return PopenChild(process)
