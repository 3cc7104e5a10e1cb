"""End to end with real processes: a TickTrainer job on a Celery worker, deliveries by a webhooks worker
(with the beat's sweep), real receivers on loopback, the live API and the CLI; PostgreSQL and SQLite."""

from __future__ import annotations

import statistics
import time

import pytest
from standardwebhooks.webhooks import Webhook

from tests.webhooks.helpers import (
    add_endpoint,
    attempts,
    deliveries,
    events_of,
    inline_hook,
    new_tenant,
    wait_for,
)
from tests.webhooks.receiver import Receiver, Reply
from trainforge import queue
from trainforge.cli import main as cli

pytestmark = pytest.mark.integration
TICK = "tests.worker.trainers:TickTrainer"


def run_job(make_job, tenant: str | None = None, **fields) -> str:
    """Insert a queued TickTrainer job and send run_job for it (what POST /v1/jobs does)."""
    overrides = {"epochs": 2, "batches": 2, "batch_s": 0.01, **fields.pop("overrides", {})}
    job_id = make_job(tenant=tenant, trainer_ref=TICK, overrides=overrides, **fields)
    queue.send(queue.RUN_JOB, [job_id], queue=queue.JOBS_QUEUE)
    return job_id


def job_done(job_id: str) -> bool:
    """Return whether the job has its terminal event."""
    return any(e.type in ("job.succeeded", "job.failed") for e in events_of(job_id))


def all_delivered(job_id: str) -> bool:
    """Return whether every delivery of the job is done."""
    rows = deliveries(job_id)
    return bool(rows) and all(d.status != "pending" for d in rows)


def test_events_arrive_signed_filtered_and_listed(
    settings_env, make_job, make_token, webhook_workers, live_api, capsys
) -> None:
    tenant, other = new_tenant(), new_tenant()
    token = make_token(tenant)
    flaky = Receiver(lambda _r, n: Reply(503) if n < 3 else Reply(200))  # fails 3 times, then accepts
    with (
        Receiver() as inline_rx,
        Receiver() as tenant_rx,
        Receiver() as other_rx,
        Receiver() as untagged_rx,
        flaky,
    ):
        hook = inline_hook(inline_rx.url + "/ci", ["on_fit_epoch_end", "job.succeeded"])
        flaky_hook = inline_hook(flaky.url, ["job.succeeded"])
        _, tenant_secret = add_endpoint(tenant, tenant_rx.url, ["*"], tags=["ci"])
        add_endpoint(other, other_rx.url)
        add_endpoint(tenant, untagged_rx.url, tags=["nightly"])
        job_id = run_job(make_job, tenant, webhooks=[hook, flaky_hook], tags=["ci"])
        wait_for(lambda: job_done(job_id) and all_delivered(job_id), what="the job and its deliveries")
        types = [e.type for e in events_of(job_id)]
        got_inline = inline_rx.wait_for(3)
        got_tenant = tenant_rx.wait_for(len(types))
        got_flaky = flaky.wait_for(4)
        time.sleep(0.2)
        assert other_rx.requests == [] and untagged_rx.requests == []
    inline_bodies = [Webhook(hook["secret"]).verify(r.body, r.headers) for r in got_inline]
    assert [b["type"] for b in inline_bodies] == ["on_fit_epoch_end", "on_fit_epoch_end", "job.succeeded"]
    epoch_two = inline_bodies[1]["data"]
    assert epoch_two["job_id"] == job_id and epoch_two["epoch"] == 2 and epoch_two["epochs"] == 2
    for key in ("seq", "metrics", "losses", "lr", "best", "last"):
        assert key in epoch_two, key
    tenant_bodies = [Webhook(tenant_secret).verify(r.body, r.headers) for r in got_tenant]
    assert sorted(b["data"]["seq"] for b in tenant_bodies) == list(range(1, len(types) + 1))
    (retried,) = [d for d in deliveries(job_id) if d.url == flaky.url]
    assert retried.status == "succeeded" and [a.status_code for a in attempts(retried.id)] == [
        503,
        503,
        503,
        200,
    ]
    assert len({r.headers["webhook-id"] for r in got_flaky}) == 1  # stable across retries
    others = [d for d in deliveries(job_id) if d.id != retried.id]
    assert all(d.status == "succeeded" and len(attempts(d.id)) == 1 for d in others)

    assert cli(["deliveries", job_id, "--url", live_api, "--token", token]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:5] == ["DELIVERY", "EVENT", "RECEIVER", "STATUS", "TRIES"]
    assert len(table) == 1 + len(deliveries(job_id))
    assert sum("succeeded" in line and inline_rx.url in line for line in table) == 3
    assert any(flaky.url in line and " 4 " in line and "200" in line for line in table)


def epoch_seconds(job_id: str) -> list[float]:
    """Return how long each epoch trained, from its start and end events."""
    starts = {e.data["epoch"]: e.created_at for e in events_of(job_id) if e.type == "on_train_epoch_start"}
    ends = {e.data["epoch"]: e.created_at for e in events_of(job_id) if e.type == "on_train_epoch_end"}
    return [(ends[n] - starts[n]).total_seconds() for n in sorted(ends)]


def test_a_slow_receiver_does_not_slow_training(settings_env, make_job, webhook_workers) -> None:
    shape = {"epochs": 3, "batches": 4, "batch_s": 0.05}
    baseline = run_job(make_job, overrides=shape)
    wait_for(lambda: job_done(baseline), what="the baseline job")
    with Receiver(lambda _r, _n: Reply(200, delay_s=2.0)) as rx:
        job_id = run_job(make_job, overrides=shape, webhooks=[inline_hook(rx.url)])
        wait_for(lambda: job_done(job_id), what="the job with a slow receiver")
        finished_with = len(rx.requests)
    events = len(events_of(job_id))
    assert finished_with < events / 2, "training waited for the receiver"
    slow, fast = epoch_seconds(job_id), epoch_seconds(baseline)
    assert statistics.median(slow) < statistics.median(fast) + 0.15, (slow, fast)
    assert max(slow) < 1.0, slow  # each request takes 2 s: an epoch that waited for one would show it


def test_redis_stopped_and_restarted_mid_job_loses_no_delivery(
    settings_env, make_job, webhook_workers, redis_server
) -> None:
    with Receiver() as rx:
        job_id = run_job(
            make_job, overrides={"epochs": 6, "batches": 3, "batch_s": 0.1}, webhooks=[inline_hook(rx.url)]
        )
        rx.wait_for(2, timeout=30)
        redis_server.stop()
        time.sleep(1.0)  # training goes on, events are stored, their sends fail
        redis_server.start()
        wait_for(lambda: job_done(job_id), timeout=60, what="the job")
        try:
            wait_for(lambda: all_delivered(job_id), timeout=60, what="every delivery")
        except AssertionError:  # say where they are stuck, and what the webhooks worker said
            rows = [(d.status, d.attempts, d.locked_until, d.last_error) for d in deliveries(job_id)]
            raise AssertionError(f"{rows}\n{webhook_workers[1].log()[-4000:]}") from None
        received = {r.headers["webhook-id"] for r in rx.requests}
    rows = deliveries(job_id)
    assert len(rows) == len(events_of(job_id))
    assert {d.webhook_id for d in rows} == received and all(d.status == "succeeded" for d in rows)
