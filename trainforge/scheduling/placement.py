"""Placement in the database: a worker takes the highest-priority waiting job it can run.

    lock the worker's row                       (its pool processes place one at a time: no GPU is
                                                 handed out twice)
    free GPUs = the worker's GPUs - those its running jobs hold
    candidates = waiting jobs of its queues that fit (gpus <= free, memory <= its devices'),
                 by priority (higher first), then submission (oldest first)
    take_lease on each candidate in turn        (the lease decides races with other workers)

Celery carries run_job messages, but a message is only a wake-up: whichever job the database
names is the one that runs, so priorities hold across queues, which the broker knows nothing of.
A message lost, or taken by a worker that could not use it, loses nothing: the worker's heartbeat
finds runnable jobs with no message (`runnable_count`) and wakes the worker itself (`wake`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select, update
from sqlalchemy.orm import Session

from trainforge import queue
from trainforge.db.models import Job, Worker
from trainforge.jobs import lease
from trainforge.scheduling import registry
from trainforge.vocab import RUN_JOB, WAITING

log = logging.getLogger(__name__)

# Candidates read at a time; more only when every one was refused or taken by a racing worker.
BATCH = 8

# The order every placement and every "position" follows.
PLACEMENT_ORDER = (Job.priority.desc(), Job.created_at, Job.id)


def fits(worker: Worker, free_gpus: int) -> list[ColumnElement[bool]]:
    """Return the conditions under which a waiting job can run on `worker` with `free_gpus` free.

    The one list of what makes a job runnable here; a tenant's running-jobs limit belongs in it too.
    """
    return [
        Job.status.in_([s.value for s in WAITING]),
        Job.queue.in_(list(worker.queues or [])),
        Job.gpus <= free_gpus,
        or_(Job.gpu_memory_gb.is_(None), Job.gpu_memory_gb <= (worker.gpu_memory_gb or 0.0)),
    ]


def runnable(worker: Worker, free_gpus: int) -> Select[Any]:
    """Return the query of the jobs `worker` can run now, in placement order."""
    return select(Job.id).where(*fits(worker, free_gpus)).order_by(*PLACEMENT_ORDER)


def lock_worker(session: Session, worker_id: str) -> Worker | None:
    """Lock the worker's row for this transaction and return it, or None if it is not registered.

    An UPDATE, not SELECT FOR UPDATE: it also takes SQLite's write lock at once, so the free-GPU
    count read next cannot change before this transaction commits.
    """
    touched = session.execute(
        update(Worker)
        .where(Worker.id == worker_id)
        .values(heartbeat_at=Worker.heartbeat_at)
        .execution_options(synchronize_session=False)
    )
    if touched.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(Worker, worker_id, populate_existing=True)


def take_next(
    session: Session, worker_id: str, owner: str, admit: Callable[[Session, str], bool] | None = None
) -> str | None:
    """Take the lease of the best job `worker_id` can run now; return its id, or None if there is none.

    `admit(session, job_id)` may refuse a candidate (its tenant runs as many jobs as it may); the
    next one is tried, so one tenant at its limit does not hold back the others' jobs.
    """
    worker = lock_worker(session, worker_id)
    if worker is None:
        return None
    _, held = registry.busy_gpus(session, worker_id)
    query = runnable(worker, worker.gpus - held)
    passed: list[str] = []
    while True:
        candidates = session.scalars(query.where(Job.id.not_in(passed)).limit(BATCH)).all()
        for job_id in candidates:
            if (admit is None or admit(session, job_id)) and lease.take_lease(session, job_id, owner):
                session.execute(
                    update(Job)
                    .where(Job.id == job_id)
                    .values(worker_id=worker_id)
                    .execution_options(synchronize_session=False)
                )
                return job_id
            passed.append(job_id)
        if len(candidates) < BATCH:
            return None


def is_registered(session: Session, worker_id: str) -> bool:
    """Return whether the worker has a row."""
    return session.get(Worker, worker_id) is not None


def runnable_count(session: Session, worker_id: str) -> int:
    """Return how many more jobs the worker could start now (bounded by its free slots)."""
    worker = session.get(Worker, worker_id)
    if worker is None:
        return 0
    running, held = registry.busy_gpus(session, worker_id)
    free_slots = worker.slots - running
    if free_slots <= 0:
        return 0
    sub = runnable(worker, worker.gpus - held).limit(free_slots).subquery()
    return int(session.execute(select(func.count()).select_from(sub)).scalar_one())


def wake(worker_id: str, times: int = 1) -> None:
    """Send run_job wake-ups to the worker's own queue (Celery's per-node direct queue)."""
    from celery.utils.nodenames import worker_direct

    for _ in range(times):
        queue.send(RUN_JOB, [None], queue=worker_direct(worker_id))  # type: ignore[arg-type]
