"""The run_job supervisor: how it reads a run's end, and whole runs with real databases, Redis and children.

The verdict tests are pure (exit code + outcome file + why the supervisor stopped the child). The
run tests start real children running a torch-free trainer (tests/worker/trainers.py) as fresh
interpreters, so each run takes about a second; end-to-end runs of the real engine through Celery
are in tests/integration.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from sqlalchemy import select

from trainforge.db.models import Job, JobEvent
from trainforge.db.session import session_scope
from trainforge.jobs import service
from trainforge.rundir import RunDir
from trainforge.settings import Settings
from trainforge.vocab import JobStatus
from worker.launcher import UNKNOWN_EXIT
from worker.outcome import Outcome
from worker.runspec import RunSpec
from worker.supervisor import CANCEL, TIME, Supervisor, decide, describe_exit, refuse_trainer, time_limit_s

TICK = "tests.worker.trainers:TickTrainer"

S = JobStatus
DONE = Outcome(ok=True, stop_reason=None)
STOPPED = Outcome(ok=True, stop_reason="signal")
EARLY = Outcome(ok=True, stop_reason="patience")
CRASHED = Outcome(ok=False, error="ValueError: bad data")
NOTHING = Outcome()


@pytest.mark.parametrize(
    ("code", "outcome", "reason", "status", "error"),
    [
        (0, DONE, None, S.SUCCEEDED, None),
        (0, EARLY, None, S.SUCCEEDED, None),
        (1, CRASHED, None, S.FAILED, "ValueError: bad data"),
        (-signal.SIGKILL, NOTHING, None, S.FAILED, "killed by SIGKILL (out of memory?)"),
        (-signal.SIGSEGV, NOTHING, None, S.FAILED, "killed by SIGSEGV"),
        (3, NOTHING, None, S.FAILED, "exited with code 3"),
        (UNKNOWN_EXIT, NOTHING, None, S.FAILED, "without reporting an exit status"),
        (UNKNOWN_EXIT, DONE, None, S.SUCCEEDED, None),
        # stopped by a signal nobody here sent: the worker is shutting down, resume elsewhere
        (0, STOPPED, None, S.RETRYING, None),
        (-signal.SIGTERM, NOTHING, None, S.RETRYING, None),
        (0, STOPPED, CANCEL, S.CANCELLED, None),
        (-signal.SIGKILL, NOTHING, CANCEL, S.CANCELLED, None),
        (-signal.SIGTERM, NOTHING, CANCEL, S.CANCELLED, None),
        (0, DONE, CANCEL, S.SUCCEEDED, None),  # finished before it noticed the cancel
        (0, STOPPED, TIME, S.FAILED, "time limit of 2 s"),
        (-signal.SIGKILL, NOTHING, TIME, S.FAILED, "ran past its time limit"),
        (0, DONE, TIME, S.SUCCEEDED, None),
    ],
)
def test_verdicts(code, outcome, reason, status, error):
    verdict = decide(code, outcome, reason, limit_s=2.0)
    assert verdict.status is status
    if error is None:
        assert verdict.error is None
    else:
        assert error in verdict.error


def test_describe_exit_names_the_signal():
    assert describe_exit(-signal.SIGTERM) == "the training process was killed by SIGTERM"


@pytest.mark.parametrize(
    ("overrides", "operator_limit", "expected"),
    [
        ({}, None, None),
        ({"time": 0}, None, None),
        ({"time": 1.0}, None, 3600 * 1.1 + 60),
        ({}, 600.0, 600.0),
        ({"time": 1.0}, 600.0, 600.0),
        ({"time": 0.01}, 600.0, 0.01 * 3600 * 1.1 + 60),
    ],
)
def test_time_limit_is_the_lower_of_the_trainers_budget_and_the_operators(
    overrides, operator_limit, expected
):
    assert time_limit_s(overrides, operator_limit) == expected


def test_time_limit_and_stop_grace_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("TRAINFORGE_JOB_TIME_LIMIT_S", "7200")
    monkeypatch.setenv("TRAINFORGE_STOP_GRACE_S", "5")
    settings = Settings()
    assert (settings.job_time_limit_s, settings.stop_grace_s) == (7200.0, 5.0)
    assert Settings.model_fields["stop_grace_s"].default == 30.0


@pytest.mark.parametrize(
    ("ref", "allowed", "refused"),
    [
        ("trainer_engine.models.classify:ClassificationTrainer", [], False),
        ("tests.worker.trainers:TickTrainer", ["tests."], False),
        ("tests.worker.trainers:TickTrainer", ["mypkg"], True),
        ("testsuite.x:T", ["tests"], True),
    ],
)
def test_a_trainer_outside_the_allowed_modules_is_refused(ref, allowed, refused):
    reason = refuse_trainer(ref, allowed)
    assert (reason is not None) == refused
    if refused:
        assert "is no longer allowed (see TRAINFORGE_TRAINER_MODULES)" in reason


# --- whole runs ---------------------------------------------------------------------------------


def job_row(job_id: str) -> Job:
    """Return the job as stored now."""
    with session_scope() as s:
        return s.execute(select(Job).where(Job.id == job_id)).scalar_one()


def _events(job_id: str) -> list[JobEvent]:
    """Return the job's events in seq order."""
    with session_scope() as s:
        return list(s.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq)))


