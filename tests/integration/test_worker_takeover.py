"""Workers as real processes: a killed worker's job is taken over, and the worker never loads torch."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from trainforge import queue
from trainforge.db.models import Job, JobEvent
from trainforge.db.session import session_scope

pytestmark = pytest.mark.integration

TICK = "tests.worker.trainers:TickTrainer"


def job_row(job_id: str) -> Job:
    """Return the job as stored now."""
    with session_scope() as s:
        return s.execute(select(Job).where(Job.id == job_id)).scalar_one()


def events(job_id: str) -> list[JobEvent]:
    """Return the job's events in seq order."""
    with session_scope() as s:
        return list(s.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq)))


def wait_for(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    """Poll until `predicate()` is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def submit(make_job, **fields) -> str:
    """Insert a queued job and send run_job for it (what POST /v1/jobs does)."""
    job_id = make_job(**fields)
    queue.send(queue.RUN_JOB, [job_id], queue=queue.JOBS_QUEUE)
    return job_id


def test_killed_worker_is_taken_over_and_every_epoch_event_is_stored_once(settings_env, make_job, workers):
    while len(workers.running_jobs_workers()) < 2:
        workers.start_jobs_worker().wait_ready()
    job_id = submit(make_job, trainer_ref=TICK, overrides={"epochs": 6, "batches": 4, "batch_s": 0.1})
    wait_for(lambda: any(e.type == "on_fit_epoch_end" for e in events(job_id)), what="the first epoch")
    owner = job_row(job_id).lease_owner
    victim = workers.worker_of_pid(int(owner.split(":")[1]))
    victim.kill()
    wait_for(lambda: job_row(job_id).status == "succeeded", timeout=90, what="the takeover to finish")
    job = job_row(job_id)
    assert job.attempt == 2
    types = [e.type for e in events(job_id)]
    assert "job.retrying" in types
    for event_type in ("on_train_epoch_end", "on_fit_epoch_end", "on_model_save"):
        epochs = sorted(e.data["epoch"] for e in events(job_id) if e.type == event_type)
        assert epochs == [1, 2, 3, 4, 5, 6], event_type
    seqs = [e.seq for e in events(job_id)]
    assert seqs == list(range(1, len(seqs) + 1))


def test_worker_processes_never_load_torch(settings_env, make_job, workers):
    job_id = submit(make_job, trainer_ref=TICK, overrides={"epochs": 1, "batches": 1})
    wait_for(lambda: job_row(job_id).status == "succeeded", what="the job")
    worker = workers.jobs_workers[0]
    for pid in [worker.pid, *worker.descendants()]:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue  # exited meanwhile
        if b"worker.zygote" in cmdline:
            continue  # the fork server is where torch lives
        assert "libtorch" not in maps and "libcuda" not in maps, cmdline


def test_worker_shutdown_stops_training_at_a_batch_boundary_and_requeues(settings_env, make_job, workers):
    while len(workers.running_jobs_workers()) < 2:
        workers.start_jobs_worker().wait_ready()
    job_id = submit(make_job, trainer_ref=TICK, overrides={"epochs": 6, "batches": 4, "batch_s": 0.1})
    wait_for(lambda: any(e.type == "on_fit_epoch_end" for e in events(job_id)), what="the first epoch")
    owner = job_row(job_id).lease_owner
    leaving = workers.worker_of_pid(int(owner.split(":")[1]))
    leaving.stop(timeout=30)  # SIGTERM: Celery's warm shutdown
    wait_for(
        lambda: job_row(job_id).status == "succeeded",
        timeout=90,
        what=f"the other worker to finish: {job_row(job_id).status} {[e.type for e in events(job_id)][-5:]}"
        f"\n{leaving.log()[-4000:]}",
    )
    types = [e.type for e in events(job_id)]
    assert types.count("job.retrying") == 1
    retrying = next(e for e in events(job_id) if e.type == "job.retrying")
    assert retrying.data["stop_reason"] == "signal"
    assert (settings_env.artifacts_dir / job_id / "weights" / "last.pt").is_file()
    assert job_row(job_id).attempt == 2
