"""The Idempotency-Key race: requests that lose it answer with the winner's job and keep their own work.

Every request first finds no job for the key, so all but one take the losing path (the unique
constraint refuses their INSERT) whatever the thread timing. Each request has also registered work
to run after its commit before it creates the job: losing the race must not drop it.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from trainforge.auth import resolve_token
from trainforge.db.models import Job
from trainforge.db.session import after_commit, session_scope
from trainforge.jobs import repository, service
from trainforge.pubsub import get_redis, reset_clients
from trainforge.schemas import JobCreate
from trainforge.vocab import JOBS_QUEUE

BODY = {"trainer": "classify", "overrides": {"data": "synthetic:classify", "epochs": 1, "imgsz": 32}}
REQUESTS = 4


@pytest.fixture
def blind_first_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make each thread's first Idempotency-Key lookup miss, as when all requests arrive at once."""
    real = repository.get_by_idempotency_key
    looked = threading.local()

    def lookup(*args: Any) -> Job | None:
        if not getattr(looked, "once", False):
            looked.once = True
            return None
        return real(*args)

    monkeypatch.setattr(repository, "get_by_idempotency_key", lookup)


def test_racing_posts_make_one_job_send_one_run_job_and_keep_their_after_commit_work(
    settings_env, make_token, blind_first_lookup
) -> None:
    reset_clients()
    redis = get_redis(settings_env.redis_url)
    redis.delete(JOBS_QUEUE)
    token = make_token()
    with session_scope() as s:
        tenant_id = resolve_token(s, token).tenant_id
    barrier = threading.Barrier(REQUESTS)
    ids: list[str] = []
    created: list[bool] = []
    committed: list[int] = []
    errors: list[BaseException] = []

    def post(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            with session_scope() as s:
                after_commit(s, lambda: committed.append(n))  # work the request did before the job
                result = service.create_job(
                    s, tenant_id, JobCreate(**BODY), settings_env, idempotency_key="race"
                )
                ids.append(result.job.id)
                created.append(result.created)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(REQUESTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(ids) == REQUESTS and len(set(ids)) == 1
    assert sorted(created) == [False] * (REQUESTS - 1) + [True]
    assert sorted(committed) == list(range(REQUESTS))
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.tenant_id == tenant_id)) == 1
    assert redis.llen(JOBS_QUEUE) == 1
    redis.delete(JOBS_QUEUE)


def test_jobs_created_in_one_transaction_send_nothing_before_it_commits(settings_env, make_token) -> None:
    reset_clients()
    redis = get_redis(settings_env.redis_url)
    redis.delete(JOBS_QUEUE)
    with session_scope() as s:
        tenant_id = resolve_token(s, make_token()).tenant_id
    with session_scope() as s:
        for _ in range(3):  # each insert is a savepoint: releasing one must not send the others' run_job
            service.create_job(s, tenant_id, JobCreate(**BODY), settings_env)
        assert redis.llen(JOBS_QUEUE) == 0  # a worker would find no such job yet
    assert redis.llen(JOBS_QUEUE) == 3
    redis.delete(JOBS_QUEUE)
