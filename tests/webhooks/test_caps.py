"""The operator's caps on receivers: endpoints per tenant, webhooks per job, and bad cap settings."""

from __future__ import annotations

import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import ValidationError

from trainforge.queue import JOBS_QUEUE
from trainforge.settings import Settings

HOOK = "http://127.0.0.1:9/hook"
JOB = {"trainer": "classify", "overrides": {"epochs": 1}}


@pytest.fixture
def capped(settings_env):
    """Yield a client of an app that allows 2 endpoints per tenant and 1 webhook per job."""
    from api.main import create_app

    settings = settings_env.model_copy(update={"webhook_max_endpoints": 2, "webhook_max_per_job": 1})
    with TestClient(create_app(settings)) as client:
        yield client


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_third_endpoint_is_refused_naming_the_cap_and_nothing_is_added(capped, make_token) -> None:
    token, other = make_token(), make_token()
    for n in range(2):
        created = capped.post("/v1/webhooks", json={"url": f"{HOOK}/{n}"}, headers=auth(token))
        assert created.status_code == 201
    refused = capped.post("/v1/webhooks", json={"url": f"{HOOK}/2"}, headers=auth(token))
    assert refused.status_code == 422
    assert refused.json()["detail"] == (
        "this tenant has 2 webhook endpoints; at most 2 are allowed (webhook_max_endpoints): "
        "delete one (DELETE /v1/webhooks/{id}) or give one endpoint more event types"
    )
    listed = capped.get("/v1/webhooks", headers=auth(token)).json()["data"]
    assert sorted(e["url"] for e in listed) == [f"{HOOK}/0", f"{HOOK}/1"]
    # Another tenant's room is its own; and a deleted endpoint makes room again.
    assert capped.post("/v1/webhooks", json={"url": HOOK}, headers=auth(other)).status_code == 201
    assert capped.delete(f"/v1/webhooks/{listed[0]['id']}", headers=auth(token)).status_code == 204
    assert capped.post("/v1/webhooks", json={"url": f"{HOOK}/2"}, headers=auth(token)).status_code == 201


BAD_JOBS = [
    ("two webhooks, cap 1", [{"url": HOOK}, {"url": HOOK + "/b"}], 422,
     "webhooks lists 2 webhooks; a job may have at most 1 (webhook_max_per_job): "
     "register a tenant endpoint (POST /v1/webhooks) to reach more receivers"),
    ("past the hard ceiling", [{"url": HOOK}] * 101, 422,
     "webhooks: List should have at most 100 items after validation, not 101"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "hooks", "status", "message"), BAD_JOBS, ids=[c[0] for c in BAD_JOBS])
def test_a_job_with_too_many_webhooks_is_refused_and_nothing_is_made_or_queued(
    capped, make_token, redis_url, name, hooks, status, message
) -> None:
    token = make_token()
    queued = redis.Redis.from_url(redis_url).llen(JOBS_QUEUE)
    response = capped.post("/v1/jobs", json={**JOB, "webhooks": hooks}, headers=auth(token))
    assert response.status_code == status, response.text
    assert response.json()["detail"] == message
    assert capped.get("/v1/jobs", headers=auth(token)).json()["data"] == []
    assert redis.Redis.from_url(redis_url).llen(JOBS_QUEUE) == queued


def test_a_job_at_the_cap_is_accepted(capped, make_token) -> None:
    response = capped.post("/v1/jobs", json={**JOB, "webhooks": [{"url": HOOK}]}, headers=auth(make_token()))
    assert response.status_code == 202, response.text


BAD_SETTINGS = [
    ("webhook_endpoint_in_flight", 0, "greater than or equal to 1"),
    ("webhook_tenant_in_flight", -1, "greater than or equal to 1"),
    ("webhook_max_endpoints", -1, "greater than or equal to 0"),
    ("webhook_max_per_job", 101, "less than or equal to 100"),
    ("stream_max_per_tenant", 0, "greater than or equal to 1"),
    ("stream_max_lifetime_s", 0, "greater than 0"),
    ("log_tail_max_bytes", 0, "greater than or equal to 1"),
]


@pytest.mark.parametrize(("field", "value", "reason"), BAD_SETTINGS, ids=[c[0] for c in BAD_SETTINGS])
def test_a_bad_cap_setting_is_refused_naming_it(monkeypatch, field, value, reason) -> None:
    monkeypatch.setenv(f"TRAINFORGE_{field.upper()}", str(value))
    with pytest.raises(ValidationError) as caught:
        Settings()
    (error,) = caught.value.errors()
    assert error["loc"] == (field,) and reason in error["msg"]
