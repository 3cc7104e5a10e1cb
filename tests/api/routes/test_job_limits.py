"""Limits at submit: every bound refused with its name and the value, nothing created or queued.

Tenant limits are set in the tenant's row (what `trainforge tenant set` writes); operator limits come
from settings. The job-count limit holds under 20 concurrent POSTs to a real server.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import func, select

from trainforge.auth import get_or_create_tenant
from trainforge.db.models import Job, JobEvent, Tenant
from trainforge.db.session import session_scope
from trainforge.tenant_limits import set_limits

CLS = {
    "trainer": "classify",
    "overrides": {"data": "synthetic:classify?train=64&val=16", "epochs": 3, "imgsz": 32},
}

TENANT_LIMITS = {
    "max_epochs": 10,
    "max_imgsz": 64,
    "max_batch": 32,
    "max_time_h": 0.5,
    "max_world_size": 2,
    "max_gpus_per_job": 1,
    "max_synthetic_images": 300,
    "max_synthetic_size": 48,
    "min_save_period": 5,
}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def tenant_with_limits(make_token, **limits: Any) -> tuple[str, str]:
    """Create a tenant with `limits` on its row; return (tenant id, token)."""
    name = f"limited-{uuid.uuid4().hex[:8]}"
    token = make_token(name)
    with session_scope() as s:
        tenant_id = get_or_create_tenant(s, name).id
        set_limits(s, tenant_id, limits)
    return tenant_id, token


def jobs_and_events(tenant_id: str) -> tuple[int, int]:
    with session_scope() as s:
        jobs = s.execute(select(func.count()).select_from(Job).where(Job.tenant_id == tenant_id)).scalar()
        events = s.execute(
            select(func.count()).select_from(JobEvent).join(Job).where(Job.tenant_id == tenant_id)
        ).scalar()
    return int(jobs or 0), int(events or 0)


def with_overrides(**overrides: Any) -> dict[str, Any]:
    return {**CLS, "overrides": {**CLS["overrides"], **overrides}}


BAD = [
    (with_overrides(epochs=11), "overrides.epochs=11 is over the limit max_epochs=10; lower it"),
    (with_overrides(imgsz=128), "overrides.imgsz=128 is over the limit max_imgsz=64; lower it"),
    (
        {"trainer": "classify", "overrides": {"data": "synthetic:classify", "epochs": 3}},
        "overrides.imgsz=640 (the default) is over the limit max_imgsz=64; lower it",
    ),
    (with_overrides(batch=64), "overrides.batch=64 is over the limit max_batch=32; lower it"),
    (with_overrides(time=1), "overrides.time=1 is over the limit max_time_h=0.5; lower it"),
    (
        with_overrides(world_size=3, device="cpu"),
        "overrides.world_size=3 is over the limit max_world_size=2; lower it",
    ),
    (
        {**CLS, "resources": {"gpus": 2}},
        "resources.gpus=2 is over the limit max_gpus_per_job=1; ask for fewer",
    ),
    (
        {**CLS, "resources": {"queue": "default"}},
        "resources.queue 'default' is not a job queue you may use; use one of: jobs",
    ),
    (
        {**CLS, "resources": {"queue": "webhooks"}},
        "resources.queue 'webhooks' is not a job queue you may use; use one of: jobs",
    ),
    (
        {**CLS, "resources": {"queue": "gpu-a100"}},
        "resources.queue 'gpu-a100' is not a job queue you may use; use one of: jobs",
    ),
    (
        with_overrides(save_period=1),
        "overrides.save_period=1 is under the limit min_save_period=5; save every 5 epochs or more, "
        "or -1 for last.pt and best.pt only",
    ),
    (
        with_overrides(data="synthetic:classify?train=400"),
        "overrides.data: synthetic:classify train+val=528 images is over the limit "
        "max_synthetic_images=300; ask for fewer",
    ),
    (
        with_overrides(data="synthetic:classify?train=100&val=20&size=64"),
        "overrides.data: synthetic:classify size=64 is over the limit max_synthetic_size=48; "
        "ask for smaller images",
    ),
    (
        {"trainer": "detect", "overrides": {"data": "synthetic:shapes", "epochs": 1, "imgsz": 32}},
        "overrides.data: synthetic:shapes train+val=1200 images is over the limit "
        "max_synthetic_images=300; ask for fewer",
    ),
    (
        with_overrides(data="synthetic:classify?train=lots"),
        "overrides.data: synthetic:classify option train='lots' must be an integer",
    ),
]


@pytest.mark.parametrize(
    ("body", "message"), BAD, ids=[m.split(" ")[0] + str(i) for i, (_, m) in enumerate(BAD)]
)
def test_a_bad_value_is_refused_naming_the_bound_and_nothing_is_made(
    api_client, make_token, redis_url, body, message
) -> None:
    tenant_id, token = tenant_with_limits(make_token, **TENANT_LIMITS)
    broker = redis.Redis.from_url(redis_url)
    queued_before = broker.llen("jobs")
    r = api_client.post("/v1/jobs", json=body, headers=auth(token))
    assert (r.status_code, r.json()["detail"]) == (422, message)
    assert jobs_and_events(tenant_id) == (0, 0)
    assert broker.llen("jobs") == queued_before
    # The same request within the bounds goes through.
    ok = api_client.post("/v1/jobs", json=CLS, headers=auth(token))
    assert ok.status_code == 202, ok.text


def test_operator_defaults_bound_a_tenant_without_a_row(api_client, make_token) -> None:
    token = make_token()
    r = api_client.post("/v1/jobs", json=with_overrides(epochs=10**9), headers=auth(token))
    assert (r.status_code, r.json()["detail"]) == (
        422,
        "overrides.epochs=1000000000 is over the limit max_epochs=1000; lower it",
    )
    r = api_client.post("/v1/jobs", json=with_overrides(world_size=2000, device="cpu"), headers=auth(token))
    assert r.json()["detail"] == "overrides.world_size=2000 is over the limit max_world_size=8; lower it"


def test_a_tenant_value_replaces_the_operators_and_none_lifts_it(api_client, make_token) -> None:
    _, token = tenant_with_limits(make_token, max_epochs=None, queues=["jobs"])
    r = api_client.post("/v1/jobs", json=with_overrides(epochs=5000), headers=auth(token))
    assert r.status_code == 202, r.text


def test_a_tenant_whose_queues_all_left_the_operators_list_is_told_so(api_client, make_token) -> None:
    tenant_id, token = tenant_with_limits(make_token, queues=["gpu-retired"])
    r = api_client.post("/v1/jobs", json=CLS, headers=auth(token))
    assert (r.status_code, r.json()["detail"]) == (
        422,
        "resources.queue 'jobs': no job queue is open to you (your queues are no longer in "
        "TRAINFORGE_JOB_QUEUES); ask the operator to set yours with `trainforge tenant set`",
    )
    assert jobs_and_events(tenant_id) == (0, 0)


def test_max_queued_jobs_refuses_the_next_and_an_idempotent_retry_still_answers(
    api_client, make_token
) -> None:
    tenant_id, token = tenant_with_limits(make_token, max_queued_jobs=2)
    first = api_client.post("/v1/jobs", json=CLS, headers={**auth(token), "Idempotency-Key": "a"})
    assert api_client.post("/v1/jobs", json=CLS, headers=auth(token)).status_code == 202
    r = api_client.post("/v1/jobs", json=CLS, headers=auth(token))
    assert (r.status_code, r.json()["detail"]) == (
        422,
        "tenant limit: 2 jobs waiting (max_queued_jobs 2); wait for some to start or cancel one",
    )
    again = api_client.post("/v1/jobs", json=CLS, headers={**auth(token), "Idempotency-Key": "a"})
    assert (again.status_code, again.json()["id"]) == (202, first.json()["id"])
    assert jobs_and_events(tenant_id) == (2, 2)


def test_max_queued_jobs_holds_under_20_concurrent_posts(live_api, make_token) -> None:
    tenant_id, token = tenant_with_limits(make_token, max_queued_jobs=5)
    other_id, other_token = tenant_with_limits(make_token, max_queued_jobs=5)

    def post(tok: str) -> int:
        with httpx.Client(base_url=live_api, timeout=60) as client:
            return client.post("/v1/jobs", json=CLS, headers=auth(tok)).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(post, [token] * 20 + [other_token] * 4))
    mine, theirs = codes[:20], codes[20:]
    assert sorted(mine) == [202] * 5 + [422] * 15
    assert theirs == [202] * 4  # another tenant's submits are counted apart
    assert jobs_and_events(tenant_id) == (5, 5)
    assert jobs_and_events(other_id) == (4, 4)


# --- POST rate per token ----------------------------------------------------------------------------


def test_post_rate_per_token_is_shared_by_api_processes_and_answers_429_with_retry_after(
    api_client, live_api, make_token
) -> None:
    tenant_id, token = tenant_with_limits(make_token, post_rate_per_minute=3)
    with session_scope() as s:
        from trainforge.auth import create_token

        name = s.get(Tenant, tenant_id).name
        second_token = create_token(s, name)
    with httpx.Client(base_url=live_api, timeout=30) as other_process:
        assert api_client.post("/v1/jobs", json=CLS, headers=auth(token)).status_code == 202
        assert other_process.post("/v1/jobs", json=CLS, headers=auth(token)).status_code == 202
        assert api_client.post("/v1/jobs", json=CLS, headers=auth(token)).status_code == 202
        refused = other_process.post("/v1/jobs", json=CLS, headers=auth(token))
        assert refused.status_code == 429
        assert refused.json()["detail"] == (
            "too many POSTs with this token: the limit is 3 per minute (post_rate_per_minute); "
            f"retry in {refused.headers['Retry-After']} s"
        )
        assert 1 <= int(refused.headers["Retry-After"]) <= 20
        assert api_client.post("/v1/jobs", json=CLS, headers=auth(token)).status_code == 429
        # Reads are not counted; another token of the tenant has its own budget.
        assert api_client.get("/v1/jobs", headers=auth(token)).status_code == 200
        assert other_process.post("/v1/jobs", json=CLS, headers=auth(second_token)).status_code == 202
    assert jobs_and_events(tenant_id) == (4, 4)


def test_the_rate_budget_refills_at_its_rate_and_a_missing_redis_lets_posts_through(redis_url) -> None:
    import asyncio

    import redis.asyncio as aioredis

    from trainforge.ratelimit import retry_after_s

    async def spend(url: str, token_id: str, times: int, per_minute: int = 2) -> list[int | None]:
        client = aioredis.Redis.from_url(url, socket_connect_timeout=0.5)
        try:
            return [await retry_after_s(client, token_id, per_minute) for _ in range(times)]
        finally:
            await client.aclose()

    waits = asyncio.run(spend(redis_url, f"t-{uuid.uuid4().hex}", 3))
    assert waits[:2] == [None, None] and waits[2] is not None and 29 <= waits[2] <= 30  # one per 30 s
    # 7 a minute: a fractional interval (8571.4 ms) in the script, which must still count.
    waits = asyncio.run(spend(redis_url, f"t-{uuid.uuid4().hex}", 8, per_minute=7))
    assert waits[:7] == [None] * 7 and waits[7] is not None and 8 <= waits[7] <= 9
    assert asyncio.run(spend("redis://127.0.0.1:9", "t", 2)) == [None, None]
