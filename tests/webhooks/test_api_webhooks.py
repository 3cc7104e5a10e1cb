"""The webhook HTTP API: endpoint lifecycle, delivery history, redelivery, tenant isolation, bad input."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.testclient import TestClient
from shared_helpers import footprint

from tests.webhooks.helpers import attempts, deliveries, drive, emit_event, inline_hook
from tests.webhooks.receiver import Receiver, Reply

MISSING = str(uuid.uuid4())
GOOD_JOB = {"trainer": "classify", "overrides": {"epochs": 1}}


def auth(token: str) -> dict[str, str]:
    """Return the Authorization header of a token."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def token(make_token) -> str:
    """Return a token of a fresh tenant."""
    return make_token()


@pytest.fixture
def strict_client(settings_env):
    """Yield a client of an app whose webhook policy allows no private address at all (production's)."""
    from api.main import create_app

    with TestClient(create_app(settings_env.model_copy(update={"webhook_allow": []}))) as client:
        yield client


def create(api_client, token: str, **body) -> dict:
    """Create an endpoint and return the response body."""
    response = api_client.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", **body}, headers=auth(token)
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_endpoint_lifecycle(api_client, token) -> None:
    created = create(api_client, token, events=["on_fit_epoch_end", "job.*"], tags=["prod"], description="ci")
    assert created["secret"].startswith("whsec_") and created["enabled"] is True
    path = f"/v1/webhooks/{created['id']}"
    shown = api_client.get(path, headers=auth(token)).json()
    assert (
        "secret" not in shown
        and shown["events"] == ["on_fit_epoch_end", "job.*"]
        and shown["tags"] == ["prod"]
    )
    assert [e["id"] for e in api_client.get("/v1/webhooks", headers=auth(token)).json()["data"]] == [
        created["id"]
    ]

    patched = api_client.patch(path, json={"events": ["*"], "tags": []}, headers=auth(token)).json()
    assert patched["events"] == ["*"] and patched["tags"] == []
    disabled = api_client.post(f"{path}/disable", headers=auth(token)).json()
    assert disabled["enabled"] is False and disabled["disabled_reason"] == "disabled by request"
    enabled = api_client.patch(path, json={"enabled": True}, headers=auth(token)).json()
    assert enabled["enabled"] is True and enabled["disabled_reason"] is None

    rotated = api_client.post(f"{path}/rotate-secret", json={"grace_s": 3600}, headers=auth(token)).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    assert rotated["previous_secret_expires_at"] is not None
    again = api_client.post(f"{path}/rotate-secret", headers=auth(token))  # no body: the default grace
    assert again.status_code == 200 and again.json()["secret"] not in (rotated["secret"], created["secret"])
    assert api_client.get(f"{path}/deliveries", headers=auth(token)).json() == {
        "data": [],
        "next_cursor": None,
    }

    assert api_client.delete(path, headers=auth(token)).status_code == 204
    assert api_client.get(path, headers=auth(token)).status_code == 404


def test_deliveries_show_every_attempt_and_can_be_redelivered(api_client, token, make_job) -> None:
    with Receiver(lambda _r, n: Reply(500, body=b"not yet") if n == 0 else Reply(200, body=b"got it")) as rx:
        endpoint = create(api_client, token, url=rx.url + "/hook", events=["job.succeeded"])
        job_id = api_client.post("/v1/jobs", json=GOOD_JOB, headers=auth(token)).json()["id"]
        emit_event(job_id, "job.succeeded", {"metrics": {"acc": 1.0}})
        (row,) = [d for d in deliveries(job_id) if d.event_type == "job.succeeded"]
        drive(row.id)
        page = api_client.get(f"/v1/jobs/{job_id}/deliveries", headers=auth(token)).json()
        (shown,) = [d for d in page["data"] if d["id"] == row.id]
        assert shown["status"] == "succeeded" and shown["endpoint_id"] == endpoint["id"]
        assert [(a["status_code"], a["error"], a["response_excerpt"]) for a in shown["attempts"]] == [
            (500, "HTTP 500", "not yet"),
            (200, None, "got it"),
        ]
        assert all(a["latency_ms"] > 0 for a in shown["attempts"])
        by_endpoint = api_client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=auth(token)).json()
        assert [d["id"] for d in by_endpoint["data"]] == [row.id]

        again = api_client.post(f"/v1/deliveries/{row.id}/redeliver", headers=auth(token))
        assert again.status_code == 202 and again.json()["status"] == "pending"
        conflict = api_client.post(f"/v1/deliveries/{row.id}/redeliver", headers=auth(token))
        assert conflict.status_code == 409 and "still pending" in conflict.json()["detail"]
        drive(row.id)
        assert len(rx.wait_for(3)) == 3
    shown = api_client.get(f"/v1/jobs/{job_id}/deliveries?status=succeeded", headers=auth(token)).json()[
        "data"
    ]
    assert [len(d["attempts"]) for d in shown if d["id"] == row.id] == [3]


