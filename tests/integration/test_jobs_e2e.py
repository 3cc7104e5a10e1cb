"""End to end through the real API, Redis, Celery worker and engine, on PostgreSQL and SQLite."""

from __future__ import annotations

import io
import threading
import time
from datetime import datetime

import httpx
import pytest
from shared_helpers import TINY_CLASSIFY

from .sse import stream_events

pytestmark = pytest.mark.integration

_classify = pytest.importorskip("trainer_engine.models.classify")
if not hasattr(_classify, "ClassificationTrainer"):
    pytest.skip("the engine has no ClassificationTrainer yet", allow_module_level=True)


@pytest.fixture
def token(make_token) -> str:
    """Return a token of a fresh tenant."""
    return make_token()


@pytest.fixture
def api(live_api: str, token: str, workers):
    """Yield a client of the live API, with the module's workers running."""
    with httpx.Client(base_url=live_api, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        yield client


def submit(api: httpx.Client, trainer: str = "classify", **overrides) -> str:
    """POST a job and return its id."""
    body = {"trainer": trainer, "overrides": {**TINY_CLASSIFY, **overrides}}
    if trainer != "classify":
        body["task"] = "classify"
    response = api.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def wait_status(api: httpx.Client, job_id: str, statuses: set[str], timeout: float = 120.0) -> dict:
    """Poll the job until its status is one of `statuses`; return it."""
    deadline = time.monotonic() + timeout
    while True:
        job = api.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}"
        time.sleep(0.1)


def all_events(api: httpx.Client, job_id: str) -> list[dict]:
    """Return the job's events from the JSON endpoint."""
    return api.get(f"/v1/jobs/{job_id}/events", params={"limit": 1000}).json()["data"]


def key(event: dict) -> tuple:
    """Return what identifies an event across the JSON page and the stream."""
    return event["id"], event["seq"], event["type"], event["data"]


def wait_event(api: httpx.Client, job_id: str, event_type: str, timeout: float = 120.0) -> None:
    """Poll until the job has an event of `event_type`."""
    deadline = time.monotonic() + timeout
    while not any(e["type"] == event_type for e in all_events(api, job_id)):
        assert time.monotonic() < deadline, f"no {event_type}"
        time.sleep(0.1)


def test_two_epoch_job_succeeds_with_events_streamed_live_and_artifacts(api, live_api, token):
    job_id = submit(api, epochs=2)
    received: list[tuple[dict, float]] = []
    reader = threading.Thread(
        target=lambda: received.extend((e, time.time()) for e in stream_events(live_api, token, job_id))
    )
    reader.start()
    job = wait_status(api, job_id, {"succeeded", "failed", "cancelled"})
    reader.join(30)
    assert job["status"] == "succeeded", job["error"]
    assert (job["epoch"], job["epochs"], job["attempt"]) == (2, 2, 1)
    assert job["metrics"] and job["links"]["best"] and job["links"]["last"]

    events = all_events(api, job_id)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    types = [e["type"] for e in events]
    assert types[:2] == ["job.queued", "job.started"] and types[-1] == "job.succeeded"
    for event_type in ("on_train_epoch_end", "on_fit_epoch_end"):
        assert [e["data"]["epoch"] for e in events if e["type"] == event_type] == [1, 2]
    fit = [e for e in events if e["type"] == "on_fit_epoch_end"]
    assert all(e["data"]["metrics"] and e["data"]["epochs"] == 2 for e in fit)
    assert all("losses" in e["data"] for e in events if e["type"] == "on_train_epoch_end")
    # The best epoch is the one with the highest top-1 (the later one on a tie), not the last one.
    top1 = [e["data"]["metrics"]["metrics/accuracy_top1"] for e in fit]
    best_epoch = max(range(2), key=lambda i: (top1[i], i)) + 1
    assert job["best"] == {"metric": "accuracy_top1", "value": top1[best_epoch - 1], "epoch": best_epoch}

    # Live: the stream delivered every event, and the first epoch's before the job had finished.
    assert [key(e) for e, _ in received] == [key(e) for e in events]
    finished = datetime.fromisoformat(job["finished_at"].replace("Z", "+00:00")).timestamp()
    first_fit_at = next(at for e, at in received if e["type"] == "on_fit_epoch_end")
    assert first_fit_at < finished

    # Resuming with Last-Event-ID gives exactly the missed events.
    resumed = list(stream_events(live_api, token, job_id, last_event_id=3))
    assert [key(e) for e in resumed] == [key(e) for e in events[3:]]

    listing = api.get(f"/v1/jobs/{job_id}/artifacts").json()["data"]
    names = {a["name"] for a in listing}
    assert {"best.pt", "last.pt", "results.csv", "train.log"} <= names
    for name in ("best.pt", "last.pt", "results.csv"):
        download = api.get(f"/v1/jobs/{job_id}/artifacts/{name}")
        assert download.status_code == 200 and download.content, name
    rows = api.get(f"/v1/jobs/{job_id}/artifacts/results.csv").text.strip().splitlines()
    assert len(rows) == 3, rows  # the header and one row per epoch
    checkpoint = load_checkpoint(api, job_id)
    assert checkpoint["epoch"] == 1  # the last completed epoch, 0-based