def event_types(job_id: str) -> list[str]:
    """Return the job's event types in seq order."""
    return [e.type for e in _events(job_id)]


def in_background(supervisor: Supervisor) -> tuple[threading.Thread, list[str]]:
    """Run the supervisor in a thread; the list receives its result."""
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(supervisor.run()), daemon=True)
    thread.start()
    return thread, result


def wait_for(predicate, timeout: float = 20.0) -> None:
    """Poll until `predicate()` is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_run_succeeds_and_records_events_progress_and_log(env, make_job):
    job_id = make_job(trainer_ref=TICK, overrides={"epochs": 2, "batches": 3, "batch_s": 0.2})
    assert Supervisor(job_id).run() == "succeeded"
    job = job_row(job_id)
    assert (job.status, job.epoch, job.epochs, job.attempt) == ("succeeded", 2, 2, 1)
    assert job.best_path == "weights/best.pt" and job.last_path == "weights/last.pt"
    assert job.metrics == {"metrics/accuracy_top1": 1.0}
    assert job.progress["batches"] == 3
    assert job.lease_owner is None
    types = event_types(job_id)
    assert types[0] == "job.started" and types[-1] == "job.succeeded"
    assert types.count("on_fit_epoch_end") == 2 and types.count("on_train_epoch_end") == 2
    assert "on_train_batch_end" not in types
    log = RunDir.of(env.artifacts_dir, job_id).log.read_text()
    assert TICK in log


def test_trainer_error_fails_the_job_with_its_message_and_logs_the_traceback(env, make_job):
    job_id = make_job(trainer_ref=TICK, overrides={"epochs": 3, "batches": 1, "fail_at_epoch": 2})
    assert Supervisor(job_id).run() == "failed"
    job = job_row(job_id)
    assert job.error == "RuntimeError: failing on purpose at epoch 2"
    assert event_types(job_id)[-1] == "job.failed"
    assert "Traceback" in (env.artifacts_dir / job_id / "train.log").read_text()


def test_the_child_trains_the_run_its_supervisor_described(env, make_job):
    job_id = make_job(trainer_ref=TICK, overrides={"epochs": 1, "batches": 1})
    supervisor = Supervisor(job_id)
    assert supervisor.run() == "succeeded"
    run = RunDir.of(env.artifacts_dir, job_id)
    spec = RunSpec.read(run.spec)  # what a fresh interpreter was handed
    assert (spec.job_id, spec.attempt, spec.lease_owner, spec.resume) == (job_id, 1, supervisor.owner, False)
    assert (spec.trainer_ref, spec.world_size, spec.run_dir) == (TICK, 1, run)
    assert spec.overrides == {**run.trainer_overrides(), "epochs": 1, "batches": 1}
    assert spec.supervisor_pid == os.getpid()


def test_a_job_with_a_checkpoint_resumes_from_it(env, make_job):
    job_id = make_job(trainer_ref=TICK, overrides={"epochs": 3, "batches": 1}, status="retrying", attempt=1)
    first = make_job(trainer_ref=TICK, overrides={"epochs": 1, "batches": 1})
    assert Supervisor(first).run() == "succeeded"  # leaves a last.pt of one epoch to move over
    run = RunDir.of(env.artifacts_dir, job_id)
    run.weights.mkdir(parents=True)
    RunDir.of(env.artifacts_dir, first).last.rename(run.last)
    assert Supervisor(job_id).run() == "succeeded"
    assert RunSpec.read(run.spec).resume is True
    assert RunSpec.read(run.spec).attempt == 2
    starts = [e for e in _events(job_id) if e.type == "on_train_epoch_start"]
    assert [e.data["epoch"] for e in starts] == [2, 3]


def test_a_trainer_no_longer_allowed_fails_without_starting_a_child(env, make_job):
    job_id = make_job(trainer_ref="elsewhere.trainers:Trainer")
    assert Supervisor(job_id).run() == "failed"
    job = job_row(job_id)
    assert (
        job.error
        == "trainer module 'elsewhere.trainers' is no longer allowed (see TRAINFORGE_TRAINER_MODULES)"
    )
    assert event_types(job_id) == ["job.started", "job.failed"]
    assert not RunDir.of(env.artifacts_dir, job_id).log.exists()


def test_unloadable_trainer_fails_with_a_clear_message(env, make_job):
    job_id = make_job(trainer_ref="tests.worker.trainers:NoSuchTrainer")
    assert Supervisor(job_id).run() == "failed"
    assert "cannot load trainer 'tests.worker.trainers:NoSuchTrainer'" in job_row(job_id).error


def test_cancel_stops_the_child_at_a_batch_boundary(env, make_job):
    job_id = make_job(trainer_ref=TICK, overrides={"epochs": 50, "batches": 5, "batch_s": 0.05})
    thread, result = in_background(Supervisor(job_id))
    wait_for(lambda: "on_fit_epoch_end" in event_types(job_id))
    with session_scope() as s:
        service.cancel_job(s, job_id)
    thread.join(60)
    assert result == ["cancelled"]
    job = job_row(job_id)
    assert job.status == "cancelled" and job.stop_reason == "signal"
    assert (env.artifacts_dir / job_id / "weights" / "last.pt").is_file()
    types = event_types(job_id)
    assert types[-1] == "job.cancelled"
    # Stopped at a batch boundary after the cancel, not at the end of training: no epoch ended after
    # the cancel was recorded but the one in progress.
    assert max(e.data["epoch"] for e in _events(job_id) if e.type == "on_fit_epoch_end") < 50
    after = types[types.index("job.cancelling") :]
    assert after.count("on_fit_epoch_end") <= 1 and "on_train_end" in after


def test_a_cancel_lands_when_redis_loses_the_notice(env, make_job, monkeypatch):
    from shared_helpers import free_port

    from trainforge.settings import get_settings

    # Nothing listens there: the cancel notice is lost, the heartbeat must read it from the database.
    monkeypatch.setenv("TRAINFORGE_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    get_settings.cache_clear()
    job_id = make_job(trainer_ref=TICK, overrides={"epochs": 50, "batches": 5, "batch_s": 0.05})
    thread, result = in_background(Supervisor(job_id))
    wait_for(lambda: "on_fit_epoch_end" in event_types(job_id))
    with session_scope() as s:
        service.cancel_job(s, job_id)
    thread.join(60)
    assert result == ["cancelled"]
    assert job_row(job_id).status == "cancelled"
    assert max(e.data["epoch"] for e in _events(job_id) if e.type == "on_fit_epoch_end") < 50


def test_time_limit_fails_the_job(env, make_job):
    job_id = make_job(trainer_ref=TICK, overrides={"epochs": 100, "batches": 5, "batch_s": 0.05})
    assert Supervisor(job_id, time_limit_s=2.0).run() == "failed"
    assert job_row(job_id).error == "the job ran past its time limit of 2 s and was stopped"


def test_child_ignoring_sigterm_is_killed_after_the_grace_period(env, make_job, caplog):
    overrides = {"epochs": 100, "batches": 5, "batch_s": 0.05, "ignore_sigterm": True}
    job_id = make_job(trainer_ref=TICK, overrides=overrides)
    with caplog.at_level("WARNING", logger="worker.supervisor"):
        thread, result = in_background(Supervisor(job_id, stop_grace_s=0.5))
        wait_for(lambda: "on_fit_epoch_end" in event_types(job_id))  # SIGTERM is ignored from here on
        with session_scope() as s:
            service.cancel_job(s, job_id)
        thread.join(60)
    assert result == ["cancelled"]
    # Killed, not finished: SIGTERM was ignored, and SIGKILL ended it after the grace period.
    assert any("sending SIGKILL" in r.getMessage() for r in caplog.records)
    assert "on_train_end" not in event_types(job_id)


def test_lost_lease_kills_the_child_and_records_nothing(env, make_job):
    job_id = make_job(trainer_ref=TICK, overrides={"epochs": 100, "batches": 5, "batch_s": 0.05})
    thread, result = in_background(Supervisor(job_id))
    wait_for(lambda: job_row(job_id).status == "running")
    with session_scope() as s:
        s.get(Job, job_id).lease_owner = "another-worker"
    thread.join(20)
    assert result == ["lease lost"]
    job = job_row(job_id)
    assert (job.status, job.lease_owner) == ("running", "another-worker")


def test_a_job_whose_lease_is_held_is_dropped(env, make_job):
    job_id = make_job(trainer_ref=TICK, status=JobStatus.RUNNING.value, lease_owner="someone")
    assert Supervisor(job_id).run() == "dropped"
    assert event_types(job_id) == []


def test_a_stop_nobody_asked_for_requeues_the_job(env, make_job):
    job_id = make_job(trainer_ref=TICK, overrides={"epochs": 100, "batches": 5, "batch_s": 0.05})
    supervisor = Supervisor(job_id)
    thread, result = in_background(supervisor)
    wait_for(lambda: "on_fit_epoch_end" in event_types(job_id))
    pid = int(job_row(job_id).lease_owner.split(":")[1])
    assert pid == os.getpid()
    # What the worker's shutdown does: SIGTERM to the child group, not via the supervisor.
    child_pgid = _child_pgid(job_id)
    os.killpg(child_pgid, signal.SIGTERM)
    thread.join(20)
    assert result == ["retrying"]
    assert event_types(job_id)[-1] == "job.retrying"


def test_a_stop_nobody_asked_for_fails_the_job_on_its_last_attempt(env, make_job):
    # Two runs were made already; TRAINFORGE_MAX_ATTEMPTS is 3, so this is the last one.
    overrides = {"epochs": 100, "batches": 5, "batch_s": 0.05}
    job_id = make_job(trainer_ref=TICK, overrides=overrides, status="retrying", attempt=2)
    thread, result = in_background(Supervisor(job_id))
    wait_for(lambda: "on_fit_epoch_end" in event_types(job_id))
    os.killpg(_child_pgid(job_id), signal.SIGTERM)
    thread.join(20)
    assert result == ["failed"]
    job = job_row(job_id)
    assert (job.status, job.attempt) == ("failed", 3)
    assert job.error == (
        "the run was stopped from outside (signal) and the job already ran 3 times"
        " (TRAINFORGE_MAX_ATTEMPTS=3)"
    )
    assert "job.retrying" not in event_types(job_id)


def test_a_trainer_that_refires_its_last_epoch_end_reports_each_epoch_once(env, make_job):
    job_id = make_job(
        trainer_ref="tests.worker.trainers:RefireTrainer", overrides={"epochs": 3, "batches": 1}
    )
    assert Supervisor(job_id).run() == "succeeded"
    fit = [e for e in _events(job_id) if e.type == "on_fit_epoch_end"]
    assert [e.data["epoch"] for e in fit] == [1, 2, 3]
    # The one kept for the last epoch is the epoch's own report, not the final evaluation's.
    assert fit[-1].data["metrics"] == {"metrics/accuracy_top1": 1.0}


def _child_pgid(job_id: str) -> int:
    """Find the training child of `job_id` among this process's children."""
    for path in os.listdir("/proc"):
        if path.isdigit():
            try:
                with open(f"/proc/{path}/cmdline", "rb") as f:
                    cmdline = f.read().split(b"\0")
            except OSError:
                continue
            if b"worker.child" in cmdline and any(job_id.encode() in arg for arg in cmdline):
                return os.getpgid(int(path))
    raise LookupError(job_id)


