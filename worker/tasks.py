"""Celery tasks of the worker: thin wrappers that take ids and call the supervisor or the reaper."""

from __future__ import annotations

from trainforge import queue
from worker import lifecycle, reaper
from worker.celery_app import app
from worker.supervisor import Supervisor


@app.task(name=queue.RUN_JOB, acks_late=False, ignore_result=True)
def run_job(job_id: str) -> str:
    """Run one job to its end (acknowledged on receipt: the lease, not the broker, guards the run)."""
    return Supervisor(job_id, parent_pid=lifecycle.pool_parent_pid()).run()


@app.task(name=queue.REAP_JOBS, ignore_result=True)
def reap_jobs() -> int:
    """Re-queue jobs whose worker stopped heartbeating and re-send stuck waiting jobs; return how many."""
    reaped, resent = reaper.sweep()
    return len(reaped) + len(resent)
