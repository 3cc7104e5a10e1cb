"""`trainforge worker` subprocesses for tests (what the image runs), each in its own session.

Used by tests/integration (module-scoped `workers` fixture) and tests/cli (`submit --follow`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """One `trainforge worker` subprocess in its own session (so its pool and fork server die with it)."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = ""  # the Celery node name, which is its id in the workers table
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "trainforge.cli", "worker", *args],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        """Return the Celery main process id."""
        return self.proc.pid

    def log(self) -> str:
        """Return what the worker logged so far."""
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait for Celery's "ready." line; fail with the log if the worker exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            if " ready." in self.log():
                return
            time.sleep(0.1)
        raise TimeoutError(f"worker not ready after {timeout} s:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the whole worker (main, pool, fork server) at once, like a lost machine."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the main process (Celery's warm shutdown), then SIGKILL what is left of the group."""
        if self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def descendants(self) -> list[int]:
        """Return the pids of every process below the worker's main process."""
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            for task in Path(f"/proc/{pid}/task").glob("*"):
                children = (task / "children").read_text().split() if (task / "children").exists() else []
                found += [int(c) for c in children]
                todo += [int(c) for c in children]
        return found


class WorkerSet:
    """The workers of one test module."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.jobs_workers: list[WorkerProcess] = []
        self.service: WorkerProcess | None = None

    def start_jobs_worker(
        self, queues: str = "jobs", env: dict[str, str] | None = None, concurrency: int = 1
    ) -> WorkerProcess:
        """Start one more worker on job queues (what the compose `worker` service runs).

        `env` adds variables, e.g. TRAINFORGE_WORKER_DEVICES to declare what it offers.
        """
        name = f"jobs-{uuid.uuid4().hex[:6]}"
        worker = WorkerProcess(
            ["--queues", queues, "--concurrency", str(concurrency), "--hostname", f"{name}@%h",
             "--loglevel", "info"],
            {**self.env, **(env or {})},
            self.log_dir / f"{name}.log",
        )  # fmt: skip
        worker.name = f"{name}@{socket.gethostname()}"
        self.jobs_workers.append(worker)
        return worker

    def start_service_worker(self) -> WorkerProcess:
        """Start the webhooks/default worker with the beat schedule (the reaper)."""
        self.service = WorkerProcess(
            ["--queues", "webhooks,default", "--concurrency", "1", "--beat", "--hostname",
             f"service-{uuid.uuid4().hex[:6]}@%h", "--schedule", str(self.log_dir / "beat-schedule")],
            self.env,
            self.log_dir / "service.log",
        )  # fmt: skip
        return self.service

    def running_jobs_workers(self) -> list[WorkerProcess]:
        """Return the jobs workers still running."""
        return [w for w in self.jobs_workers if w.proc.poll() is None]

    def worker_of_pid(self, pid: int) -> WorkerProcess:
        """Return the jobs worker whose process tree holds `pid`."""
        for worker in self.jobs_workers:
            if pid == worker.pid or pid in worker.descendants():
                return worker
        raise LookupError(f"no jobs worker runs pid {pid}")

    def stop(self) -> None:
        """Stop every worker."""
        for worker in [*self.jobs_workers, *([self.service] if self.service else [])]:
            worker.stop()