def test_a_multi_gpu_job_runs_under_torchrun_and_only_rank_0_emits(env, make_job):
    job_id = make_job(
        trainer_ref=TICK, overrides={"epochs": 2, "batches": 1}, resources={"queue": "jobs", "gpus": 2}
    )
    assert Supervisor(job_id).run() == "succeeded"
    run_dir = env.artifacts_dir / job_id
    assert (run_dir / "rank-0").exists() and (run_dir / "rank-1").exists()
    types = event_types(job_id)
    assert types.count("on_train_epoch_start") == 2 and types.count("on_train_start") == 1, types


def test_a_dead_rank_ends_the_whole_group_within_a_minute(env, make_job):
    overrides = {"epochs": 5, "batches": 1, "rank_dies_at_epoch": 2}
    job_id = make_job(trainer_ref=TICK, overrides=overrides, resources={"queue": "jobs", "gpus": 2})
    assert Supervisor(job_id).run() == "failed"
    ended = time.time()
    died = (env.artifacts_dir / job_id / "rank-1-died").stat().st_mtime
    # Rank 0 waits for rank 1 forever, ignoring SIGTERM as a blocked collective does: only the group's
    # end stops it.
    assert ended - died < 60
    assert job_row(job_id).error


def test_the_child_gets_resolved_references_never_the_tenant_values(env, make_job):
    job_id = make_job(trainer_ref=TICK, overrides={"epochs": 1, "batches": 1, "model": "tiny-cls"})
    assert Supervisor(job_id).run() == "succeeded"
    spec = RunSpec.read(RunDir.of(env.artifacts_dir, job_id).spec)
    assert spec.overrides["model"] == "tiny-cls.yaml"
    assert job_row(job_id).overrides["model"] == "tiny-cls"  # the job keeps what the tenant wrote


