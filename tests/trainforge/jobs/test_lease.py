"""Leases: one worker takes a job, heartbeats report cancel, stale leases are reaped and re-sent."""

from __future__ import annotations

from datetime import timedelta

from trainforge import events
from trainforge.db.models import Job
from trainforge.db.session import session_scope
from trainforge.db.types import utcnow
from trainforge.jobs.lease import heartbeat, reap_stale, release_lease, take_lease


def _job(job_id: str) -> Job:
    with session_scope() as s:
        return s.get(Job, job_id)


def _types(job_id: str) -> list[str]:
    with session_scope() as s:
        return [e.type for e in events.list_events(s, job_id)]


def test_take_heartbeat_release(make_job) -> None:
    job_id = make_job()
    with session_scope() as s:
        assert take_lease(s, job_id, "w1")
        assert not take_lease(s, job_id, "w2")
    job = _job(job_id)
    assert (job.status, job.lease_owner, job.attempt) == ("running", "w1", 1)
    assert job.heartbeat_at is not None and utcnow() - job.heartbeat_at < timedelta(seconds=60)
    with session_scope() as s:
        assert heartbeat(s, job_id, "w1") == "running"
        assert heartbeat(s, job_id, "w2") is None
        assert release_lease(s, job_id, "w1", "succeeded")
    job = _job(job_id)
    assert (job.status, job.lease_owner) == ("succeeded", None)
    assert _types(job_id) == ["job.started", "job.succeeded"]


def test_heartbeat_reports_cancelling(make_job) -> None:
    job_id = make_job(status="running", lease_owner="w1", heartbeat_at=utcnow())
    with session_scope() as s:
        s.get(Job, job_id).status = "cancelling"
    with session_scope() as s:
        assert heartbeat(s, job_id, "w1") == "cancelling"
        assert release_lease(s, job_id, "w1", "cancelled")
    assert _job(job_id).status == "cancelled"


def test_reaper_requeues_stale_and_keeps_fresh(make_job) -> None:
    stale = make_job(
        status="running", lease_owner="dead", heartbeat_at=utcnow() - timedelta(minutes=5), attempt=1
    )
    fresh = make_job(status="running", lease_owner="alive", heartbeat_at=utcnow(), attempt=1)
    exhausted = make_job(
        status="running", lease_owner="dead", heartbeat_at=utcnow() - timedelta(minutes=5), attempt=3
    )
    stopping = make_job(status="cancelling", lease_owner="dead", heartbeat_at=utcnow() - timedelta(minutes=5))
    with session_scope() as s:
        reaped = {r.job_id: r.status.value for r in reap_stale(s, lease_timeout_s=60, max_attempts=3)}
    assert reaped.get(stale) == "retrying"
    assert reaped.get(exhausted) == "failed"
    assert reaped.get(stopping) == "cancelled"
    assert fresh not in reaped
    assert _job(stale).lease_owner is None
    assert "ran 3 times" in _job(exhausted).error
    with session_scope() as s:  # the old owner cannot finish a job that was taken from it
        assert not release_lease(s, stale, "dead", "succeeded")
        assert take_lease(s, stale, "w2")
    assert _job(stale).attempt == 2
    assert _types(stale) == ["job.retrying", "job.started"]


def test_resend_waiting_requeues_old_queued_jobs_once(make_job, redis_url) -> None:
    import redis

    from trainforge.jobs.lease import resend_waiting

    old = make_job(
        updated_at=utcnow() - timedelta(minutes=10), resources={"queue": "tf-test-resend", "gpus": 0}
    )
    make_job(resources={"queue": "tf-test-resend", "gpus": 0})  # fresh: left alone
    client = redis.Redis.from_url(redis_url)
    client.delete("tf-test-resend")
    with session_scope() as s:
        assert resend_waiting(s, older_than_s=60) == [old]
    with session_scope() as s:
        assert resend_waiting(s, older_than_s=60) == []
    assert client.llen("tf-test-resend") == 1  # the Celery message is in the job's queue
    client.delete("tf-test-resend")


def _skew(monkeypatch, seconds: float) -> None:
    """Play a host whose clock is `seconds` off."""
    from trainforge.settings import get_settings

    monkeypatch.setenv("TRAINFORGE_CLOCK_SKEW_S", str(seconds))
    get_settings.cache_clear()


def test_lease_times_come_from_the_database_not_the_host(make_job, monkeypatch) -> None:
    from datetime import UTC, datetime

    job_id = make_job()
    _skew(monkeypatch, -300)  # this worker's clock is five minutes behind
    assert utcnow() < datetime.now(UTC) - timedelta(minutes=4)
    with session_scope() as s:
        assert take_lease(s, job_id, "slow-clock")
    with session_scope() as s:
        assert heartbeat(s, job_id, "slow-clock") == "running"
    assert abs(_job(job_id).heartbeat_at - datetime.now(UTC)) < timedelta(seconds=30)
    _skew(monkeypatch, 300)  # the reaper's clock is five minutes ahead
    with session_scope() as s:
        assert reap_stale(s, lease_timeout_s=60, max_attempts=3) == []
    _skew(monkeypatch, 0)
    assert _job(job_id).status == "running"


def test_a_stale_runs_writes_are_refused_not_merged(make_job) -> None:
    import pytest

    from trainforge.jobs import repository
    from trainforge.jobs.fence import Fence, LeaseLostError

    job_id = make_job(status="running", lease_owner="old", attempt=1, heartbeat_at=utcnow())
    old = Fence("old", 1)
    with session_scope() as s:
        events.emit(s, job_id, "on_fit_epoch_end", {"epoch": 1}, dedupe_key="on_fit_epoch_end:1", fence=old)
        repository.record_progress(s, job_id, epoch=1, fence=old)
    with session_scope() as s:  # the reaper hands the job on; another worker takes it
        assert reap_stale(s, lease_timeout_s=-1, max_attempts=3)
    with session_scope() as s:
        assert take_lease(s, job_id, "new")
    for write in (
        lambda s: events.emit(s, job_id, "on_fit_epoch_end", {"epoch": 2}, dedupe_key="x", fence=old),
        lambda s: repository.record_progress(s, job_id, epoch=2, fence=old),
        lambda s: events.emit(s, job_id, "tick", fence=Fence("new", 1)),  # right owner, wrong attempt
    ):
        with pytest.raises(LeaseLostError, match="is no longer leased"), session_scope() as s:
            write(s)
    with session_scope() as s:
        assert not release_lease(s, job_id, "new", "succeeded", attempt=1)
    job = _job(job_id)
    assert (job.epoch, job.attempt, job.lease_owner, job.event_seq) == (1, 2, "new", 3)
    assert _types(job_id) == ["on_fit_epoch_end", "job.retrying", "job.started"]
