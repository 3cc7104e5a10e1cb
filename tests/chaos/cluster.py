"""One trial's service, as real processes it can hurt: PostgreSQL, Redis, the API and the workers.

    Postgres      a copy of the migrated template on a free port (stop / start)
    redis-server  on a free port, no persistence (stop loses every queued message)
    API           `trainforge api` (uvicorn, what the image runs) on a fixed port (kill / start again)
    workers       one `trainforge worker --queues webhooks,default --beat` (the reaper, the webhook
                  sweep) and one or two `trainforge worker --queues jobs` (two where a trial needs
                  another worker to take a job over), as docker-compose runs them

Intervals are test-sized (CHAOS_INTERVALS): a lease expires in seconds, so a trial does too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from integration.workers import WorkerProcess, WorkerSet
from private_postgres import Postgres
from shared_helpers import EmbeddedRedis, free_port, wait_for_port
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from trainforge.auth import create_token

ROOT = Path(__file__).resolve().parents[2]

# The production defaults scaled down about 15 times (lease 60 s → 4 s, heartbeat 5 s → 0.5 s, reap
# 15 s → 0.5 s, re-sending a waiting job's run_job 60 s → 3 s), so a fault that outlives a lease
# does so in seconds. Webhook retries come every
# second for two minutes, longer than any trial's job, so a receiver that comes back gets them all.
CHAOS_INTERVALS = {
    "TRAINFORGE_HEARTBEAT_INTERVAL_S": "0.5",
    "TRAINFORGE_LEASE_TIMEOUT_S": "4",
    "TRAINFORGE_REAP_INTERVAL_S": "0.5",
    "TRAINFORGE_STOP_GRACE_S": "5",
    "TRAINFORGE_RESEND_WAITING_AFTER_S": "3",
    "TRAINFORGE_SSE_POLL_S": "0.5",
    "TRAINFORGE_WEBHOOK_RETRY_SCHEDULE_S": ",".join(["0"] + ["1"] * 120),
    "TRAINFORGE_WEBHOOK_SWEEP_INTERVAL_S": "0.5",
    "TRAINFORGE_WEBHOOK_CONNECT_TIMEOUT_S": "1",
    "TRAINFORGE_WEBHOOK_TIMEOUT_S": "2",
}


class ApiProcess:
    """`trainforge api` in its own session, on a port that stays the same across restarts."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.port = free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the API's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server (wait with `wait_ready`)."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "trainforge.cli", "api", "--host", "127.0.0.1",
                 "--port", str(self.port), "--log-level", "warning"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until the server listens."""
        wait_for_port(self.port, timeout=timeout, proc=self.proc)

    def kill(self) -> None:
        """SIGKILL the server, cutting every open stream."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log(self) -> str:
        """Return what the server logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Cluster:
    """The processes of one trial and a way to read its database."""

    def __init__(self, workdir: Path, postgres: Postgres, redis_binary: str, data_dir: Path) -> None:
        self.workdir = workdir
        self.postgres = postgres
        self.redis = EmbeddedRedis(redis_binary, workdir)
        self.artifacts = workdir / "artifacts"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TRAINFORGE_ENV": "development",
            "TRAINFORGE_DATABASE_URL": postgres.url,
            "TRAINFORGE_REDIS_URL": self.redis.url,
            "TRAINFORGE_ARTIFACTS_DIR": str(self.artifacts),
            "TRAINFORGE_WEBHOOK_ALLOW": "127.0.0.0/8",
            "TRAINFORGE_TRAINER_MODULES": "tests.",
            "TRAINER_ENGINE_DATA_DIR": str(data_dir),
            # Declared, so no worker start waits for torch to look for GPUs.
            "TRAINFORGE_WORKER_DEVICES": "cpu",
            **CHAOS_INTERVALS,
        }
        self.api = ApiProcess(self.env, workdir / "api.log")
        self.workers = WorkerSet(self.env, workdir)
        self.db: Engine = create_engine(postgres.url, pool_pre_ping=True)
        self.token = ""

    def start(
        self, settings: dict[str, str] | None = None, jobs_worker_env: list[dict[str, str]] | None = None
    ) -> None:
        """Start everything (the processes in parallel) and make a token of a fresh tenant.

        `settings` are TRAINFORGE_* variables for every process of the trial; `jobs_worker_env` holds
        one dict per jobs worker, for variables of that worker alone (default: one plain worker).
        """
        self.env.update(settings or {})  # the API and the workers hold this very dict
        self.postgres.start()
        self.redis.start()
        self.api.start()
        started = [self.workers.start_jobs_worker(env=env) for env in (jobs_worker_env or [{}])]
        started.append(self.workers.start_service_worker())
        self.api.wait_ready()
        for worker in started:
            worker.wait_ready(timeout=180)
        with Session(self.db) as session:
            self.token = create_token(session, f"chaos-{uuid.uuid4().hex[:8]}")
            session.commit()

    def stop(self) -> None:
        """Kill every process and stop the servers (a trial's state is thrown away)."""
        for worker in [*self.workers.jobs_workers, *([self.workers.service] if self.workers.service else [])]:
            self.kill_worker(worker)
        self.api.kill()
        self.redis.stop()
        self.db.dispose()
        if self.postgres.running():
            self.postgres.stop("immediate")

    @staticmethod
    def kill_worker(worker: WorkerProcess) -> None:
        """SIGKILL a worker's whole process group, also one already gone or stopped."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGCONT)  # a stopped process dies only once it runs
            os.killpg(worker.pid, signal.SIGKILL)
        worker.proc.wait(10)

    def client(self, **kwargs: Any) -> httpx.Client:
        """Return an HTTP client of the API with the trial's token."""
        return httpx.Client(
            base_url=self.api.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30, **kwargs
        )

    def logs(self) -> str:
        """Return the tail of every process's log (for a failing trial's message)."""
        parts = [f"--- api\n{self.api.log()[-2000:]}"]
        for worker in [*self.workers.jobs_workers, *([self.workers.service] if self.workers.service else [])]:
            parts.append(f"--- {worker.log_path.name}\n{worker.log()[-3000:]}")
        return "\n".join(parts)


def wait_for(predicate: Any, timeout: float, what: str, every: float = 0.1) -> Any:
    """Poll `predicate()` until it returns something true; return it (fail naming `what`)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):  # the database may be the thing a trial stopped
            value = predicate()
            if value:
                return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)
