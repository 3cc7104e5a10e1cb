"""Real processes for end-to-end tests: Celery workers started with `trainforge worker` (what the image runs).

- `redis_url` (overrides the shared one): a private embedded redis-server for this test session, so no
  other test run's workers can take our run_job messages.
- `worker_env`: service_env plus short heartbeat / lease / reap intervals.
- `workers`: a `WorkerSet` for the module: one jobs worker and one service worker (webhooks, default,
  the reaper on a beat schedule); `workers.start_jobs_worker()` adds more.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from shared_helpers import private_redis

from .workers import WorkerSet

ROOT = Path(__file__).resolve().parents[2]
FAST_INTERVALS = {
    "TRAINFORGE_HEARTBEAT_INTERVAL_S": "0.5",
    "TRAINFORGE_LEASE_TIMEOUT_S": "4",
    "TRAINFORGE_REAP_INTERVAL_S": "1",
    "TRAINFORGE_RESEND_WAITING_AFTER_S": "3",
    # Declared, so no worker start waits for torch to look for GPUs (test_inventory runs the probe).
    "TRAINFORGE_WORKER_DEVICES": "cpu",
}


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory, redis_server_binary: str) -> Iterator[str]:
    """Yield the URL of a redis-server started for this session only."""
    with private_redis(redis_server_binary, tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="module")
def worker_env(service_env: dict[str, str]) -> dict[str, str]:
    """Return the environment of worker subprocesses (the test database, Redis and fast intervals)."""
    return {**os.environ, **service_env, **FAST_INTERVALS, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def workers(worker_env: dict[str, str], tmp_path_factory) -> Iterator[WorkerSet]:
    """Yield a started jobs worker and service worker for this module's database."""
    workers = WorkerSet(worker_env, tmp_path_factory.mktemp("worker-logs"))
    try:
        started = [workers.start_jobs_worker(), workers.start_service_worker()]
        for worker in started:
            worker.wait_ready()
        yield workers
    finally:
        workers.stop()