def test_disable_fails_pending_deliveries_and_queues_none_for_new_events(api_client, token) -> None:
    with Receiver() as rx:
        endpoint = create(api_client, token, url=rx.url + "/hook", events=["on_train_epoch_end"])
        job_id = api_client.post("/v1/jobs", json=GOOD_JOB, headers=auth(token)).json()["id"]
        emit_event(job_id, "on_train_epoch_end", {"epoch": 1})
        (pending,) = deliveries(endpoint_id=endpoint["id"])
        off = api_client.post(f"/v1/webhooks/{endpoint['id']}/disable", headers=auth(token))
        assert off.status_code == 200 and off.json()["enabled"] is False
        assert off.json()["disabled_reason"] == "disabled by request"
        assert drive(pending.id) == ["failed"]  # the pending one fails when its turn comes, unsent
        emit_event(job_id, "on_train_epoch_end", {"epoch": 2})
        assert rx.requests == []
    assert [d.id for d in deliveries(endpoint_id=endpoint["id"])] == [pending.id]  # none for epoch 2
    shown = api_client.get(f"/v1/webhooks/{endpoint['id']}/deliveries", headers=auth(token)).json()["data"]
    assert [(d["status"], d["last_error"], d["attempts"]) for d in shown] == [
        ("failed", "endpoint disabled: disabled by request", [])
    ]
    again = api_client.post(f"/v1/deliveries/{pending.id}/redeliver", headers=auth(token))
    assert again.status_code == 409
    assert again.json()["detail"] == (
        f"endpoint {endpoint['id']!r} is disabled (disabled by request); "
        "enable it with PATCH /v1/webhooks/{id} {'enabled': true} first"
    )


def test_delete_takes_the_delivery_history_and_stops_deliveries(api_client, token) -> None:
    with Receiver() as rx:
        endpoint = create(api_client, token, url=rx.url + "/hook", events=["on_train_epoch_end"])
        job_id = api_client.post("/v1/jobs", json=GOOD_JOB, headers=auth(token)).json()["id"]
        emit_event(job_id, "on_train_epoch_end", {"epoch": 1})
        (sent,) = deliveries(endpoint_id=endpoint["id"])
        assert drive(sent.id) == ["sent"] and len(attempts(sent.id)) == 1
        gone = api_client.delete(f"/v1/webhooks/{endpoint['id']}", headers=auth(token))
        assert (gone.status_code, gone.content) == (204, b"")
        emit_event(job_id, "on_train_epoch_end", {"epoch": 2})
        assert len(rx.requests) == 1  # epoch 1 only
    assert deliveries(endpoint_id=endpoint["id"]) == [] and attempts(sent.id) == []
    listed = api_client.get(f"/v1/jobs/{job_id}/deliveries", headers=auth(token)).json()["data"]
    assert [d for d in listed if d["endpoint_id"] == endpoint["id"]] == []
    for method, path in (("GET", f"/v1/webhooks/{endpoint['id']}"),
                         ("GET", f"/v1/webhooks/{endpoint['id']}/deliveries"),
                         ("POST", f"/v1/deliveries/{sent.id}/redeliver")):  # fmt: skip
        assert api_client.request(method, path, headers=auth(token)).status_code == 404, path
    assert [e["id"] for e in api_client.get("/v1/webhooks", headers=auth(token)).json()["data"]] == []


