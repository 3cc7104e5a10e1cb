"""A warm fork server: a process that has already imported torch and the trainers forks each training child.

Importing torch costs seconds; forking a process that already did costs milliseconds. The server is a
fresh interpreter (never forked from the Celery worker), imports the heavy modules but runs no torch op,
so no thread pool or CUDA context exists when it forks. Protocol, one Unix-socket connection per
child: the supervisor sends one JSON line ``{"arg", "log_path", "cwd", "entry"}``; the server forks,
answers ``{"pid": N}`` and later ``{"exit": code}`` (negative code = killed by that signal). The
child calls ``entry(arg)`` (a training child gets its RunSpec as `arg`). It keeps its copy of the
connection: end-of-file on it means the supervisor is gone, and the child kills its group.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from trainer_engine.cfg import TASKS  # names only: no torch

log = logging.getLogger(__name__)

# Imported once in the server so every child starts warm; a module that fails to import is skipped
# (the child then imports it itself and reports the error on the job).
PRELOAD = (
    "torch",
    "torchvision",
    "trainer_engine",
    "trainer_engine.cfg",
    *sorted({ref.split(":")[0] for ref in TASKS.values()}),  # the built-in trainers' modules
    "trainforge.settings",
    "trainforge.db.session",
    "trainforge.events",
    "trainforge.queue",
    "trainforge.webhooks.outbox",
    "trainforge.jobs.repository",
    "trainforge.registry",
    "sqlalchemy.dialects.postgresql.psycopg",
    "sqlalchemy.dialects.sqlite",
    "worker.bridge",
    "worker.child",
)
READY_LINE = b"ready\n"
# What a forked child runs: "module:function", called with the request's `arg`, returning the exit code.
DEFAULT_ENTRY = "worker.child:run_forked"


def preload(modules: tuple[str, ...] = PRELOAD) -> list[str]:
    """Import the modules children need; return those that failed."""
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # a broken optional module must not stop the server
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    return failed


def _exit_code(status: int) -> int:
    """Turn a wait status into a Popen-style code (negative = the signal that killed it)."""
    return os.waitstatus_to_exitcode(status)


def _read_request(conn: socket.socket) -> dict:
    """Read one JSON line from a fresh connection."""
    conn.settimeout(5.0)
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the request ended")
        data += chunk
    conn.settimeout(None)
    return json.loads(data)


def _send(conn: socket.socket, message: dict) -> None:
    """Send one JSON line; a vanished supervisor is not an error here."""
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(message).encode() + b"\n")


def _become_child(conn: socket.socket, request: dict, close: list[int]) -> None:
    """Turn the forked process into the training child and run it; never returns."""
    code = 1
    try:
        for fd in close:
            with contextlib.suppress(OSError):
                os.close(fd)
        os.setsid()  # its own session and process group: the supervisor signals the whole group
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        os.chdir(request.get("cwd") or os.getcwd())
        _redirect_output(request["log_path"])
        threading.Thread(
            target=_die_with, args=(conn,), name="trainforge-supervisor-watch", daemon=True
        ).start()
        module, _, func = (request.get("entry") or DEFAULT_ENTRY).partition(":")
        code = int(getattr(importlib.import_module(module), func)(request["arg"]) or 0)
    except BaseException as exc:
        print(f"training child failed to start: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _die_with(conn: socket.socket) -> None:
    """Block until the supervisor's end of the connection closes, then kill this child's group."""
    with contextlib.suppress(OSError):
        while conn.recv(4096):
            pass
    orphaned()


def orphaned() -> None:
    """Log and kill the whole group at once: nobody would record or stop this run any more."""
    print("trainforge: the supervising worker is gone; stopping this run", file=sys.stderr, flush=True)
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _redirect_output(log_path: str) -> None:
    """Point stdout and stderr at the job's log file (appending, so a resumed run keeps the history)."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    devnull = os.open(os.devnull, os.O_RDONLY)
    # stdin may be closed already, so `fd` can be 0: copy it to 1 and 2 before 0 is replaced.
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.dup2(devnull, 0)
    for extra in {fd, devnull} - {0, 1, 2}:
        os.close(extra)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives as long as the process
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def serve(sock_path: str, modules: tuple[str, ...] = PRELOAD) -> None:
    """Run the fork server on `sock_path` until stdin closes (the worker that started it is gone)."""
    # Listen before preloading: a supervisor that connects early waits in the backlog, not on an error.
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(sock_path)
    listener.bind(sock_path)
    listener.listen(16)
    # Ctrl-C or a SIGTERM to the whole group is for the worker, which then stops us by closing stdin
    # (after it stopped the children); dying first would orphan the training children.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for line in preload(modules):
        print(f"zygote: preload skipped {line}", file=sys.stderr, flush=True)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler (not SIG_IGN) so children can be waited on
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    sys.stdout.buffer.write(READY_LINE)
    sys.stdout.flush()
    inherited = [listener.fileno(), wake_r, wake_w, sel.fileno(), 0]
    children: dict[int, socket.socket] = {}
    running = True
    while running:
        for key, _ in sel.select(timeout=1.0):
            if key.data == "accept":
                _fork_one(listener, children, close=inherited)
            elif key.data == "wake":
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
            else:
                running = _command(os.read(sys.stdin.fileno(), 4096), children)
        _reap(children)
    listener.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(sock_path)


