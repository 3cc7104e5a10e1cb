"""Fixtures for webhook tests: a private, restartable Redis, test-sized retry timings, real workers.

- `redis_server` / `redis_url`: an embedded redis-server for this module only, so no other test run's
  worker takes our messages and a test may stop and restart it (on the same port).
- `service_env`: the shared one plus a test-sized retry schedule (0, 0.3, 0.3, 0.3 s) and a 0.5 s sweep.
- `webhook_workers`: a jobs worker and a webhooks/default worker with the beat (the sweep).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from integration.workers import WorkerProcess
from shared_helpers import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[2]
FAST_WEBHOOKS = {
    "TRAINFORGE_WEBHOOK_RETRY_SCHEDULE_S": "0,0.3,0.3,0.3",
    "TRAINFORGE_WEBHOOK_SWEEP_INTERVAL_S": "0.5",
    "TRAINFORGE_HEARTBEAT_INTERVAL_S": "0.5",
    "TRAINFORGE_LEASE_TIMEOUT_S": "10",
    "TRAINFORGE_REAP_INTERVAL_S": "1",
    # TickTrainer is torch-free: fresh-interpreter children start faster than a preloaded fork server.
    "TRAINFORGE_FORK_SERVER": "0",
}


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory, redis_server_binary: str) -> Iterator[EmbeddedRedis]:
    """Yield a private redis-server for this module."""
    server = EmbeddedRedis(redis_server_binary, tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def redis_url(redis_server: EmbeddedRedis) -> str:
    """Use this module's private Redis."""
    return redis_server.url


@pytest.fixture(scope="module")
def service_env(service_env: dict[str, str]) -> dict[str, str]:
    """Add test-sized webhook timings to the shared environment."""
    return {**service_env, **FAST_WEBHOOKS}


@pytest.fixture(scope="module")
def webhook_workers(service_env: dict[str, str], tmp_path_factory) -> Iterator[list[WorkerProcess]]:
    """Start a jobs worker and a webhooks/default worker with the beat (the sweep) for this module."""
    env = {**os.environ, **service_env, "PYTHONPATH": str(ROOT)}
    logs = tmp_path_factory.mktemp("worker-logs")
    tag = uuid.uuid4().hex[:6]
    workers = [
        WorkerProcess(["--queues", "jobs", "--hostname", f"jobs-{tag}@%h"], env, logs / "jobs.log"),
        WorkerProcess(
            ["--queues", "webhooks,default", "--concurrency", "2", "--beat", "--hostname", f"hooks-{tag}@%h",
             "--schedule", str(logs / "beat-schedule")],
            env,
            logs / "webhooks.log",
        ),
    ]  # fmt: skip
    try:
        for worker in workers:
            worker.wait_ready()
        yield workers
    finally:
        for worker in workers:
            worker.kill()  # their jobs are done, and a warm shutdown costs seconds
