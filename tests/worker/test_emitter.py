"""The emitter against a real database: in order, fenced by the run's lease, nothing left in the spool."""

from __future__ import annotations

from sqlalchemy import select

from trainforge.db.models import Job, JobEvent
from trainforge.db.session import session_scope
from trainforge.db.types import utcnow
from trainforge.jobs.fence import Fence
from trainforge.rundir import RunDir
from worker.emitter import Emitter, EventItem


def _stored(job_id: str) -> list[tuple[int, str, str | None]]:
    with session_scope() as s:
        rows = s.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq))
        return [(e.seq, e.type, e.dedupe_key) for e in rows]


def test_events_are_written_in_order_under_the_runs_fence(make_job, settings_env) -> None:
    job_id = make_job(status="running", lease_owner="me", attempt=1, heartbeat_at=utcnow())
    spool = RunDir.of(settings_env.artifacts_dir, job_id).spool(1)
    emitter = Emitter(job_id, Fence("me", 1), spool)
    for epoch in (1, 2, 3):
        emitter.event(
            EventItem("on_fit_epoch_end", {"epoch": epoch}, f"on_fit_epoch_end:{epoch}", {"epoch": epoch})
        )
    emitter.event(EventItem("on_fit_epoch_end", {"epoch": 3}, "on_fit_epoch_end:3"))  # again: stored once
    emitter.progress({"batch": 7})
    emitter.close()
    assert [key for _, _, key in _stored(job_id)] == [f"on_fit_epoch_end:{n}" for n in (1, 2, 3)]
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert (job.epoch, job.progress) == (3, {"batch": 7})
    assert not spool.exists() and emitter.pending() == 0


def test_a_run_that_lost_its_lease_writes_nothing_more(make_job, settings_env) -> None:
    job_id = make_job(status="running", lease_owner="new-owner", attempt=2, heartbeat_at=utcnow())
    spool = RunDir.of(settings_env.artifacts_dir, job_id).spool(1)
    emitter = Emitter(job_id, Fence("old-owner", 1), spool)
    emitter.event(EventItem("on_fit_epoch_end", {"epoch": 4}, "on_fit_epoch_end:4", {"epoch": 4}))
    emitter.event(EventItem("on_model_save", {"epoch": 4}, "on_model_save:4"))
    emitter.progress({"batch": 1})
    emitter.close()
    assert emitter.fenced
    assert _stored(job_id) == []
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert (job.epoch, job.progress, job.event_seq) == (None, None, 0)
    assert not spool.exists()
