"""The worker's entry in the workers table: registered at start, heartbeat from a thread, removed at stop.

Runs in the Celery main process, which must never touch CUDA: the inventory comes from the
operator's declaration or from torch in a subprocess (trainforge.scheduling.inventory). Each beat
also looks for jobs this worker could start with no message on the way (a message lost with
Redis, or taken by a worker that could not use it) and wakes the worker for each of them.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from trainforge.db.session import create_db_engine
from trainforge.scheduling import placement, registry
from trainforge.scheduling.inventory import Inventory, resolve
from trainforge.settings import Settings, get_settings
from trainforge.vocab import DEFAULT_QUEUE, WEBHOOKS_QUEUE

log = logging.getLogger(__name__)

# Set to "0" for the dispatch of before placement: each run_job runs the job it names, in queue order,
# with one message prefetched per pool process (for comparison: bench/scheduling.py).
PLACEMENT_ENV = "TRAINFORGE_PLACEMENT"

SERVICE_QUEUES = frozenset({WEBHOOKS_QUEUE, DEFAULT_QUEUE})


def placement_enabled() -> bool:
    """Return whether run_job runs the job placement names (the default) rather than the one it carries."""
    return os.environ.get(PLACEMENT_ENV, "1") != "0"


DIRECT_SUFFIX = ".dq2"  # Celery's per-node queue, which only this worker consumes


def job_queues(consumer_queues: list[str]) -> list[str]:
    """Return the job queues among the queues a worker consumes (not service nor its own queue)."""
    return sorted(q for q in consumer_queues if q not in SERVICE_QUEUES and not q.endswith(DIRECT_SUFFIX))


def consumed_queues(worker: Any) -> list[str]:
    """Return the names of the queues a Celery worker consumes."""
    try:
        return list(worker.app.amqp.queues.consume_from)
    except AttributeError:
        return []


class Registration:
    """Keep one worker's row in the workers table while it runs."""

    def __init__(
        self, worker_id: str, queues: list[str], slots: int, settings: Settings | None = None
    ) -> None:
        self.settings = settings or get_settings()
        self.worker_id = worker_id
        self.queues = queues
        self.slots = slots
        self.inventory: Inventory | None = None
        # Its own engine without a pool: the main process forks pool processes, and no connection may be
        # open across a fork (a SQLite connection left open breaks the child's locking of the file).
        self._engine = create_db_engine(self.settings.database_url, poolclass=NullPool)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self) -> None:
        """Find the inventory and register (before the pool starts, so its first task places by it)."""
        self.inventory = resolve(self.settings.worker_devices)
        try:
            self._register()
        except Exception as exc:  # a worker must start even when the database is briefly away
            log.warning("could not register %s yet (%s); the next heartbeat tries again", self.worker_id, exc)
        log.info(
            "registered as %s: queues %s, %d slot(s), %s", self.worker_id, ",".join(self.queues), self.slots,
            describe(self.inventory),
        )  # fmt: skip

    def start_heartbeat(self) -> None:
        """Heartbeat from a daemon thread (once the pool is forked: a fork copies no running beat)."""
        self._thread = threading.Thread(target=self._loop, name="worker-registration", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop heartbeating and remove the row, so placement stops at once rather than at the timeout."""
        if self._stop.is_set():
            return  # stopped when the worker began shutting down
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            with Session(self._engine) as session, session.begin():
                registry.deregister(session, self.worker_id)
        except Exception as exc:  # the row then ages out after the lease timeout
            log.warning("could not deregister %s: %s", self.worker_id, exc)
        self._engine.dispose()

    def beat(self) -> int:
        """Refresh the heartbeat (or register again); wake the worker once per job it can start."""
        with Session(self._engine) as session, session.begin():
            if not registry.heartbeat(session, self.worker_id):
                self._register_in(session)
            runnable = placement.runnable_count(session, self.worker_id) if placement_enabled() else 0
        if runnable:
            placement.wake(self.worker_id, runnable)
        return runnable

    def _loop(self) -> None:
        """Beat every heartbeat interval until stopped; a failed beat is retried at the next one."""
        while not self._stop.wait(self.settings.heartbeat_interval_s):
            try:
                self.beat()
            except Exception as exc:  # the database may be briefly away
                log.warning("worker heartbeat failed: %s", exc)

    def _register(self) -> None:
        """Write the row in its own transaction."""
        with Session(self._engine) as session, session.begin():
            self._register_in(session)

    def _register_in(self, session: Session) -> None:
        """Write the row in `session`'s transaction."""
        assert self.inventory is not None  # set by start() before any registration
        registry.register(
            session,
            registry.WorkerInfo(
                id=self.worker_id,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                queues=self.queues,
                slots=self.slots,
                inventory=self.inventory,
            ),
        )


def describe(inventory: Inventory) -> str:
    """Return the inventory in words for the log."""
    if inventory.kind == "cpu":
        return f"CPU only ({inventory.source})"
    return f"{inventory.gpus} x {inventory.name} {inventory.memory_gb:g} GB ({inventory.source})"
