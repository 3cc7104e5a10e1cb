"""Celery tasks of the worker: thin wrappers that take ids and call the supervisor or the reaper."""

from __future__ import annotations

from celery import Task

from trainforge import queue
from trainforge.settings import get_settings
from worker import lifecycle, reaper
from worker.celery_app import app
from worker.registration import placement_enabled
from worker.supervisor import Supervisor


@app.task(name=queue.RUN_JOB, bind=True, acks_late=False, ignore_result=True)
def run_job(self: Task, job_id: str | None = None) -> str:
    """Run the job placement gives this worker to its end (`job_id`: the job the message was sent for).

    Acknowledged on receipt: the lease, not the broker, guards the run.
    """
    worker_id = self.request.hostname if placement_enabled() else None
    return Supervisor(job_id, worker_id=worker_id, parent_pid=lifecycle.pool_parent_pid()).run()


@app.task(name=queue.REAP_JOBS, ignore_result=True)
def reap_jobs() -> int:
    """Re-queue jobs whose worker stopped heartbeating and re-send stuck waiting jobs; return how many."""
    reaped, resent = reaper.sweep()
    return len(reaped) + len(resent)


@app.task(name=queue.VALIDATE_DATASET, ignore_result=True)
def validate_dataset(dataset_id: str) -> str:
    """Unpack and check an uploaded dataset; record ready or invalid with its report."""
    from worker import validation  # the engine's readers load torch: only in the process that validates

    return validation.validate_dataset(dataset_id, get_settings())


@app.task(name=queue.VALIDATE_MODEL, ignore_result=True)
def validate_model(model_id: str) -> str:
    """Check that an uploaded model loads safely; record ready or invalid."""
    from worker import validation

    return validation.validate_model(model_id, get_settings())
