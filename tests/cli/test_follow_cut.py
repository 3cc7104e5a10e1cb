"""Following across the server's stream lifetime: every stream ends after 1 s here, and `trainforge events
--follow` and `trainforge logs --follow` reconnect where they were, with no gap and no duplicate."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from trainforge.auth import resolve_token
from trainforge.cli import main as cli
from trainforge.db.models import Job
from trainforge.db.session import session_scope
from trainforge.events import emit

LIFETIME_S = 1.0


@pytest.fixture(scope="module")
def service_env(service_env):
    """Streams live one second; SSE re-reads the database every 0.2 s."""
    return {
        **service_env,
        "TRAINFORGE_STREAM_MAX_LIFETIME_S": str(LIFETIME_S),
        "TRAINFORGE_SSE_POLL_S": "0.2",
    }


@pytest.fixture
def running(token, make_job) -> str:
    """Return a running job of the token's tenant."""
    with session_scope() as s:
        tenant = resolve_token(s, token).tenant_name
    return make_job(tenant=tenant, status="running")


def in_background(work) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_a_stream_ends_cleanly_at_its_lifetime_and_resumes_from_last_event_id(
    live_api, token, running
) -> None:
    with session_scope() as s:
        emit(s, running, "on_fit_epoch_end", {"epoch": 1})
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    started = time.monotonic()
    with httpx.stream("GET", f"{live_api}/v1/jobs/{running}/events", headers=headers, timeout=10) as r:
        body = "".join(r.iter_text())  # returns once the server ends the stream
    lasted = time.monotonic() - started
    assert r.status_code == 200 and "id: 1" in body and "job.succeeded" not in body
    assert LIFETIME_S <= lasted < LIFETIME_S + 3, lasted
    with session_scope() as s:
        emit(s, running, "on_fit_epoch_end", {"epoch": 2})
    with httpx.stream(
        "GET", f"{live_api}/v1/jobs/{running}/events", headers={**headers, "Last-Event-ID": "1"}, timeout=10
    ) as r:
        again = "".join(r.iter_text())
    assert "id: 2" in again and "id: 1\r" not in again


def test_events_follow_crosses_lifetime_cuts_without_gap_or_duplicate(
    live_api, token, running, capsys
) -> None:
    def produce() -> None:
        for epoch in range(1, 31):  # about 3 s of events: three lifetimes or more
            with session_scope() as s:
                emit(s, running, "on_fit_epoch_end", {"epoch": epoch})
            time.sleep(0.1)
        with session_scope() as s:
            s.execute(update(Job).where(Job.id == running).values(status="succeeded"))
            emit(s, running, "job.succeeded", {})

    producer = in_background(produce)
    started = time.monotonic()
    assert cli(["events", running, "--follow", "--json", "--url", live_api, "--token", token]) == 0
    producer.join(10)
    assert time.monotonic() - started > 2 * LIFETIME_S  # so the server cut the stream at least twice
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    epochs = [e["data"]["epoch"] for e in events if e["type"] == "on_fit_epoch_end"]
    assert epochs == list(range(1, 31)) and events[-1]["type"] == "job.succeeded"


def test_logs_follow_crosses_lifetime_cuts_without_gap_or_duplicate(
    live_api, settings_env, token, running, capsys
) -> None:
    log = Path(settings_env.artifacts_dir) / running / "train.log"
    log.parent.mkdir(parents=True, exist_ok=True)

    def write() -> None:
        for n in range(30):
            with log.open("a", encoding="utf-8") as fh:
                fh.write(f"line {n} \u00e9poque {'x' * n}\n")  # a two-byte character in every line
            time.sleep(0.1)
        with session_scope() as s:
            s.execute(update(Job).where(Job.id == running).values(status="succeeded"))

    writer = in_background(write)
    started = time.monotonic()
    assert cli(["logs", running, "--follow", "--url", live_api, "--token", token]) == 0
    writer.join(10)
    assert time.monotonic() - started > 2 * LIFETIME_S
    assert capsys.readouterr().out == log.read_text(encoding="utf-8")
