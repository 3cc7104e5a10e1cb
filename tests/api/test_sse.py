"""SSE against a real uvicorn server: replay, live events, Last-Event-ID resume, end after terminal event."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest

from trainforge import events
from trainforge.auth import resolve_token
from trainforge.db.session import session_scope


@pytest.fixture(scope="module")
def service_env(service_env):
    """Fast heartbeats and DB polls so the test sees both within a second."""
    return {**service_env, "TRAINFORGE_SSE_HEARTBEAT_S": "1", "TRAINFORGE_SSE_POLL_S": "0.5"}


class SSE:
    """A minimal SSE reader over an httpx stream."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines
        self.comments = 0

    def next(self) -> dict | None:
        """Return the next event as {id, event, data}, or None when the stream ends."""
        fields: dict = {}
        for line in self.lines:
            if line == "":
                if fields:
                    return fields
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            key, _, value = line.partition(":")
            fields[key] = value.removeprefix(" ")
        return fields or None


def _emit(job_id: str, type_: str, data: dict | None = None, dedupe_key: str | None = None) -> None:
    with session_scope() as s:
        events.emit(s, job_id, type_, data or {}, dedupe_key=dedupe_key)


@pytest.fixture
def job(make_token, make_job):
    token = make_token()
    with session_scope() as s:
        tenant = resolve_token(s, token).tenant_name
    return token, make_job(tenant=tenant, status="running")


def _stream(live_api: str, token: str, job_id: str, **headers: str):
    return httpx.stream(
        "GET",
        f"{live_api}/v1/jobs/{job_id}/events",
        headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream", **headers},
        timeout=httpx.Timeout(10.0),
    )


def test_replay_live_and_resume(live_api, job) -> None:
    token, job_id = job
    for epoch in (1, 2, 3):
        _emit(job_id, "on_fit_epoch_end", {"epoch": epoch}, dedupe_key=f"on_fit_epoch_end:{epoch}")
    with _stream(live_api, token, job_id) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        reader = SSE(r.iter_lines())
        replay = [reader.next() for _ in range(3)]
        assert [e["id"] for e in replay] == ["1", "2", "3"]
        assert json.loads(replay[0]["data"])["data"] == {"epoch": 1}
        assert replay[0]["event"] == "on_fit_epoch_end"
        _emit(job_id, "on_fit_epoch_end", {"epoch": 4})
        _emit(
            job_id, "on_fit_epoch_end", {"epoch": 4}, dedupe_key="on_fit_epoch_end:3"
        )  # a no-op re-emission
        _emit(job_id, "on_model_save", {"epoch": 4})
        live = [reader.next() for _ in range(2)]
        assert [(e["id"], e["event"]) for e in live] == [("4", "on_fit_epoch_end"), ("5", "on_model_save")]
    # The client reconnects having seen 4: it gets 5 again, then what it missed, and the stream ends.
    _emit(job_id, "on_train_end")
    _emit(job_id, "job.succeeded")
    with _stream(live_api, token, job_id, **{"Last-Event-ID": "4"}) as r:
        reader = SSE(r.iter_lines())
        rest = []
        while (event := reader.next()) is not None:
            rest.append(event)
    assert [(e["id"], e["event"]) for e in rest] == [
        ("5", "on_model_save"),
        ("6", "on_train_end"),
        ("7", "job.succeeded"),
    ]


def test_after_query_and_end_on_terminal(live_api, job) -> None:
    token, job_id = job
    for i in range(4):
        _emit(job_id, "tick", {"i": i})
    with _stream(live_api, token, job_id) as r:
        reader = SSE(r.iter_lines())
        assert [reader.next()["id"] for _ in range(4)] == ["1", "2", "3", "4"]
        _emit(job_id, "job.failed", {"error": "boom"})
        assert reader.next()["event"] == "job.failed"
        assert reader.next() is None  # the server ended the stream
    r = httpx.get(
        f"{live_api}/v1/jobs/{job_id}/events?after=3",
        headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
        timeout=10,
    )
    ids = [line.split(":", 1)[1].strip() for line in r.text.splitlines() if line.startswith("id:")]
    assert ids == ["4", "5"]


def test_event_missed_by_redis_still_arrives_and_heartbeats(live_api, job) -> None:
    token, job_id = job
    with _stream(live_api, token, job_id) as r:
        reader = SSE(r.iter_lines())
        with session_scope() as s:
            events.emit(s, job_id, "tick")
            s.info.clear()  # drop the after-commit publish: only the DB knows about this event
        start = time.monotonic()
        event = reader.next()
        assert event["id"] == "1" and time.monotonic() - start < 10  # the DB re-read runs every 2 s
        time.sleep(1.5)
        _emit(job_id, "job.cancelled")
        assert reader.next()["event"] == "job.cancelled"
        assert reader.comments >= 1  # at least one heartbeat while idle


def test_json_pages_by_seq(live_api, job) -> None:
    token, job_id = job
    for i in range(5):
        _emit(job_id, "tick", {"i": i})
    headers = {"Authorization": f"Bearer {token}"}
    page = httpx.get(f"{live_api}/v1/jobs/{job_id}/events?limit=2", headers=headers).json()
    assert [e["seq"] for e in page["data"]] == [1, 2] and page["next_cursor"] == 2
    page = httpx.get(f"{live_api}/v1/jobs/{job_id}/events?limit=2&after=4", headers=headers).json()
    assert [e["seq"] for e in page["data"]] == [5] and page["next_cursor"] is None
