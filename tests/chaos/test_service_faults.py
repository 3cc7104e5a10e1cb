"""Chaos trials that hurt what the workers depend on: PostgreSQL, Redis, the API, the webhook receiver."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from shared_helpers import free_port

from tests.webhooks.receiver import Receiver
from trainforge.client import TrainforgeClient

from .checks import (
    assert_every_job_consistent,
    assert_trial,
    deliveries_of,
    events_of,
    fit_epochs,
    job_body,
    job_row,
    new_hook,
    submit,
    wait_ended,
)
from .cluster import Cluster, wait_for

# Generous bounds: the trials share two cores with whatever else runs.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

# The outage is 20 s against the default 60 s lease: a third of it, shorter than the half
# lease after which a supervisor must stop its child. Scaled: a 30 s lease, and an outage of at
# least 3 s that lasts until an epoch has ended while the service was away, 10 s (a third) at most.
# On an idle machine an epoch takes well under a second, so the outage is 3 s; on a loaded one the
# outage stretches with the epochs instead of passing between two of them.
OUTAGE_LEASE_S = 30.0
OUTAGE_MIN_S, OUTAGE_MAX_S = 3.0, 10.0
OUTAGE_EPOCHS = 6


def csv_rows(path: Path) -> int:
    """Return how many epochs the engine wrote to results.csv (a header, then one row per epoch)."""
    return max(0, len(path.read_text().strip().splitlines()) - 1) if path.exists() else 0


def outage(cluster: Cluster, job_id: str) -> int:
    """Wait OUTAGE_MIN_S, and on until an epoch ends (OUTAGE_MAX_S at most); return the epochs ended."""
    results = cluster.artifacts / job_id / "results.csv"
    began, rows = time.monotonic(), csv_rows(results)
    while time.monotonic() - began < OUTAGE_MAX_S:
        if time.monotonic() - began >= OUTAGE_MIN_S and csv_rows(results) > rows:
            break
        time.sleep(0.1)
    return csv_rows(results) - rows


def train_log(cluster: Cluster, job_id: str) -> str:
    """Return the end of the job's training log."""
    path = cluster.artifacts / job_id / "train.log"
    return path.read_text(errors="replace")[-3000:] if path.exists() else "(no train.log)"


def wait_fit_epoch(cluster: Cluster, job_id: str, epoch: int) -> None:
    """Wait until `epoch`'s on_fit_epoch_end is stored."""
    wait_for(lambda: epoch in fit_epochs(cluster.db, job_id), 120, f"epoch {epoch} to end")


def test_postgres_stopped_mid_run(cluster_factory: Cluster, receiver: Receiver) -> None:
    cluster = cluster_factory
    cluster.start({"TRAINFORGE_LEASE_TIMEOUT_S": str(OUTAGE_LEASE_S)})
    hook = new_hook(receiver.url + "/hook")
    job_id = submit(cluster, OUTAGE_EPOCHS, hook)
    wait_fit_epoch(cluster, job_id, 2)
    cluster.postgres.stop()
    ended_while_down = outage(cluster, job_id)
    cluster.postgres.start()
    # The trial means something only if training went on and finished an epoch during the outage.
    assert ended_while_down >= 1, (
        f"no epoch ended in the {OUTAGE_MAX_S} s the database was down:\n{train_log(cluster, job_id)}"
    )
    assert_trial(cluster, job_id, epochs=OUTAGE_EPOCHS, hook=hook, receiver=receiver)
    # Shorter than the lease: training went on through the outage, nobody took the job over.
    assert job_row(cluster.db, job_id).attempt == 1
    assert_every_job_consistent(cluster)


def test_redis_stopped_mid_run_and_a_job_posted_while_down(cluster: Cluster, receiver: Receiver) -> None:
    hook, late_hook = new_hook(receiver.url + "/hook"), new_hook(receiver.url + "/late")
    job_id = submit(cluster, 6, hook)
    wait_fit_epoch(cluster, job_id, 2)
    cluster.redis.stop()  # no persistence: every queued message (deliveries, run_job) is lost
    with cluster.client() as api:
        response = api.post("/v1/jobs", json=job_body(4, late_hook))
    assert response.status_code == 202, response.text
    late_id = response.json()["id"]
    ended_while_down = outage(cluster, job_id)
    cluster.redis.start()
    assert ended_while_down >= 1, (
        f"no epoch ended in the {OUTAGE_MAX_S} s Redis was down:\n{train_log(cluster, job_id)}"
    )
    assert_trial(cluster, job_id, epochs=6, hook=hook, receiver=receiver)
    assert job_row(cluster.db, job_id).attempt == 1
    # Re-sent within seconds of Redis coming back (TRAINFORGE_RESEND_WAITING_AFTER_S is 3 s here).
    wait_for(lambda: job_row(cluster.db, late_id).status != "queued", 60, "the late job to be taken")
    assert_trial(cluster, late_id, epochs=4, hook=late_hook, receiver=receiver)
    assert_every_job_consistent(cluster)


def test_api_killed_mid_sse_and_the_client_resumes(cluster: Cluster) -> None:
    job_id = submit(cluster, 6, None)
    received: list[dict[str, Any]] = []
    failures: list[BaseException] = []
    first_epoch = threading.Event()

    def follow() -> None:
        try:
            with TrainforgeClient(cluster.api.url, cluster.token) as client:
                for event in client.stream_events(job_id, read_timeout=30, max_reconnect_s=60):
                    received.append(event)
                    if event["type"] == "on_fit_epoch_end":
                        first_epoch.set()
        except BaseException as exc:
            failures.append(exc)
            first_epoch.set()

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    assert first_epoch.wait(120), "no epoch event on the stream"
    cluster.api.kill()  # mid-stream: the connection is cut without a goodbye
    cut_after = len(received)
    time.sleep(1.0)
    cluster.api.start()
    cluster.api.wait_ready()
    reader.join(180)
    assert not reader.is_alive(), "the stream never ended"
    assert not failures, failures
    stored = events_of(cluster.db, job_id)
    assert job_row(cluster.db, job_id).status == "succeeded"
    assert cut_after < len(stored), "the job had ended before the API was killed"
    # Resumed with Last-Event-ID: each event exactly once, in order, none missing.
    assert [e["seq"] for e in received] == [e.seq for e in stored]
    assert [e["id"] for e in received] == [e.id for e in stored]
    assert_trial(cluster, job_id, epochs=6)
    assert_every_job_consistent(cluster)


def test_webhook_receiver_down_for_the_whole_job_then_up(cluster: Cluster) -> None:
    port = free_port()  # nothing listens here until the job has ended
    hook = new_hook(f"http://127.0.0.1:{port}/hook")
    job_id = submit(cluster, 4, hook)
    wait_ended(cluster, job_id)
    refused = [d for d in deliveries_of(cluster.db, job_id) if d.attempts > 0]
    assert refused and all(d.status == "pending" for d in refused), "a delivery was not even tried"
    with Receiver(port=port) as receiver:
        assert_trial(cluster, job_id, epochs=4, hook=hook, receiver=receiver)
    assert_every_job_consistent(cluster)
