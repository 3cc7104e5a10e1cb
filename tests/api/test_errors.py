"""Every bad request gets a 4xx JSON answer whose message says what is wrong; none is a 500."""

from __future__ import annotations

import uuid

import pytest
from shared_helpers import footprint

GOOD = {"trainer": "classify", "overrides": {"epochs": 1}}
MISSING = str(uuid.uuid4())

HOOK = "http://127.0.0.1:9/"
TAG_RULE = "use 1-100 letters, digits and _ . : / = - (starting with a letter or digit)"
CURSOR_RULE = "pass the next_cursor value of the previous page unchanged"
SECRET_RULE = "use 24-64 random bytes, base64-encoded (or leave it out to get one)"
SEQ_RULE = "send the id (a seq number from 0 to 2147483647) of the last event you received"
NOT_FOUND = f"job {MISSING} not found; list your jobs with GET /v1/jobs"
STATUSES = "queued, running, cancelling, succeeded, failed, cancelled, retrying"

# (name, method, path, kwargs, status, the whole detail); "{job}" in the path and the detail is a job of
# the caller's made before the request.
CASES = [
    ("malformed JSON", "POST", "/v1/jobs", {"content": b'{"trainer": "classify",'}, 400,
     "request body is not valid JSON (Expecting property name enclosed in double quotes at character 23); "
     "send a JSON object"),
    ("JSON not an object", "POST", "/v1/jobs", {"json": ["classify"]}, 422,
     "body: Input should be a valid dictionary or object to extract fields from"),
    ("empty body", "POST", "/v1/jobs", {"content": b""}, 422, "body: field required"),
    ("missing trainer", "POST", "/v1/jobs", {"json": {"overrides": {}}}, 422, "trainer: field required"),
    ("unknown field", "POST", "/v1/jobs", {"json": {**GOOD, "overides": {}}}, 422,
     "overides: unknown field; remove it (see the request schema at /docs)"),
    ("unknown trainer", "POST", "/v1/jobs", {"json": {"trainer": "clasify"}}, 422,
     "unknown trainer 'clasify'; did you mean 'classify'? use one of classify, detect or a "
     "'package.module:Class' path under an allowed module prefix"),
    ("disallowed module path", "POST", "/v1/jobs", {"json": {"trainer": "os:system"}}, 422,
     "trainer module 'os' is not under an allowed prefix (tests.); the operator can allow it with "
     "TRAINFORGE_TRAINER_MODULES"),
    ("malformed module path", "POST", "/v1/jobs", {"json": {"trainer": "tests..x:Y"}}, 422,
     "trainer 'tests..x:Y' is not a valid 'package.module:Class' path (dotted Python identifiers, one colon "
     "before the class name)"),
    ("unknown override", "POST", "/v1/jobs", {"json": {"trainer": "classify", "overrides": {"epoch": 3}}},
     422, "unknown override 'epoch'; did you mean 'epochs'?"),
    ("wrong override type", "POST", "/v1/jobs",
     {"json": {"trainer": "classify", "overrides": {"epochs": "three"}}}, 422,
     "invalid value for 'epochs': 'three'; expected int >= 1"),
    ("reserved override", "POST", "/v1/jobs",
     {"json": {"trainer": "classify", "overrides": {"project": "/etc"}}}, 422,
     "override 'project' cannot be set: the service stores every run under its artifacts directory; "
     "remove it"),
    ("overrides not a dict", "POST", "/v1/jobs", {"json": {"trainer": "classify", "overrides": [1]}}, 422,
     "overrides: Input should be a valid dictionary"),
    ("priority out of range", "POST", "/v1/jobs", {"json": {**GOOD, "priority": 99}}, 422,
     "priority: Input should be less than or equal to 9"),
    ("priority a huge int", "POST", "/v1/jobs", {"json": {**GOOD, "priority": 10**30}}, 422,
     "priority: Input should be less than or equal to 9"),
    ("bad tag", "POST", "/v1/jobs", {"json": {**GOOD, "tags": ["no spaces"]}}, 422,
     f"tags: invalid tag 'no spaces': {TAG_RULE}"),
    ("gpus negative", "POST", "/v1/jobs", {"json": {**GOOD, "resources": {"gpus": -1}}}, 422,
     "resources.gpus: Input should be greater than or equal to 0"),
    ("webhook to metadata address", "POST", "/v1/jobs",
     {"json": {**GOOD, "webhooks": [{"url": "http://169.254.169.254/hook"}]}}, 422,
     "webhooks[0].url: webhook URL refused: 169.254.169.254 is a cloud metadata address; webhooks must reach "
     "a public address (allow it explicitly with TRAINFORGE_WEBHOOK_ALLOW (CIDRs or host names) if it is "
     "intended)"),
    ("webhook not http", "POST", "/v1/jobs", {"json": {**GOOD, "webhooks": [{"url": "ftp://x.org/"}]}}, 422,
     "webhooks[0].url: webhook URL 'ftp://x.org/' has scheme 'ftp'; only http and https are allowed"),
    ("NUL in a webhook URL", "POST", "/v1/jobs", {"json": {**GOOD, "webhooks": [{"url": HOOK + "a\x00b"}]}},
     422, "webhooks[0].url contains a NUL character; remove it"),
    ("webhook secret too long", "POST", "/v1/jobs",
     {"json": {**GOOD, "webhooks": [{"url": HOOK, "secret": "whsec_" + "A" * 296}]}}, 422,
     f"webhooks[0].secret: webhook secret is too long: {SECRET_RULE}"),
    ("webhook secret not padded", "POST", "/v1/jobs",
     {"json": {**GOOD, "webhooks": [{"url": HOOK, "secret": "whsec_abc"}]}}, 422,
     "webhooks[0].secret: webhook secret is not valid base64 after 'whsec_': Incorrect padding "
     "(or leave it out to get one)"),
    ("webhook secret of 18 bytes", "POST", "/v1/jobs",
     {"json": {**GOOD, "webhooks": [{"url": HOOK, "secret": "whsec_" + "A" * 24}]}}, 422,
     f"webhooks[0].secret: webhook secret holds 18 bytes: {SECRET_RULE}"),
    ("NaN override", "POST", "/v1/jobs",
     {"content": b'{"trainer": "classify", "overrides": {"lr0": NaN}}',
      "headers": {"Content-Type": "application/json"}}, 422, "overrides.lr0 is nan; use a finite number"),
    ("NUL in name", "POST", "/v1/jobs", {"json": {**GOOD, "name": "a\x00b"}}, 422,
     "name contains a NUL character; remove it"),
    ("control character in name", "POST", "/v1/jobs", {"json": {**GOOD, "name": "a\x07b"}}, 422,
     "name: name contains control characters; use printable text"),
    ("NUL in override", "POST", "/v1/jobs", {"json": {**GOOD, "overrides": {"data": "a\x00"}}}, 422,
     "overrides.data contains a NUL character; remove it"),
    ("NUL in a trainer name", "POST", "/v1/jobs", {"json": {**GOOD, "trainer": "tests.x\x00:Y"}}, 422,
     "trainer contains a NUL character; remove it"),
    ("NUL in a tag", "POST", "/v1/jobs", {"json": {**GOOD, "tags": ["a\x00"]}}, 422,
     "tags[0] contains a NUL character; remove it"),
    ("body not UTF-8", "POST", "/v1/jobs",
     {"content": b'{"trainer": "classify", "name": "\xff\xfe"}',
      "headers": {"Content-Type": "application/json"}},
     400, "request body could not be decoded (not UTF-8, or nested too deeply); send a UTF-8 JSON object"),
    ("deeply nested JSON", "POST", "/v1/jobs", {"content": b"[" * 2000 + b"]" * 2000}, 400,
     "request body could not be decoded (not UTF-8, or nested too deeply); send a UTF-8 JSON object"),
    ("oversized body", "POST", "/v1/jobs", {"content": b"{" + b" " * 5000 + b"}"}, 413,
     "request body too large; the limit is 4096 bytes (TRAINFORGE_MAX_BODY_BYTES)"),
    ("Content-Length very long", "POST", "/v1/jobs",
     {"json": GOOD, "headers": {"Content-Length": "9" * 5000}}, 413,
     "request body too large; the limit is 4096 bytes (TRAINFORGE_MAX_BODY_BYTES)"),
    ("bad tag filter", "GET", "/v1/jobs?tag=%00", {}, 422, f"tag filter: invalid tag '\\x00': {TAG_RULE}"),
    ("bad job id", "GET", "/v1/jobs/not-a-uuid", {}, 422,
     "invalid job id 'not-a-uuid': job ids are UUIDs like 3f2c9a1e-...; see GET /v1/jobs"),
    ("unknown job id", "GET", f"/v1/jobs/{MISSING}", {}, 404, NOT_FOUND),
    ("cancel unknown job", "POST", f"/v1/jobs/{MISSING}/cancel", {}, 404, NOT_FOUND),
    ("events of an unknown job", "GET", f"/v1/jobs/{MISSING}/events", {}, 404, NOT_FOUND),
    ("bad status filter", "GET", "/v1/jobs?status=done", {}, 422,
     f"unknown status 'done'; use one of {STATUSES}"),
    ("bad cursor", "GET", "/v1/jobs?cursor=%%%", {}, 422, f"invalid cursor '%%%': {CURSOR_RULE}"),
    ("cursor with a NUL id", "GET", "/v1/jobs?cursor=MjAyNi0wMS0wMnwA", {}, 422,
     f"invalid cursor 'MjAyNi0wMS0wMnwA': {CURSOR_RULE}"),
    ("bad limit", "GET", "/v1/jobs?limit=0", {}, 422, "limit: Input should be greater than or equal to 1"),
    ("unknown route", "GET", "/v1/nothing", {}, 404,
     "no route GET /v1/nothing; the routes are listed at /docs"),
    ("wrong method", "DELETE", "/v1/jobs", {}, 405, "method DELETE is not allowed on /v1/jobs; see /docs"),
    ("artifact traversal", "GET", "/v1/jobs/{job}/artifacts/..%2F..%2Fetc%2Fpasswd", {}, 404,
     "job {job} has no artifact '../../etc/passwd'; available: none yet"),
    ("artifact absolute", "GET", "/v1/jobs/{job}/artifacts/%2Fetc%2Fpasswd", {}, 404,
     "job {job} has no artifact '/etc/passwd'; available: none yet"),
    ("artifact with a NUL", "GET", "/v1/jobs/{job}/artifacts/a%00b", {}, 404,
     "job {job} has no artifact 'a\\x00b'; available: none yet"),
    ("Last-Event-ID not a number", "GET", "/v1/jobs/{job}/events", {"headers": {"Last-Event-ID": "abc"}}, 422,
     f"invalid Last-Event-ID 'abc': {SEQ_RULE}"),
    ("Last-Event-ID very long", "GET", "/v1/jobs/{job}/events",
     {"headers": {"Last-Event-ID": "9" * 5000}}, 422,
     f"invalid Last-Event-ID '{'9' * 20}': {SEQ_RULE}"),
    ("Last-Event-ID past the seq range", "GET", "/v1/jobs/{job}/events",
     {"headers": {"Last-Event-ID": str(2**31)}}, 422, f"invalid Last-Event-ID '2147483648': {SEQ_RULE}"),
    ("?after= very long", "GET", "/v1/jobs/{job}/events?after=" + "9" * 5000, {}, 422,
     "after: Unable to parse input string as an integer, exceeded maximum size"),
]  # fmt: skip


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
    ("name", "method", "path", "kwargs", "status", "detail"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_request(client, make_token, service_env, name, method, path, kwargs, status, detail) -> None:
    token = make_token()
    kwargs = dict(kwargs)  # the table is shared by both databases' runs
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    if "{job}" in path:
        job = client.post("/v1/jobs", json=GOOD, headers=headers).json()["id"]
        path, detail = path.replace("{job}", job), detail.replace("{job}", job)
    before = footprint(service_env["TRAINFORGE_DATABASE_URL"], service_env["TRAINFORGE_REDIS_URL"])
    r = client.request(method, path, headers=headers, **kwargs)
    assert (r.status_code, r.json()["detail"]) == (status, detail)
    # Refused means untouched: no job, tag, event or delivery row, and no run_job message.
    assert footprint(service_env["TRAINFORGE_DATABASE_URL"], service_env["TRAINFORGE_REDIS_URL"]) == before


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


def test_a_digit_int_cannot_read_is_a_bad_last_event_id(live_api, make_token, service_env) -> None:
    # Over a real server: '\u00b2' passes str.isdigit() but not int(). A header arrives as bytes, and a
    # byte the test client would re-encode is sent here as it is on the wire.
    import httpx

    headers = {"Authorization": f"Bearer {make_token()}"}
    job = httpx.post(f"{live_api}/v1/jobs", json=GOOD, headers=headers).json()["id"]
    before = footprint(service_env["TRAINFORGE_DATABASE_URL"], service_env["TRAINFORGE_REDIS_URL"])
    for value in (b"\xb2", "\u00b2".encode()):
        r = httpx.get(f"{live_api}/v1/jobs/{job}/events", headers={**headers, "Last-Event-ID": value})
        shown = repr(value.decode("latin-1"))  # what HTTP header bytes mean to the server
        assert (r.status_code, r.json()["detail"]) == (422, f"invalid Last-Event-ID {shown}: {SEQ_RULE}")
    assert footprint(service_env["TRAINFORGE_DATABASE_URL"], service_env["TRAINFORGE_REDIS_URL"]) == before
