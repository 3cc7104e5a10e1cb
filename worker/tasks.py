"""Celery tasks of the worker: thin wrappers that take ids and call the supervisor or the reaper."""

from __future__ import annotations

from celery import Task

from trainforge import queue
from trainforge.settings import get_settings
from trainforge.vocab import TERMINAL
from worker import lifecycle, reaper
from worker.celery_app import app
from worker.registration import placement_enabled
from worker.supervisor import Supervisor, orphaned

# Runs one run_job task may chain on a registered worker before it hands its slot back to Celery.
MAX_RUNS_PER_TASK = 50


@app.task(name=queue.RUN_JOB, bind=True, acks_late=False, ignore_result=True)
def run_job(self: Task, job_id: str | None = None) -> str:
    """Run the job placement gives this worker to its end (`job_id`: the job the message was sent for).

    On a registered worker the slot then takes the next job placement names at once, without
    waiting for another message: the message is only a wake-up, and a slot that just freed is the
    one that should run the best waiting job. Only a run that ended (succeeded, failed, cancelled)
    goes on: one stopped from outside, a lost lease or nothing to run gives the slot back, and a
    stopping worker deregisters first (lifecycle), so no slot takes a job once it stops.
    Acknowledged on receipt: the lease, not the broker, guards the run.
    """
    worker_id = self.request.hostname if placement_enabled() else None
    parent_pid = lifecycle.pool_parent_pid()
    status = Supervisor(job_id, worker_id=worker_id, parent_pid=parent_pid).run()
    runs = 1
    while (
        worker_id is not None and status in TERMINAL and runs < MAX_RUNS_PER_TASK and not orphaned(parent_pid)
    ):
        status = Supervisor(None, worker_id=worker_id, parent_pid=parent_pid).run()
        runs += 1
    return status


@app.task(name=queue.REAP_JOBS, ignore_result=True)
def reap_jobs() -> int:
    """Re-queue stale jobs, re-send stuck ones, sweep stalled uploads and lost validations; count them."""
    reaped, resent = reaper.sweep()
    removed, revalidated = reaper.sweep_uploads()
    return len(reaped) + len(resent) + len(removed) + len(revalidated)


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
