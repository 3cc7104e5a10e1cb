"""Every bad request gets a 4xx JSON answer whose message says what is wrong; none is a 500."""

from __future__ import annotations

import uuid

import pytest

GOOD = {"trainer": "classify", "overrides": {"epochs": 1}}
MISSING = str(uuid.uuid4())

# (name, method, path, kwargs, status, text expected in detail)
CASES = [
    ("malformed JSON", "POST", "/v1/jobs", {"content": b'{"trainer": "classify",'}, 400, "not valid JSON"),
    ("JSON not an object", "POST", "/v1/jobs", {"json": ["classify"]}, 422, "valid dictionary"),
    ("empty body", "POST", "/v1/jobs", {"content": b""}, 422, "field required"),
    ("missing trainer", "POST", "/v1/jobs", {"json": {"overrides": {}}}, 422, "trainer: field required"),
    ("unknown field", "POST", "/v1/jobs", {"json": {**GOOD, "overides": {}}}, 422, "overides: unknown field"),
    ("unknown trainer", "POST", "/v1/jobs", {"json": {"trainer": "clasify"}}, 422, "did you mean 'classify'"),
    (
        "disallowed module path",
        "POST",
        "/v1/jobs",
        {"json": {"trainer": "os:system"}},
        422,
        "trainer module 'os' is not under an allowed prefix",
    ),
    ("malformed module path", "POST", "/v1/jobs", {"json": {"trainer": "tests..x:Y"}}, 422, "not a valid"),
    (
        "unknown override",
        "POST",
        "/v1/jobs",
        {"json": {"trainer": "classify", "overrides": {"epoch": 3}}},
        422,
        "unknown override 'epoch'; did you mean 'epochs'?",
    ),
    (
        "wrong override type",
        "POST",
        "/v1/jobs",
        {"json": {"trainer": "classify", "overrides": {"epochs": "three"}}},
        422,
        "'epochs'",
    ),
    (
        "reserved override",
        "POST",
        "/v1/jobs",
        {"json": {"trainer": "classify", "overrides": {"project": "/etc"}}},
        422,
        "override 'project' cannot be set",
    ),
    (
        "overrides not a dict",
        "POST",
        "/v1/jobs",
        {"json": {"trainer": "classify", "overrides": [1]}},
        422,
        "overrides",
    ),
    ("priority out of range", "POST", "/v1/jobs", {"json": {**GOOD, "priority": 99}}, 422, "priority"),
    ("bad tag", "POST", "/v1/jobs", {"json": {**GOOD, "tags": ["no spaces"]}}, 422, "invalid tag"),
    (
        "gpus negative",
        "POST",
        "/v1/jobs",
        {"json": {**GOOD, "resources": {"gpus": -1}}},
        422,
        "resources.gpus",
    ),
    (
        "webhook to metadata address",
        "POST",
        "/v1/jobs",
        {"json": {**GOOD, "webhooks": [{"url": "http://169.254.169.254/hook"}]}},
        422,
        "webhooks[0].url",
    ),
    (
        "webhook not http",
        "POST",
        "/v1/jobs",
        {"json": {**GOOD, "webhooks": [{"url": "ftp://x.org/"}]}},
        422,
        "webhooks[0]",
    ),
    (
        "NaN override",
        "POST",
        "/v1/jobs",
        {
            "content": b'{"trainer": "classify", "overrides": {"lr0": NaN}}',
            "headers": {"Content-Type": "application/json"},
        },
        422,
        "use a finite number",
    ),
    ("NUL in name", "POST", "/v1/jobs", {"json": {**GOOD, "name": "a\x00b"}}, 422, "control characters"),
    (
        "NUL in override",
        "POST",
        "/v1/jobs",
        {"json": {**GOOD, "overrides": {"data": "a\x00"}}},
        422,
        "NUL character",
    ),
    ("bad tag filter", "GET", "/v1/jobs?tag=%00", {}, 422, "tag filter: invalid tag"),
    (
        "deeply nested JSON",
        "POST",
        "/v1/jobs",
        {"content": b"[" * 2000 + b"]" * 2000},
        400,
        "error parsing the body",
    ),
    ("oversized body", "POST", "/v1/jobs", {"content": b"{" + b" " * 5000 + b"}"}, 413, "too large"),
    ("bad job id", "GET", "/v1/jobs/not-a-uuid", {}, 422, "invalid job id"),
    ("unknown job id", "GET", f"/v1/jobs/{MISSING}", {}, 404, "not found"),
    ("cancel unknown job", "POST", f"/v1/jobs/{MISSING}/cancel", {}, 404, "not found"),
    ("bad status filter", "GET", "/v1/jobs?status=done", {}, 422, "unknown status 'done'"),
    ("bad cursor", "GET", "/v1/jobs?cursor=%%%", {}, 422, "invalid cursor"),
    ("cursor with a NUL id", "GET", "/v1/jobs?cursor=MjAyNi0wMS0wMnwA", {}, 422, "invalid cursor"),
    ("bad limit", "GET", "/v1/jobs?limit=0", {}, 422, "limit"),
    ("bad Last-Event-ID", "GET", f"/v1/jobs/{MISSING}/events", {}, 404, "not found"),
    ("unknown route", "GET", "/v1/nothing", {}, 404, "no route GET /v1/nothing"),
    ("wrong method", "DELETE", "/v1/jobs", {}, 405, "not allowed"),
    ("artifact traversal", "GET", "/v1/jobs/{job}/artifacts/..%2F..%2Fetc%2Fpasswd", {}, 404, "no artifact"),
    ("artifact absolute", "GET", "/v1/jobs/{job}/artifacts/%2Fetc%2Fpasswd", {}, 404, "no artifact"),
]