def _command(data: bytes, children: dict[int, socket.socket]) -> bool:
    """Act on a command from the worker on stdin; return False when stdin closed (time to exit)."""
    if not data:
        return False
    if b"term" in data:
        # The worker shuts down: every child stops at a batch boundary and saves last.pt.
        for pid in children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
    return True


def _fork_one(listener: socket.socket, children: dict[int, socket.socket], close: list[int]) -> None:
    """Accept one request and fork its child."""
    conn, _ = listener.accept()
    try:
        request = _read_request(conn)
    except (OSError, ValueError) as exc:
        _send(conn, {"error": f"bad request: {exc}"})
        conn.close()
        return
    pid = os.fork()
    if pid == 0:
        for other in children.values():
            other.close()
        _become_child(conn, request, close)
    children[pid] = conn
    _send(conn, {"pid": pid})


def _reap(children: dict[int, socket.socket]) -> None:
    """Collect exited children and tell each one's supervisor its exit code."""
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            _send(conn, {"exit": _exit_code(status)})
            conn.close()


class ZygoteClient:
    """Start the fork server as a child of this process and ask it for training children."""

    def __init__(self, sock_path: str | None = None, preload: tuple[str, ...] | None = None) -> None:
        # A private directory (mode 0700): only this user can ask the server for a process.
        self.sock_path = sock_path or os.path.join(tempfile.mkdtemp(prefix="trainforge-zygote-"), "fork.sock")
        self.preload = preload
        self.process: subprocess.Popen[bytes] | None = None
        self._owner_pid = os.getpid()

    def start(self) -> None:
        """Start the server; it preloads in the background while the worker starts."""
        argv = [sys.executable, "-m", "worker.zygote", self.sock_path]
        if self.preload is not None:
            argv.append(",".join(self.preload))
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def wait_ready(self, timeout: float = 120.0) -> bool:
        """Block until the server has preloaded and listens; False if it died or timed out."""
        if self.process is None or self.process.stdout is None:
            return False
        sel = selectors.DefaultSelector()
        sel.register(self.process.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return False
        return self.process.stdout.readline() == READY_LINE

    def alive(self) -> bool:
        """Tell whether the server runs and its socket exists (callable from any process of the worker)."""
        if self.process is None or not os.path.exists(self.sock_path):
            return False
        if os.getpid() == self._owner_pid:
            return self.process.poll() is None
        # A forked pool process cannot wait on its parent's child (poll() would report it gone).
        try:
            os.kill(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def spawn(
        self, arg: Any, log_path: str, cwd: str, entry: str = DEFAULT_ENTRY
    ) -> tuple[socket.socket, int]:
        """Fork a child running `entry(arg)` (`arg` JSON-able); return the connection and the child's pid."""
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(self.sock_path)
        request = {"arg": arg, "log_path": log_path, "cwd": cwd, "entry": entry}
        conn.sendall(json.dumps(request).encode() + b"\n")
        # The server answers after it finished preloading; a cold server can take seconds.
        conn.settimeout(180.0)
        reply = json.loads(_readline(conn))
        conn.settimeout(None)
        if "pid" not in reply:
            conn.close()
            raise RuntimeError(f"fork server refused the request: {reply.get('error')}")
        return conn, int(reply["pid"])

    def terminate_children(self) -> None:
        """Ask the server to send SIGTERM to every training child it started."""
        if self.process is not None and self.process.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.process.stdin.write(b"term\n")
                self.process.stdin.flush()

    def stop(self, timeout: float = 5.0) -> None:
        """Close the server's stdin (its signal to exit) and wait for it."""
        if self.process is None:
            return
        with contextlib.suppress(OSError):
            if self.process.stdin:
                self.process.stdin.close()
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _readline(conn: socket.socket) -> bytes:
    """Read bytes up to a newline (messages are tiny, so byte-by-byte is fine)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            break
        data += chunk
    return data


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    serve(sys.argv[1], tuple(filter(None, sys.argv[2].split(","))) if len(sys.argv) > 2 else PRELOAD)
