"""The Python client against a real API (uvicorn subprocess) on PostgreSQL and SQLite, and real Redis.

No worker consumes the jobs here, so they stay queued: what needs training is in test_follow_live.py.
"""

from __future__ import annotations

import uuid

import pytest

from trainforge.client import TrainforgeClient, TrainforgeError

pytestmark = pytest.mark.integration

JOB = {"data": "synthetic:classify", "epochs": 2, "imgsz": 32}


def test_submit_status_list_and_idempotency(client: TrainforgeClient) -> None:
    tag = f"t-{uuid.uuid4().hex[:6]}"
    job = client.submit("classify", JOB, name="first", tags=[tag], idempotency_key="k-1")
    assert job["status"] == "queued"
    assert job["links"]["events"] == f"/v1/jobs/{job['id']}/events"

    shown = client.status(job["id"])
    assert (shown["id"], shown["name"], shown["trainer"], shown["status"]) == (
        job["id"],
        "first",
        "classify",
        "queued",
    )
    assert shown["overrides"] == JOB
    assert shown["tags"] == [tag]

    again = client.submit("classify", JOB, name="first", tags=[tag], idempotency_key="k-1")
    assert again["id"] == job["id"]

    other = client.submit("classify", {**JOB, "epochs": 1})
    assert [j["id"] for j in client.list()] == [other["id"], job["id"]]  # newest first
    assert [j["id"] for j in client.list(tag=tag)] == [job["id"]]
    assert [j["id"] for j in client.list(status="queued", limit=1)] == [other["id"]]
    assert client.list(status="running") == []


def test_cancel_a_queued_job_and_read_its_events(client: TrainforgeClient) -> None:
    job = client.submit("classify", JOB)
    cancelled = client.cancel(job["id"])
    assert cancelled["status"] == "cancelled"
    assert client.status(job["id"])["status"] == "cancelled"

    events = client.events(job["id"])
    types = [event["type"] for event in events]
    assert types[-1] == "job.cancelled"
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    # The live stream replays the same events and ends at the terminal one.
    assert [event["seq"] for event in client.stream_events(job["id"])] == [event["seq"] for event in events]
    # Resuming after the first event gives the rest, none twice.
    rest = list(client.stream_events(job["id"], last_event_id=1))
    assert [event["seq"] for event in rest] == [event["seq"] for event in events[1:]]
    assert client.events(job["id"], after=len(events)) == []


def test_trainers_lists_builtins_with_their_override_keys(client: TrainforgeClient) -> None:
    trainers = {trainer["name"]: trainer for trainer in client.trainers()}
    assert "classify" in trainers
    assert "epochs" in trainers["classify"]["overrides"]


def test_artifacts_of_a_queued_job(client: TrainforgeClient, tmp_path) -> None:
    job = client.submit("classify", JOB)
    assert client.artifacts(job["id"]) == []
    with pytest.raises(TrainforgeError, match=r"has no artifact 'best\.pt'") as info:
        client.download(job["id"], "best.pt", tmp_path)
    assert info.value.status == 404
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(TrainforgeError, match="has no log yet"):
        client.logs(job["id"])


@pytest.mark.parametrize(
    ("trainer", "overrides", "status", "message"),
    [
        ("classify", {"epoch": 3}, 422, "did you mean 'epochs'?"),
        ("classify", {"epochs": "many"}, 422, "epochs"),
        ("nope", {}, 422, "nope"),
        ("os:system", {}, 422, "not under an allowed prefix"),
    ],
)
def test_bad_submissions_raise_the_api_message(
    client: TrainforgeClient, trainer: str, overrides: dict, status: int, message: str
) -> None:
    with pytest.raises(TrainforgeError, match=message) as info:
        client.submit(trainer, overrides)
    assert info.value.status == status
    assert client.list() == []  # nothing half-made


def test_unknown_job_bad_token_and_other_tenant(client: TrainforgeClient, live_api: str, make_token) -> None:
    with pytest.raises(TrainforgeError) as info:
        client.status("0" * 32)
    assert info.value.status == 404
    job = client.submit("classify", JOB)
    with TrainforgeClient(live_api, make_token()) as stranger:
        with pytest.raises(TrainforgeError) as info:
            stranger.status(job["id"])
        assert info.value.status == 404
    with TrainforgeClient(live_api, "tf_not-a-real-token-at-all") as bad:
        with pytest.raises(TrainforgeError) as info:
            bad.list()
        assert info.value.status == 401
        assert info.value.message
