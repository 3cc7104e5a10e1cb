"""Fixtures for placement tests: registered workers with declared inventories, a queue per test."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from trainforge.db.session import session_scope
from trainforge.scheduling import placement, registry
from trainforge.scheduling.inventory import parse_declared


@pytest.fixture
def queue_name() -> str:
    """A queue of this test only (the module's database is shared by its tests)."""
    return f"q-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def add_worker(settings_env) -> Callable[..., str]:
    """Return `add_worker(queues, devices="cpu", slots=1)`: register a worker, return its id."""

    def add(queues: list[str], devices: str = "cpu", slots: int = 1) -> str:
        worker_id = f"w-{uuid.uuid4().hex[:8]}@test"
        info = registry.WorkerInfo(worker_id, "test", 1, queues, slots, parse_declared(devices))
        with session_scope() as s:
            registry.register(s, info)
        return worker_id

    return add


@pytest.fixture
def take(settings_env) -> Callable[[str], str | None]:
    """Return `take(worker_id)`: place the worker's next job (lease owner `<worker>:owner`)."""

    def take_one(worker_id: str) -> str | None:
        with session_scope() as s:
            return placement.take_next(s, worker_id, f"{worker_id}:owner")

    return take_one
