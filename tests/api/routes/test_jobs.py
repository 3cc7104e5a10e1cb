"""Jobs over HTTP: submit, show, list with filters and cursor, idempotency, cancel, tenant isolation."""

from __future__ import annotations

import pytest

BODY = {"trainer": "classify", "overrides": {"data": "synthetic:classify", "epochs": 3, "imgsz": 32}}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def token(make_token) -> str:
    return make_token()


def test_submit_then_show(api_client, token) -> None:
    r = api_client.post("/v1/jobs", json={**BODY, "tags": ["exp1"], "name": "first"}, headers=auth(token))
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "queued"
    assert job["links"]["self"] == f"/v1/jobs/{job['id']}"
    r = api_client.get(job["links"]["self"], headers=auth(token))
    assert r.status_code == 200
    shown = r.json()
    assert (shown["trainer"], shown["name"], shown["tags"], shown["epochs"]) == (
        "classify",
        "first",
        ["exp1"],
        None,
    )
    assert shown["trainer_ref"].endswith(":ClassificationTrainer")
    events = api_client.get(job["links"]["events"], headers=auth(token)).json()
    assert [e["type"] for e in events["data"]] == ["job.queued"]


def test_curl_style_form_content_type_is_read_as_json(api_client, token) -> None:
    import json

    r = api_client.post(
        "/v1/jobs",
        content=json.dumps(BODY),
        headers={**auth(token), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 202, r.text


def test_idempotency_key_returns_the_same_job(api_client, token) -> None:
    headers = {**auth(token), "Idempotency-Key": "k-1"}
    first = api_client.post("/v1/jobs", json=BODY, headers=headers)
    again = api_client.post("/v1/jobs", json=BODY, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    other = api_client.post("/v1/jobs", json={**BODY, "priority": 5}, headers=headers)
    assert other.status_code == 409
    assert "already used for a different request" in other.json()["detail"]
    listed = api_client.get("/v1/jobs", headers=auth(token)).json()["data"]
    assert len(listed) == 1


def test_list_filters_before_paging_newest_first(api_client, token, make_job) -> None:
    me = api_client.get("/v1/jobs", headers=auth(token))  # resolve our tenant
    assert me.status_code == 200
    ids = [
        api_client.post(
            "/v1/jobs", json={**BODY, "tags": ["a"] if i % 2 else ["b"]}, headers=auth(token)
        ).json()["id"]
        for i in range(7)
    ]
    tagged_a = [i for n, i in enumerate(ids) if n % 2][::-1]  # newest first
    seen, cursor = [], None
    while True:
        params = {"tag": "a", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api_client.get("/v1/jobs", params=params, headers=auth(token)).json()
        seen += [j["id"] for j in page["data"]]
        assert all(j["tags"] == ["a"] for j in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == tagged_a
    all_jobs = api_client.get("/v1/jobs", params={"limit": 100}, headers=auth(token)).json()["data"]
    assert [j["id"] for j in all_jobs] == ids[::-1]


def test_status_filter(api_client, token) -> None:
    a = api_client.post("/v1/jobs", json=BODY, headers=auth(token)).json()["id"]
    b = api_client.post("/v1/jobs", json=BODY, headers=auth(token)).json()["id"]
    assert api_client.post(f"/v1/jobs/{a}/cancel", headers=auth(token)).status_code == 202
    cancelled = api_client.get("/v1/jobs?status=cancelled", headers=auth(token)).json()["data"]
    queued = api_client.get("/v1/jobs", params={"status": ["queued", "running"]}, headers=auth(token)).json()[
        "data"
    ]
    assert [j["id"] for j in cancelled] == [a]
    assert [j["id"] for j in queued] == [b]


def test_cancel_queued_job_without_running(api_client, token) -> None:
    job_id = api_client.post("/v1/jobs", json=BODY, headers=auth(token)).json()["id"]
    r = api_client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(token))
    assert r.status_code == 202 and r.json()["status"] == "cancelled"
    assert r.json()["started_at"] is None and r.json()["finished_at"] is not None
    again = api_client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(token))
    assert again.status_code == 409 and "already ended (cancelled)" in again.json()["detail"]
    types = [
        e["type"] for e in api_client.get(f"/v1/jobs/{job_id}/events", headers=auth(token)).json()["data"]
    ]
    assert types == ["job.queued", "job.cancelled"]


def test_cancel_running_job_asks_the_worker(api_client, token, make_job, redis_url) -> None:
    import json

    import redis

    from trainforge.pubsub import control_channel

    tenant = api_client.get("/v1/jobs", headers=auth(token))
    assert tenant.status_code == 200
    from trainforge.auth import resolve_token
    from trainforge.db.session import session_scope

    with session_scope() as s:
        tenant_name = resolve_token(s, token).tenant_name
    job_id = make_job(tenant=tenant_name, status="running", lease_owner="w1")
    sub = redis.Redis.from_url(redis_url).pubsub()
    sub.subscribe(control_channel(job_id))
    sub.get_message(timeout=1)
    r = api_client.post(f"/v1/jobs/{job_id}/cancel", headers=auth(token))
    assert r.status_code == 202 and r.json()["status"] == "cancelling"
    message = sub.get_message(timeout=2)
    assert message is not None and json.loads(message["data"])["action"] == "cancel"
    sub.close()


def test_other_tenants_job_is_404(api_client, make_token) -> None:
    mine, theirs = make_token(), make_token()
    job_id = api_client.post("/v1/jobs", json=BODY, headers=auth(theirs)).json()["id"]
    for method, path in [
        ("GET", f"/v1/jobs/{job_id}"),
        ("POST", f"/v1/jobs/{job_id}/cancel"),
        ("GET", f"/v1/jobs/{job_id}/events"),
        ("GET", f"/v1/jobs/{job_id}/logs"),
        ("GET", f"/v1/jobs/{job_id}/artifacts"),
        ("GET", f"/v1/jobs/{job_id}/artifacts/best.pt"),
    ]:
        r = api_client.request(method, path, headers=auth(mine))
        assert r.status_code == 404, (method, path, r.text)
        assert "not found" in r.json()["detail"]
    assert api_client.get("/v1/jobs", headers=auth(mine)).json()["data"] == []
    assert api_client.get(f"/v1/jobs/{job_id}", headers=auth(theirs)).status_code == 200


def test_trainers_lists_override_schema(api_client, token) -> None:
    r = api_client.get("/v1/trainers", headers=auth(token))
    assert r.status_code == 200
    trainers = {t["name"]: t for t in r.json()["data"]}
    assert set(trainers) >= {"classify", "detect"}
    assert trainers["classify"]["overrides"]["epochs"]["type"]
    assert r.json()["allowed_modules"] == ["tests."]


def test_concurrent_posts_with_one_idempotency_key_make_one_job(settings_env, make_token) -> None:
    import threading

    from shared_helpers import run_in_threads

    from trainforge.auth import resolve_token
    from trainforge.db.session import session_scope
    from trainforge.jobs.service import create_job
    from trainforge.schemas import JobCreate

    token = make_token()
    with session_scope() as s:
        tenant_id = resolve_token(s, token).tenant_id
    barrier = threading.Barrier(3)

    def post() -> str:
        barrier.wait(timeout=30)
        with session_scope() as s:
            return create_job(s, tenant_id, JobCreate(**BODY), settings_env, idempotency_key="same").job.id

    ids = run_in_threads(*[post] * 3)
    assert len(ids) == 3 and len(set(ids)) == 1


def test_inline_webhook_secret_shown_once(api_client, token) -> None:
    hook = {"url": "http://127.0.0.1:9/hook", "events": ["on_fit_epoch_end", "job.succeeded"]}
    r = api_client.post("/v1/jobs", json={**BODY, "webhooks": [hook]}, headers=auth(token))
    assert r.status_code == 202, r.text
    created = r.json()["webhooks"][0]
    assert created["secret"].startswith("whsec_") and created["url"] == hook["url"]
    shown = api_client.get(f"/v1/jobs/{r.json()['id']}", headers=auth(token)).json()["webhooks"]
    assert shown == [{"id": created["id"], "url": hook["url"], "events": hook["events"]}]