def test_a_reference_that_no_longer_resolves_fails_the_job_before_any_child(env, make_job):
    theirs = make_job(trainer_ref=TICK, status="succeeded")
    best = RunDir.of(env.artifacts_dir, theirs).best
    best.parent.mkdir(parents=True)
    best.write_bytes(b"")
    job_id = make_job(trainer_ref=TICK, overrides={"epochs": 1, "model": f"job:{theirs}/best.pt"})
    assert Supervisor(job_id).run() == "failed"
    job = job_row(job_id)
    assert job.error == (
        f"override 'model': you have no job '{theirs}'; "
        "refer to one of your jobs (`trainforge jobs` lists them)"
    )
    assert event_types(job_id) == ["job.started", "job.failed"]
    assert not RunDir.of(env.artifacts_dir, job_id).log.exists()  # no training process ever started


def test_a_registered_slot_runs_the_waiting_jobs_best_first_from_one_message(env, make_job):
    from celery.utils.nodenames import gethostname

    from trainforge.scheduling import registry
    from trainforge.scheduling.inventory import Inventory
    from worker.tasks import run_job

    queue = f"chain-{os.getpid()}-{time.monotonic_ns()}"
    worker_id = gethostname()  # the hostname an in-process (eager) task runs under
    with session_scope() as s:
        registry.register(
            s,
            registry.WorkerInfo(
                id=worker_id, hostname="test", pid=os.getpid(), queues=[queue], slots=1,
                inventory=Inventory.cpu("declared"),
            ),
        )  # fmt: skip
    fields = {"queue": queue, "resources": {"queue": queue, "gpus": 0}, "trainer_ref": TICK}
    low, high, mid = (make_job(**fields, priority=p, overrides={"epochs": 1}) for p in (0, 2, 1))
    try:
        # One message, as the first submit sent; no other: each run ends and the slot goes on.
        assert run_job.apply(kwargs={"job_id": None}).get() == "dropped"  # the backlog ran out
    finally:
        with session_scope() as s:
            registry.deregister(s, worker_id)
    rows = {job_id: job_row(job_id) for job_id in (low, high, mid)}
    assert {row.status for row in rows.values()} == {"succeeded"}
    assert sorted(rows, key=lambda j: rows[j].started_at) == [high, mid, low]
    assert {row.worker_id for row in rows.values()} == {worker_id}