def load_checkpoint(api: httpx.Client, job_id: str) -> dict:
    """Download and load the job's last.pt."""
    import torch

    weights = api.get(f"/v1/jobs/{job_id}/artifacts/last.pt")
    assert weights.status_code == 200
    checkpoint = torch.load(io.BytesIO(weights.content), weights_only=False, map_location="cpu")
    assert isinstance(checkpoint, dict)
    return checkpoint


def test_cancel_mid_run_ends_cancelled_at_a_batch_boundary_with_last_pt(api):
    job_id = submit(api, trainer="tests.integration.trainers:SlowTrainer", epochs=50)
    wait_event(api, job_id, "on_fit_epoch_end")
    response = api.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code in (200, 202), response.text
    job = wait_status(api, job_id, {"cancelled", "failed", "succeeded"}, timeout=60)
    assert job["status"] == "cancelled"
    # It stopped because of the cancel: at most the epoch in progress ended after it, not all 50.
    types = [e["type"] for e in all_events(api, job_id)]
    assert types[types.index("job.cancelling") :].count("on_fit_epoch_end") <= 1
    assert job["epoch"] < 50
    assert job["links"]["last"]
    assert all_events(api, job_id)[-1]["type"] == "job.cancelled"
    assert load_checkpoint(api, job_id)["epoch"] >= 0  # saved after at least one whole epoch


def test_trainer_that_raises_fails_the_job_with_its_message(api):
    job_id = submit(api, trainer="tests.integration.trainers:ExplodingTrainer", epochs=2)
    job = wait_status(api, job_id, {"failed", "succeeded", "cancelled"})
    assert job["status"] == "failed"
    assert job["error"] == "ValueError: exploding on purpose at epoch 1"
    last = all_events(api, job_id)[-1]
    assert last["type"] == "job.failed" and last["data"]["error"] == job["error"]
    log = api.get(f"/v1/jobs/{job_id}/artifacts/train.log").text
    assert "Traceback" in log and "exploding on purpose" in log


def test_a_job_fine_tunes_from_an_earlier_job_of_its_tenant_and_no_other_may(api, live_api, make_token):
    first = submit(api, epochs=1)
    assert wait_status(api, first, {"succeeded", "failed", "cancelled"})["status"] == "succeeded"
    second = submit(api, epochs=1, model=f"job:{first}/best.pt")
    job = wait_status(api, second, {"succeeded", "failed", "cancelled"})
    assert job["status"] == "succeeded", job["error"]
    assert job["overrides"]["model"] == f"job:{first}/best.pt"  # the job shows what the tenant wrote
    # The trainer was handed the checkpoint's path, resolved by the worker, and loaded its weights.
    trained_from = load_checkpoint(api, second)["train_args"]["model"]
    assert trained_from.endswith(f"/{first}/weights/best.pt")
    log = api.get(f"/v1/jobs/{second}/artifacts/train.log").text
    assert "Transferred" in log and f"job:{first}" not in log

    with httpx.Client(base_url=live_api, headers={"Authorization": f"Bearer {make_token()}"}) as other:
        body = {"trainer": "classify", "overrides": {**TINY_CLASSIFY, "model": f"job:{first}/best.pt"}}
        refused = other.post("/v1/jobs", json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json() == {
            "detail": f"override 'model': you have no job '{first}'; refer to one of your jobs "
            "(`trainforge jobs` lists them)",
            "key": "model",
        }
        assert other.get("/v1/jobs").json()["data"] == []


def test_killed_worker_mid_job_is_taken_over_and_resumes_from_last_pt(api, workers):
    while len(workers.running_jobs_workers()) < 2:
        workers.start_jobs_worker().wait_ready()
    job_id = submit(api, trainer="tests.integration.trainers:SlowTrainer", epochs=4)
    wait_event(api, job_id, "on_fit_epoch_end")
    owner = api.get(f"/v1/jobs/{job_id}").json()
    events = all_events(api, job_id)
    started = next(e for e in events if e["type"] == "job.started")
    workers.worker_of_pid(int(started["data"]["worker"].split(":")[1])).kill()
    job = wait_status(api, job_id, {"succeeded", "failed", "cancelled"}, timeout=120)
    assert job["status"] == "succeeded", job["error"]
    assert job["attempt"] == 2 and owner["attempt"] == 1
    events = all_events(api, job_id)
    assert "job.retrying" in [e["type"] for e in events]
    for event_type in ("on_train_epoch_end", "on_fit_epoch_end", "on_model_save"):
        assert sorted(e["data"]["epoch"] for e in events if e["type"] == event_type) == [1, 2, 3, 4], (
            event_type
        )
