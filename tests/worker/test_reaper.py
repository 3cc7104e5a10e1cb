"""The reaper as a starting worker runs it: stale leases reaped, every waiting job's run_job re-sent once."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import redis

from trainforge.db.models import Job
from trainforge.db.session import session_scope
from trainforge.db.types import utcnow
from worker import reaper


@pytest.fixture
def queues(redis_url):
    """Return a function that gives a job its own queue; the queues are emptied afterwards."""
    client = redis.Redis.from_url(redis_url)
    names: list[str] = []

    def make() -> dict[str, object]:
        names.append(f"tf-test-reaper-{uuid.uuid4().hex[:8]}")
        return {"queue": names[-1], "gpus": 0}

    yield make, client
    if names:
        client.delete(*names)


def test_startup_resends_every_waiting_job_and_nothing_else(make_job, queues) -> None:
    make, client = queues
    queued = make_job(resources=make())  # just submitted: its message may be lost as well
    retrying = make_job(status="retrying", attempt=1, resources=make())
    running = make_job(status="running", lease_owner="w", heartbeat_at=utcnow(), resources=make())
    resent = reaper.resend_waiting()
    assert {queued, retrying} <= set(resent) and running not in resent
    lengths = {}
    with session_scope() as s:
        for job_id in (queued, retrying, running):
            lengths[job_id] = client.llen(s.get(Job, job_id).resources["queue"])
    assert lengths == {queued: 1, retrying: 1, running: 0}


def test_startup_reaps_a_stale_lease_and_resends_the_job(make_job, queues, settings_env) -> None:
    make, client = queues
    resources = make()
    stale = make_job(
        status="running", lease_owner="dead", heartbeat_at=utcnow() - timedelta(hours=1), resources=resources
    )
    assert stale in [r.job_id for r in reaper.reap()]
    with session_scope() as s:
        assert s.get(Job, stale).status == "retrying"
    assert client.llen(resources["queue"]) == 1


def test_the_periodic_reap_task_resends_jobs_waiting_without_a_message_once_per_period(
    make_job, queues, settings_env, monkeypatch
) -> None:
    from trainforge.settings import get_settings
    from worker.tasks import reap_jobs

    monkeypatch.setenv("TRAINFORGE_RESEND_WAITING_AFTER_S", "30")
    get_settings.cache_clear()
    make, client = queues
    lost = make_job(
        resources=make(), updated_at=utcnow() - timedelta(minutes=2)
    )  # POSTed while Redis was down
    fresh = make_job(resources=make())  # its message is still on its way
    held = make_job(
        status="running",
        lease_owner="w",
        heartbeat_at=utcnow(),
        resources=make(),
        updated_at=utcnow() - timedelta(hours=1),
    )
    assert reap_jobs() >= 1  # what the beat schedule runs every reap_interval_s
    assert reaper.resend_stuck() == []  # re-sent jobs wait a whole period again
    with session_scope() as s:
        lengths = {j: client.llen(s.get(Job, j).resources["queue"]) for j in (lost, fresh, held)}
    assert lengths == {lost: 1, fresh: 0, held: 0}


def test_the_beat_schedule_runs_the_reap_task() -> None:
    from worker.celery_app import app

    schedule = app.conf.beat_schedule
    assert {entry["task"] for entry in schedule.values()} >= {"trainforge.reap_jobs"}


def test_reaping_a_run_sends_the_job_its_tenants_running_limit_held(make_job, queues, settings_env) -> None:
    from trainforge.auth import get_or_create_tenant
    from trainforge.tenant_limits import set_limits

    make, client = queues
    tenant = f"held-{uuid.uuid4().hex[:8]}"
    with session_scope() as s:
        set_limits(s, get_or_create_tenant(s, tenant).id, {"max_running_jobs": 1})
    stale_at = utcnow() - timedelta(hours=1)
    make_job(
        tenant=tenant,
        status="running",
        lease_owner="dead",
        heartbeat_at=stale_at,
        attempt=3,
        resources=make(),
    )
    held = make_job(tenant=tenant, resources=make())
    reaped = reaper.reap(settings_env)
    assert [r.status.value for r in reaped] == ["failed"]  # past max_attempts: its slot is free now
    with session_scope() as s:
        assert client.llen(s.get(Job, held).resources["queue"]) == 1