@pytest.fixture(scope="module")
def small_body_env(service_env):
    return {**service_env, "TRAINFORGE_MAX_BODY_BYTES": "4096"}


@pytest.fixture
def client(small_body_env, monkeypatch, settings_env):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from trainforge.settings import get_settings

    monkeypatch.setenv("TRAINFORGE_MAX_BODY_BYTES", "4096")
    get_settings.cache_clear()
    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(
    ("name", "method", "path", "kwargs", "status", "text"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_request(client, make_token, name, method, path, kwargs, status, text) -> None:
    token = make_token()
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    if "{job}" in path:
        job = client.post("/v1/jobs", json=GOOD, headers=headers).json()["id"]
        path = path.replace("{job}", job)
    r = client.request(method, path, headers=headers, **kwargs)
    assert r.status_code == status, r.text
    assert text in r.json()["detail"], r.json()


@pytest.mark.parametrize(
    ("headers", "text"),
    [
        ({}, "missing API token"),
        ({"Authorization": "Bearer tf_nope-nope-nope-nope"}, "invalid or revoked API token"),
        ({"Authorization": "Basic dXNlcjpwdw=="}, "missing API token"),
    ],
)
def test_missing_or_bad_token_is_401(client, headers, text) -> None:
    for method, path in [
        ("GET", "/v1/jobs"),
        ("POST", "/v1/jobs"),
        ("GET", f"/v1/jobs/{MISSING}"),
        ("GET", "/v1/trainers"),
    ]:
        r = client.request(method, path, headers=headers, json=GOOD if method == "POST" else None)
        assert r.status_code == 401, (method, path, r.text)
        assert text in r.json()["detail"]


def test_chunked_oversized_body_is_413(client, make_token) -> None:
    token = make_token()

    def chunks():
        yield b'{"trainer": "classify", "name": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    r = client.post("/v1/jobs", content=chunks(), headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 413, r.text


def test_bad_last_event_id(client, make_token) -> None:
    token = make_token()
    job = client.post("/v1/jobs", json=GOOD, headers={"Authorization": f"Bearer {token}"}).json()["id"]
    r = client.get(
        f"/v1/jobs/{job}/events", headers={"Authorization": f"Bearer {token}", "Last-Event-ID": "abc"}
    )
    assert r.status_code == 422 and "Last-Event-ID" in r.json()["detail"]


def test_nothing_was_created_by_bad_requests(client, make_token) -> None:
    token = make_token()
    headers = {"Authorization": f"Bearer {token}"}
    for body in ({"trainer": "clasify"}, {"trainer": "classify", "overrides": {"epoch": 3}}):
        assert client.post("/v1/jobs", json=body, headers=headers).status_code == 422
    assert client.get("/v1/jobs", headers=headers).json()["data"] == []
