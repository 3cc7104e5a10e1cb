"""Workers as real processes: a killed worker's job is taken over, and the worker never loads torch."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from shared_helpers import TINY_CLASSIFY
from sqlalchemy import select

from trainforge import queue
from trainforge.db.models import Job, JobEvent
from trainforge.db.session import session_scope

pytestmark = pytest.mark.integration

TICK = "tests.worker.trainers:TickTrainer"
SLOW = "tests.integration.trainers:SlowTrainer"  # the real engine, a little slowed down


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


def fit_epochs(job_id: str) -> list[int]:
    """Return the epochs of the job's on_fit_epoch_end events, in seq order."""
    return [e.data["epoch"] for e in events(job_id) if e.type == "on_fit_epoch_end"]


def first_epoch_of(job_id: str, attempt: int) -> int:
    """Return the epoch attempt `attempt` trained first (1, or the one after its checkpoint)."""
    starts = {e.dedupe_key: e.data["first_epoch"] for e in events(job_id) if e.type == "on_train_start"}
    return int(starts[f"on_train_start:attempt-{attempt}"])


def take_over(make_job, workers, trainer_ref: str, overrides: dict, epochs: int) -> None:
    """Kill the worker of a job after its first epoch; check the next resumed after the checkpoint."""
    while len(workers.running_jobs_workers()) < 2:
        workers.start_jobs_worker().wait_ready()
    job_id = submit(make_job, trainer_ref=trainer_ref, overrides={**overrides, "epochs": epochs})
    wait_for(lambda: fit_epochs(job_id), timeout=120, what="the first epoch")
    owner = job_row(job_id).lease_owner
    victim = workers.worker_of_pid(int(owner.split(":")[1]))
    seen = max(fit_epochs(job_id))
    victim.kill()
    wait_for(lambda: job_row(job_id).status == "succeeded", timeout=180, what="the takeover to finish")
    job = job_row(job_id)
    assert job.attempt == 2
    # Resumed from last.pt: the checkpoint holds `seen` epochs, or one more saved before the kill landed.
    assert first_epoch_of(job_id, 1) == 1
    assert first_epoch_of(job_id, 2) in {seen + 1, seen + 2}
    types = [e.type for e in events(job_id)]
    assert "job.retrying" in types
    for event_type in ("on_train_epoch_end", "on_fit_epoch_end", "on_model_save"):
        found = sorted(e.data["epoch"] for e in events(job_id) if e.type == event_type)
        assert found == list(range(1, epochs + 1)), event_type
    seqs = [e.seq for e in events(job_id)]
    assert seqs == list(range(1, len(seqs) + 1))


def test_killed_worker_is_taken_over_and_every_epoch_event_is_stored_once(settings_env, make_job, workers):
    take_over(make_job, workers, TICK, {"batches": 4, "batch_s": 0.1}, epochs=6)


def test_the_real_engine_resumes_a_taken_over_job_after_its_checkpoint(settings_env, make_job, workers):
    take_over(make_job, workers, SLOW, TINY_CLASSIFY, epochs=4)


def test_a_job_whose_message_was_lost_is_run_once_by_the_periodic_resend(settings_env, make_job, workers):
    # POSTed while Redis was down: the row is committed, no run_job message exists.
    lost = make_job(trainer_ref=TICK, overrides={"epochs": 1, "batches": 1})
    # Sent twice (a resend raced a slow delivery): only one run may take it.
    twice = submit(make_job, trainer_ref=TICK, overrides={"epochs": 1, "batches": 1})
    queue.send(queue.RUN_JOB, [twice], queue=queue.JOBS_QUEUE)
    for job_id in (lost, twice):
        wait_for(lambda job_id=job_id: job_row(job_id).status == "succeeded", timeout=90, what="the job")
        assert job_row(job_id).attempt == 1
        assert [e.type for e in events(job_id)].count("job.started") == 1


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
    wait_for(lambda: fit_epochs(job_id), what="the first epoch")
    owner = job_row(job_id).lease_owner
    leaving = workers.worker_of_pid(int(owner.split(":")[1]))
    seen = max(fit_epochs(job_id))
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
    # The stop cut the epoch in progress; the next attempt trained it again, and nothing before it.
    assert first_epoch_of(job_id, 2) in {seen + 1, seen + 2}
    assert sorted(fit_epochs(job_id)) == [1, 2, 3, 4, 5, 6]
