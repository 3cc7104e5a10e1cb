"""The training child with the real engine: a run taken over after its last epoch was saved."""

from __future__ import annotations

import pytest
from shared_helpers import TINY_CLASSIFY
from sqlalchemy import select

from trainforge.db.models import Job, JobEvent
from trainforge.db.session import session_scope
from trainforge.rundir import RunDir
from worker.supervisor import Supervisor

classify = pytest.importorskip("trainer_engine.models.classify")

CLASSIFY = "trainer_engine.models.classify:ClassificationTrainer"
TINY_EPOCH = {**TINY_CLASSIFY, "epochs": 1}


def test_a_taken_over_job_whose_every_epoch_was_saved_finishes(env, make_job):
    job_id = make_job(trainer_ref=CLASSIFY, overrides=TINY_EPOCH, status="retrying", attempt=1)
    run_dir = RunDir.of(env.artifacts_dir, job_id)
    # What the first worker left: every epoch trained and saved, then it died before recording success.
    classify.ClassificationTrainer(overrides={**TINY_EPOCH, **run_dir.trainer_overrides()}).train()
    assert run_dir.last.is_file()
    assert Supervisor(job_id).run() == "succeeded"
    with session_scope() as s:
        job = s.execute(select(Job).where(Job.id == job_id)).scalar_one()
        events = list(s.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq)))
    assert (job.status, job.epoch, job.epochs, job.attempt, job.error) == ("succeeded", 1, 1, 2, None)
    assert (job.last_path, job.best_path) == ("weights/last.pt", "weights/best.pt")
    assert job.metrics and "fitness" not in job.metrics
    fit = [e for e in events if e.type == "on_fit_epoch_end"]
    assert [(e.data["epoch"], e.dedupe_key) for e in fit] == [(1, "on_fit_epoch_end:1")]
    assert fit[0].data["resumed_from_checkpoint"] is True
    assert [e.type for e in events][-1] == "job.succeeded"


def test_a_run_whose_lease_moved_on_stops_before_writing_its_epochs_files(env, make_job):
    from trainforge.db.types import utcnow
    from trainforge.jobs.fence import Fence, LeaseLostError
    from worker.bridge import EventBridge
    from worker.emitter import Emitter

    # Attempt 2 holds the job; this is attempt 1, woken after it was taken over (its files are shared).
    job_id = make_job(trainer_ref=CLASSIFY, status="running", lease_owner="attempt-2", attempt=2,
                      heartbeat_at=utcnow())  # fmt: skip
    run_dir = RunDir.of(env.artifacts_dir, job_id)
    emitter = Emitter(job_id, Fence("attempt-1", 1), run_dir.spool(1))
    trainer = classify.ClassificationTrainer(overrides={**TINY_EPOCH, **run_dir.trainer_overrides()})
    EventBridge(emitter, run_dir, attempt=1).attach(trainer)
    with pytest.raises(LeaseLostError, match="passed to another attempt"):
        trainer.train()
    emitter.close()
    assert emitter.fenced
    assert not run_dir.last.exists() and not run_dir.best.exists() and not run_dir.results.exists()
    with session_scope() as s:
        assert s.scalars(select(JobEvent).where(JobEvent.job_id == job_id)).first() is None