def test_delivery_pages_follow_the_cursor(api_client, token, make_job) -> None:
    job_id = api_client.post("/v1/jobs", json={**GOOD_JOB, "webhooks": [{"url": "http://127.0.0.1:9/"}]},
                             headers=auth(token)).json()["id"]  # fmt: skip
    for n in range(4):
        emit_event(job_id, "on_train_epoch_end", {"epoch": n})
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api_client.get(f"/v1/jobs/{job_id}/deliveries", params=params, headers=auth(token)).json()
        seen += [d["id"] for d in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [d.id for d in deliveries(job_id)] and len(seen) == 5  # job.queued and 4 epochs


def test_another_tenants_endpoints_jobs_and_deliveries_are_404(api_client, make_token, make_job) -> None:
    mine, theirs = make_token(), make_token()
    endpoint = create(api_client, theirs)
    job_id = api_client.post("/v1/jobs", json={**GOOD_JOB, "webhooks": [{"url": "http://127.0.0.1:9/"}]},
                             headers=auth(theirs)).json()["id"]  # fmt: skip
    delivery = deliveries(job_id)[0]
    tries = [
        ("GET", f"/v1/webhooks/{endpoint['id']}", None),
        ("PATCH", f"/v1/webhooks/{endpoint['id']}", {"events": ["*"]}),
        ("POST", f"/v1/webhooks/{endpoint['id']}/disable", None),
        ("POST", f"/v1/webhooks/{endpoint['id']}/rotate-secret", None),
        ("GET", f"/v1/webhooks/{endpoint['id']}/deliveries", None),
        ("DELETE", f"/v1/webhooks/{endpoint['id']}", None),
        ("GET", f"/v1/jobs/{job_id}/deliveries", None),
        ("POST", f"/v1/deliveries/{delivery.id}/redeliver", None),
    ]
    for method, path, body in tries:
        response = api_client.request(method, path, json=body, headers=auth(mine))
        assert response.status_code == 404, (method, path, response.text)
        assert "not found" in response.json()["detail"] or "no " in response.json()["detail"]
    assert api_client.get("/v1/webhooks", headers=auth(mine)).json()["data"] == []
    assert api_client.get(f"/v1/webhooks/{endpoint['id']}", headers=auth(theirs)).status_code == 200


def test_tenant_endpoints_get_only_their_tenants_jobs(api_client, make_token) -> None:
    mine, theirs = make_token(), make_token()
    my_endpoint = create(api_client, mine)
    their_job = api_client.post("/v1/jobs", json=GOOD_JOB, headers=auth(theirs)).json()["id"]
    my_job = api_client.post("/v1/jobs", json=GOOD_JOB, headers=auth(mine)).json()["id"]
    assert [d.job_id for d in deliveries(endpoint_id=my_endpoint["id"])] == [my_job]  # job.queued
    assert deliveries(their_job) == []


HOOK = "http://127.0.0.1:9/"
# (name, method, path, body, status, the whole detail, or a pattern where the system words it)
BAD = [
    ("not JSON", "POST", "/v1/webhooks", b"{", 400,
     "request body is not valid JSON (Expecting property name enclosed in double quotes at character "
     "1); send a JSON object"),
    ("no url", "POST", "/v1/webhooks", {}, 422,
     "url: field required"),
    ("unknown field", "POST", "/v1/webhooks", {"url": HOOK, "evnts": ["*"]}, 422,
     "evnts: unknown field; remove it (see the request schema at /docs)"),
    ("ftp url", "POST", "/v1/webhooks", {"url": "ftp://example.com/x"}, 422,
     "webhook URL 'ftp://example.com/x' has scheme 'ftp'; only http and https are allowed"),
    ("no host", "POST", "/v1/webhooks", {"url": "http:///path"}, 422,
     "webhook URL 'http:///path' has no host; give an absolute URL like https://host/path"),
    ("bad port", "POST", "/v1/webhooks", {"url": "http://127.0.0.1:99999/"}, 422,
     "webhook URL 'http://127.0.0.1:99999/' is malformed: Port out of range 0-65535"),
    ("not a url", "POST", "/v1/webhooks", {"url": "hook"}, 422,
     "webhook URL 'hook' has scheme 'none'; only http and https are allowed"),
    ("unresolvable", "POST", "/v1/webhooks", {"url": "http://nohost.invalid/"}, 422,
     re.compile(r"webhook host 'nohost.invalid' does not resolve \(.+\); check the URL's host name")),
    ("unknown event", "POST", "/v1/webhooks", {"url": HOOK, "events": ["on_fit_epoch_ends"]},
     422,
     "unknown event 'on_fit_epoch_ends'; did you mean 'on_fit_epoch_end'?"),
    ("unknown lifecycle", "POST", "/v1/webhooks", {"url": HOOK, "events": ["job.succeded"]},
     422,
     "unknown event 'job.succeded'; did you mean 'job.succeeded'?"),
    ("empty events", "POST", "/v1/webhooks", {"url": HOOK, "events": []}, 422,
     "events: List should have at least 1 item after validation, not 0"),
    ("events not a list", "POST", "/v1/webhooks", {"url": HOOK, "events": "*"}, 422,
     "events: Input should be a valid list"),
    ("empty tag", "POST", "/v1/webhooks", {"url": HOOK, "tags": [""]}, 422,
     "tags must be 1-100 characters each, at most 50 of them"),
    ("long url", "POST", "/v1/webhooks", {"url": HOOK + "a" * 2000}, 422,
     "url: String should have at most 2000 characters"),
    ("bad webhook id", "GET", "/v1/webhooks/nope", None, 422,
     "invalid webhook id 'nope': webhook ids are UUIDs; list yours with GET /v1/webhooks"),
    ("missing webhook", "GET", f"/v1/webhooks/{MISSING}", None, 404,
     f"no webhook endpoint '{MISSING}'"),
    ("null url", "PATCH", f"/v1/webhooks/{MISSING}", {"url": None}, 404,
     f"no webhook endpoint '{MISSING}'"),
    ("negative grace", "POST", "/v1/webhooks/{endpoint}/rotate-secret", {"grace_s": -1}, 422,
     "grace_s: Input should be greater than or equal to 0"),
    ("null events", "PATCH", "/v1/webhooks/{endpoint}", {"events": None}, 422,
     "events cannot be null; leave it out to keep the current value"),
    ("enabled not a bool", "PATCH", "/v1/webhooks/{endpoint}", {"enabled": "maybe"}, 422,
     "enabled: Input should be a valid boolean, unable to interpret input"),
    ("bad delivery id", "POST", "/v1/deliveries/12/redeliver", None, 422,
     "invalid delivery id '12': delivery ids are UUIDs; see GET /v1/jobs/{job_id}/deliveries"),
    ("missing delivery", "POST", f"/v1/deliveries/{MISSING}/redeliver", None, 404,
     f"no delivery '{MISSING}'"),
    ("bad job id", "GET", "/v1/jobs/x/deliveries", None, 422,
     "invalid job id 'x': job ids are UUIDs like 3f2c9a1e-...; see GET /v1/jobs"),
    ("missing job", "GET", f"/v1/jobs/{MISSING}/deliveries", None, 404,
     f"job {MISSING} not found; list your jobs with GET /v1/jobs"),
    ("zero limit", "GET", "/v1/webhooks/{endpoint}/deliveries?limit=0", None, 422,
     "limit: Input should be greater than or equal to 1"),
    ("bad delivery status", "GET", "/v1/webhooks/{endpoint}/deliveries?status=ok", None, 422,
     "unknown delivery status 'ok'; use one of pending, succeeded, failed"),
    ("job with unknown event", "POST", "/v1/jobs",
     {**GOOD_JOB, "webhooks": [{"url": HOOK, "events": ["on_fit_epoch"]}]}, 422,
     "webhooks[0].events: unknown event 'on_fit_epoch'; did you mean 'on_fit_epoch_end'?"),
    ("job with bad url", "POST", "/v1/jobs", {**GOOD_JOB, "webhooks": [{"url": "gopher://x/"}]}, 422,
     "webhooks[0].url: webhook URL 'gopher://x/' has scheme 'gopher'; only http and https are allowed"),
    ("job with bad secret", "POST", "/v1/jobs",
     {**GOOD_JOB, "webhooks": [{"url": HOOK, "secret": "hunter2"}]}, 422,
     "webhooks[0].secret: webhook secret must start with 'whsec_' (or leave it out to get one)"),
    ("job with a secret that is not base64", "POST", "/v1/jobs",
     {**GOOD_JOB, "webhooks": [{"url": HOOK, "secret": "whsec_not*base64"}]}, 422,
     "webhooks[0].secret: webhook secret is not valid base64 after 'whsec_': Only base64 data is "
     "allowed (or leave it out to get one)"),
    ("job with a 300-character secret", "POST", "/v1/jobs",
     {**GOOD_JOB, "webhooks": [{"url": HOOK, "secret": "whsec_" + "A" * 294}]}, 422,
     "webhooks[0].secret: webhook secret is too long: use 24-64 random bytes, base64-encoded (or "
     "leave it out to get one)"),
    ("job with a NUL in a webhook URL", "POST", "/v1/jobs",
     {**GOOD_JOB, "webhooks": [{"url": HOOK + "a\x00b"}]}, 422,
     "webhooks[0].url contains a NUL character; remove it"),
    ("NUL in url", "POST", "/v1/webhooks", {"url": HOOK + "a\x00b"}, 422,
     "url contains a NUL character; remove it"),
    ("NUL in description", "POST", "/v1/webhooks", {"url": HOOK, "description": "a\x00b"}, 422,
     "description contains a NUL character; remove it"),
    ("NUL in a tag", "POST", "/v1/webhooks", {"url": HOOK, "tags": ["a\x00b"]}, 422,
     "tags[0] contains a NUL character; remove it"),
    ("NUL in an event", "POST", "/v1/webhooks", {"url": HOOK, "events": ["job.\x00"]}, 422,
     "events[0] contains a NUL character; remove it"),
    ("patch a NUL into url", "PATCH", "/v1/webhooks/{endpoint}", {"url": HOOK + "a\x00b"}, 422,
     "url contains a NUL character; remove it"),
    ("patch a NUL into description", "PATCH", "/v1/webhooks/{endpoint}", {"description": "a\x00b"}, 422,
     "description contains a NUL character; remove it"),
    ("NaN grace", "POST", "/v1/webhooks/{endpoint}/rotate-secret", b'{"grace_s": NaN}', 422,
     "grace_s is nan; use a finite number"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "method", "path", "body", "status", "detail"), BAD, ids=[c[0] for c in BAD])
def test_bad_requests_get_a_clear_4xx(
    api_client, token, service_env, name, method, path, body, status, detail
) -> None:
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    if "{endpoint}" in path:
        path = path.format(endpoint=create(api_client, token)["id"])
    before = footprint(service_env["TRAINFORGE_DATABASE_URL"], service_env["TRAINFORGE_REDIS_URL"])
    response = api_client.request(
        method, path, headers={**auth(token), "content-type": "application/json"}, **kwargs
    )
    assert response.status_code == status, response.text
    if isinstance(detail, re.Pattern):
        assert detail.fullmatch(response.json()["detail"]), response.json()
    else:
        assert response.json()["detail"] == detail
    # Refused means untouched: no endpoint, job, event or delivery row, and nothing queued.
    assert footprint(service_env["TRAINFORGE_DATABASE_URL"], service_env["TRAINFORGE_REDIS_URL"]) == before


def test_bad_delivery_filters_are_422(api_client, token) -> None:
    job_id = api_client.post("/v1/jobs", json=GOOD_JOB, headers=auth(token)).json()["id"]
    for params, text in [
        ({"status": "done"}, "unknown delivery status 'done'"),
        ({"cursor": "x|y"}, "invalid cursor"),
        ({"cursor": "2026-01-02T03:04:05+00:00|3f2c9a1e-0000-4000-8000-000000000000"}, "invalid cursor"),
        ({"cursor": "MjAyNi0wMS0wMnwA"}, "invalid cursor"),  # base64 of "2026-01-02|\x00"
    ]:
        response = api_client.get(f"/v1/jobs/{job_id}/deliveries", params=params, headers=auth(token))
        assert response.status_code == 422 and text in response.json()["detail"], response.text


def test_patch_refuses_null_for_required_fields(api_client, token) -> None:
    endpoint = create(api_client, token)
    response = api_client.patch(f"/v1/webhooks/{endpoint['id']}", json={"url": None}, headers=auth(token))
    assert response.status_code == 422 and "url cannot be null" in response.json()["detail"]
    response = api_client.patch(
        f"/v1/webhooks/{endpoint['id']}", json={"url": "file:///etc/passwd"}, headers=auth(token)
    )
    assert response.status_code == 422 and "only http and https" in response.json()["detail"]


SSRF = [
    ("private 10/8", "http://10.1.2.3/hook", "10.1.2.3 is a private address"),
    ("loopback 127/8", "http://127.0.0.2:8080/hook", "127.0.0.2 is a loopback address"),
    ("cloud metadata", "http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("IPv6 loopback", "http://[::1]/hook", "::1 is a loopback address"),
    (
        "IPv4-mapped loopback",
        "http://[::ffff:127.0.0.1]/hook",
        "loopback address (embedded in ::ffff:7f00:1)",
    ),
    ("CGNAT", "http://100.64.0.1/", "carrier-grade NAT"),
    ("IPv6 unique local", "http://[fd12::1]/", "unique local"),
    ("IPv6 link-local", "http://[fe80::1]/", "link-local"),
    ("multicast", "http://224.0.0.1/", "multicast"),
    ("a name resolving to loopback", "http://localhost:8080/hook", "'localhost' resolves to"),
]


@pytest.mark.parametrize(("name", "url", "reason"), SSRF, ids=[c[0] for c in SSRF])
def test_unsafe_addresses_are_refused_at_submit(strict_client, token, name, url, reason) -> None:
    for path, body in [
        ("/v1/webhooks", {"url": url}),
        ("/v1/jobs", {**GOOD_JOB, "webhooks": [{"url": url}]}),
    ]:
        response = strict_client.post(path, json=body, headers=auth(token))
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert "webhook URL refused" in detail and reason in detail, detail
        assert "TRAINFORGE_WEBHOOK_ALLOW" in detail


def test_allow_star_lets_development_reach_any_address(settings_env, token) -> None:
    from api.main import create_app

    open_settings = settings_env.model_copy(update={"webhook_allow": ["*"]})
    with TestClient(create_app(open_settings)) as client:
        for url in ("http://10.1.2.3/hook", "http://[fd00::1]/hook", "http://169.254.169.254/latest"):
            response = client.post("/v1/webhooks", json={"url": url}, headers=auth(token))
            assert response.status_code == 201, response.text


def test_inline_webhook_secret_is_returned_once_and_used(api_client, token) -> None:
    hook = inline_hook("http://127.0.0.1:9/")
    response = api_client.post(
        "/v1/jobs",
        json={**GOOD_JOB, "webhooks": [{"url": hook["url"], "events": ["job.*"]}]},
        headers=auth(token),
    )
    assert response.status_code == 202, response.text
    (shown,) = response.json()["webhooks"]
    assert shown["secret"].startswith("whsec_") and shown["events"] == ["job.*"]
    (row,) = deliveries(response.json()["id"])
    assert row.event_type == "job.queued" and row.secret == shown["secret"]
