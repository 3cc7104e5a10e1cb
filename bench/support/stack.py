"""Start the service as real processes for a benchmark: Redis, a database, the API and one jobs worker.

The database is a SQLite file in the work folder unless BENCH_DATABASE_URL names another (e.g. a
fresh PostgreSQL database); Redis is an embedded redis-server unless BENCH_REDIS_URL is set.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from trainforge.cli.server import _terminate, dev_token, free_port, migrate, start_redis

ROOT = Path(__file__).resolve().parents[2]


class Stack:
    """The API, a jobs worker and their Redis and database, started in `workdir`."""

    def __init__(
        self,
        workdir: Path,
        env: dict[str, str] | None = None,
        api_workers: int = 1,
        worker_concurrency: int = 1,
        worker_queues: list[str] | None = None,
        api_app: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.extra_env = env or {}
        self.api_workers = api_workers
        self.worker_concurrency = worker_concurrency
        # One jobs worker per entry, consuming those (comma-separated) queues.
        self.worker_queues = worker_queues or ["jobs"]
        self.worker_names: list[str] = []
        # An ASGI app ("module:attr") to serve instead of the product's, with the same uvicorn options.
        self.api_app = api_app
        # The TRAINFORGE_* variables the processes run with (set in this process too by start()).
        self.env: dict[str, str] = {}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.redis: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self.token = ""

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        """Start everything and wait until the API answers and the worker is ready."""
        from trainforge.settings import get_settings

        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {
            "TRAINFORGE_ENV": "development",
            "TRAINFORGE_DATABASE_URL": os.environ.get(
                "BENCH_DATABASE_URL", f"sqlite:///{self.workdir / 'trainforge.db'}"
            ),
            "TRAINFORGE_ARTIFACTS_DIR": str(self.workdir / "artifacts"),
            "TRAINER_ENGINE_DATA_DIR": str(self.workdir / "datasets"),
            **self.extra_env,
        }
        if "BENCH_REDIS_URL" in os.environ:
            env["TRAINFORGE_REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
        else:
            self.redis, env["TRAINFORGE_REDIS_URL"] = start_redis(self.workdir / "redis")
        self.env = env
        os.environ.update(env)
        get_settings.cache_clear()
        migrate("head")
        self.token = dev_token(self.workdir, "bench")
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        child_env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cli = [sys.executable, "-m", "trainforge.cli"]
        api = [*cli, "api", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        if self.api_app is not None:  # the options `trainforge api` gives uvicorn (cli/server.py)
            api = [sys.executable, "-m", "uvicorn", self.api_app, "--host", "127.0.0.1", "--port",
                   str(port), "--log-level", "warning", "--proxy-headers"]  # fmt: skip
        api += ["--workers", str(self.api_workers)]
        self._spawn(api, child_env, "api.log")
        logs = []
        for index, queues in enumerate(self.worker_queues):
            log_name = "worker.log" if index == 0 else f"worker-{index}.log"
            name = f"bench-{index}@{socket.gethostname()}"
            argv = [*cli, "worker", "--queues", queues, "--hostname", name, "--loglevel", "info",
                    "--concurrency", str(self.worker_concurrency)]  # fmt: skip
            logs.append((self._spawn(argv, child_env, log_name), self.workdir / log_name))
            self.worker_names.append(name)
        for worker, log_path in logs:
            self._wait(lambda p=log_path: " ready." in p.read_text(), worker, "worker ready")
        self._wait(self._api_up, self.procs[0], "API up")

    def _spawn(self, argv: list[str], env: dict[str, str], log_name: str) -> subprocess.Popen[bytes]:
        """Start a process in its own session with its output in the work folder."""
        with open(self.workdir / log_name, "wb") as log:
            proc = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs.append(proc)
        return proc

    def _api_up(self) -> bool:
        """Return whether the API answers /healthz."""
        try:
            return httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    @staticmethod
    def _wait(predicate: Any, proc: subprocess.Popen[bytes], what: str, timeout: float = 120.0) -> None:
        """Wait for `predicate()`; fail if `proc` exits first."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if proc.poll() is not None:
                raise RuntimeError(f"{what}: process exited with {proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(what)
            time.sleep(0.05)

    def client(self) -> httpx.Client:
        """Return an authenticated client of the API."""
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )

    def wait_job(self, client: httpx.Client, job_id: str, timeout: float = 600.0) -> dict[str, Any]:
        """Poll the job until it ends; return its final JSON."""
        deadline = time.monotonic() + timeout
        while True:
            job = client.get(f"/v1/jobs/{job_id}").json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']}")
            time.sleep(0.02)

    def wait_job_streaming(self, job_id: str, timeout: float = 600.0) -> dict[str, Any]:
        """Follow the job's event stream until its terminal event; return its final JSON.

        Unlike `wait_job` this sends nothing while the job runs (no polling load on a small machine),
        and sees the end as soon as the API publishes it.
        """
        from trainforge.client import TrainforgeClient

        with TrainforgeClient(self.base_url, self.token, timeout=timeout) as client:
            for _ in client.stream_events(job_id):
                pass  # the stream ends after job.succeeded / failed / cancelled
            return client.status(job_id)

    def stop(self) -> None:
        """Stop the API and the worker, then Redis."""
        _terminate(self.procs, 30)
        if self.redis is not None:
            _terminate([self.redis], 10)


def load_average() -> str:
    """Return the 1/5/15-minute load averages and the CPU count, to print with the figures."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} CPUs"
