"""The outbox and the dispatcher against a real database and real receivers on loopback (in-process)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook

from tests.webhooks.helpers import (
    add_endpoint,
    attempts,
    deliveries,
    delivery,
    drive,
    emit_event,
    endpoint,
    events_of,
    inline_hook,
    new_tenant,
)
from tests.webhooks.receiver import Receiver, Reply
from trainforge.db.models import WebhookDelivery, WebhookEndpoint
from trainforge.db.session import session_scope
from trainforge.events import emit
from trainforge.queue import WEBHOOKS_QUEUE
from trainforge.webhooks import dispatch, service

EPOCH = {"epoch": 2, "epochs": 3, "metrics": {"metrics/accuracy_top1": 0.5}, "losses": {"train/loss": 0.4}}


def failing(times: int, status: int = 500, headers: dict[str, str] | None = None):
    """Return a receiver script that answers `status` `times` times, then 200."""
    return lambda _req, n: Reply(status, headers or {}) if n < times else Reply(200, body=b"thanks")


def test_emit_adds_one_delivery_per_matching_receiver(settings_env, make_job) -> None:
    tenant, other = new_tenant(), new_tenant()
    job_id = make_job(
        tenant=tenant,
        tags=["prod"],
        webhooks=[
            inline_hook("http://127.0.0.1:9/a", ["on_fit_epoch_end"]),
            inline_hook("http://127.0.0.1:9/b", ["job.*"]),
        ],
    )
    every, _ = add_endpoint(tenant, "http://127.0.0.1:9/every")
    prod_done, _ = add_endpoint(tenant, "http://127.0.0.1:9/prod", ["job.succeeded"], tags=["prod"])
    add_endpoint(tenant, "http://127.0.0.1:9/dev", tags=["dev"])
    add_endpoint(other, "http://127.0.0.1:9/other-tenant")

    emit_event(job_id, "on_fit_epoch_end", EPOCH)
    got = {(d.url or d.endpoint_id) for d in deliveries(job_id)}
    assert got == {"http://127.0.0.1:9/a", every}
    emit_event(job_id, "job.succeeded")
    later = [d for d in deliveries(job_id) if d.event_type == "job.succeeded"]
    assert {(d.url or d.endpoint_id) for d in later} == {"http://127.0.0.1:9/b", every, prod_done}
    assert all(d.status == "pending" and d.attempts == 0 and d.webhook_id.startswith("msg_") for d in later)


def test_no_delivery_survives_a_rolled_back_event(settings_env, make_job) -> None:
    job_id = make_job(webhooks=[inline_hook("http://127.0.0.1:9/a")])
    with pytest.raises(RuntimeError), session_scope() as s:
        emit(s, job_id, "on_train_start", {})
        raise RuntimeError("the event's transaction fails")
    assert deliveries(job_id) == []


def test_delivery_is_signed_per_standard_webhooks_and_carries_the_event(settings_env, make_job) -> None:
    with Receiver() as rx:
        hook = inline_hook(rx.url + "/hook", ["on_fit_epoch_end"])
        job_id = make_job(webhooks=[hook])
        emit_event(job_id, "on_fit_epoch_end", EPOCH)
        (row,) = deliveries(job_id)
        assert drive(row.id) == ["sent"]
        (req,) = rx.wait_for(1)
    body = Webhook(hook["secret"]).verify(req.body, req.headers)
    assert body["type"] == "on_fit_epoch_end" and body["timestamp"].endswith("Z")
    assert body["data"]["job_id"] == job_id and body["data"]["seq"] == 1 and body["data"]["epoch"] == 2
    assert body["data"]["metrics"] == EPOCH["metrics"] and body["data"]["losses"] == EPOCH["losses"]
    assert req.headers["webhook-id"] == row.webhook_id
    (attempt,) = attempts(row.id)
    assert attempt.status_code == 200 and attempt.latency_ms > 0 and attempt.response_excerpt == "ok"
    assert delivery(row.id).status == "succeeded"


def test_receiver_failing_three_times_then_accepting_gets_four_attempts(settings_env, make_job) -> None:
    with Receiver(failing(3)) as rx:
        job_id = make_job(webhooks=[inline_hook(rx.url)])
        emit_event(job_id, "job.succeeded")
        (row,) = deliveries(job_id)
        assert drive(row.id) == ["retry", "retry", "retry", "sent"]
        reqs = rx.wait_for(4)
    assert [a.status_code for a in attempts(row.id)] == [500, 500, 500, 200]
    assert [a.error for a in attempts(row.id)][:3] == ["HTTP 500"] * 3
    assert len({r.headers["webhook-id"] for r in reqs}) == 1  # stable across retries
    final = delivery(row.id)
    assert final.status == "succeeded" and final.attempts == 4 and final.next_attempt_at is None


def test_delivery_fails_once_the_schedule_is_spent(settings_env, make_job) -> None:
    with Receiver(lambda _r, _n: Reply(500, body=b"boom")) as rx:
        job_id = make_job(webhooks=[inline_hook(rx.url)])
        emit_event(job_id, "job.failed")
        (row,) = deliveries(job_id)
        assert drive(row.id) == ["retry", "retry", "retry", "failed"]
    final = delivery(row.id)
    assert final.status == "failed" and final.last_status_code == 500 and final.attempts == 4
    assert attempts(row.id)[-1].response_excerpt == "boom"


def test_410_disables_the_endpoint_and_records_an_event(settings_env, make_job) -> None:
    tenant = new_tenant()
    with Receiver(lambda _r, _n: Reply(410)) as rx:
        endpoint_id, _ = add_endpoint(tenant, rx.url)
        job_id = make_job(tenant=tenant)
        emit_event(job_id, "on_train_start")
        (row,) = deliveries(job_id)
        assert drive(row.id) == ["failed"]
    gone = endpoint(endpoint_id)
    assert not gone.enabled and "410" in (gone.disabled_reason or "")
    (event,) = [e for e in events_of(job_id) if e.type == "webhook.endpoint_disabled"]
    assert event.data["endpoint_id"] == endpoint_id and "410" in event.data["reason"]
    emit_event(job_id, "on_train_end")
    assert [d.id for d in deliveries(endpoint_id=endpoint_id)] == [row.id]  # no new delivery


def test_410_stops_an_inline_webhook_for_the_rest_of_the_job(settings_env, make_job) -> None:
    with Receiver(lambda _r, _n: Reply(410)) as rx:
        job_id = make_job(webhooks=[inline_hook(rx.url)])
        emit_event(job_id, "on_train_start")
        (row,) = deliveries(job_id)
        assert drive(row.id) == ["failed"]
        emit_event(job_id, "on_train_end")
    assert [d.id for d in deliveries(job_id)] == [row.id]


def test_a_stored_inline_secret_that_cannot_sign_fails_once_with_the_reason(settings_env, make_job) -> None:
    # Rows stored before submit checked secrets: the delivery must end, not fail after every claim.
    with Receiver() as rx:
        job_id = make_job(webhooks=[{**inline_hook(rx.url), "secret": "whsec_abc"}])
        emit_event(job_id, "on_train_start")
        (row,) = deliveries(job_id)
        assert drive(row.id) == ["failed"]
        assert rx.requests == []
    done = delivery(row.id)
    assert (done.status, done.last_error) == (
        "failed",
        "the job's inline webhook secret cannot sign: webhook secret is not valid base64 after 'whsec_': "
        "Incorrect padding",
    )
    assert done.next_attempt_at is None or dispatch.deliver(row.id) == "not-due"  # not offered again


def test_retry_after_is_honoured(settings_env, make_job, monkeypatch) -> None:
    from trainforge.settings import get_settings

    monkeypatch.setenv("TRAINFORGE_WEBHOOK_RETRY_SCHEDULE_S", "0,1,100")
    get_settings.cache_clear()
    with Receiver(failing(1, 429, {"retry-after": "7"})) as rx:
        job_id = make_job(webhooks=[inline_hook(rx.url)])
        emit_event(job_id, "on_train_start")
        (row,) = deliveries(job_id)
        before = datetime.now(UTC)
        assert dispatch.deliver(row.id) == "retry"
    wait = (delivery(row.id).next_attempt_at - before).total_seconds()
    assert 6.5 < wait < 8.5, wait
    assert attempts(row.id)[0].error == "HTTP 429 (Retry-After: 7)"


def test_an_endpoint_failing_for_days_is_disabled(settings_env, make_job) -> None:
    tenant = new_tenant()
    with Receiver(lambda _r, _n: Reply(503)) as rx:
        endpoint_id, _ = add_endpoint(tenant, rx.url)
        with session_scope() as s:
            s.get(WebhookEndpoint, endpoint_id).failing_since = datetime.now(UTC) - timedelta(days=6)
        job_id = make_job(tenant=tenant)
        emit_event(job_id, "on_train_start")
        (row,) = deliveries(job_id)
        assert dispatch.deliver(row.id) == "retry"
    assert "failed for more than 5 days" in endpoint(endpoint_id).disabled_reason
    assert any(e.type == "webhook.endpoint_disabled" for e in events_of(job_id))
    assert drive(row.id) == ["failed"]  # the next attempt finds the endpoint disabled
    assert delivery(row.id).last_error.startswith("endpoint disabled")


def test_rotation_signs_with_both_secrets_during_the_grace_period(settings_env, make_job) -> None:
    tenant = new_tenant()
    with Receiver() as rx:
        endpoint_id, old = add_endpoint(tenant, rx.url)
        with session_scope() as s:
            new = service.rotate_secret(s, s.get(WebhookEndpoint, endpoint_id), grace_s=60).secret
        job_id = make_job(tenant=tenant)
        emit_event(job_id, "on_train_start")
        drive(deliveries(job_id)[0].id)
        with session_scope() as s:
            newest = service.rotate_secret(s, s.get(WebhookEndpoint, endpoint_id), grace_s=0).secret
        emit_event(job_id, "on_train_end")
        drive(deliveries(job_id)[1].id)
        during, after = rx.wait_for(2)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(during.body, during.headers)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    Webhook(newest).verify(after.body, after.headers)
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(new).verify(after.body, after.headers)


def test_sweep_resends_due_deliveries_whose_message_was_lost_but_not_those_in_flight(
    settings_env, make_job, redis_url
) -> None:
    redis.Redis.from_url(redis_url).delete(WEBHOOKS_QUEUE)  # no worker here: drop earlier tests' messages
    job_id = make_job(webhooks=[inline_hook("http://127.0.0.1:9/")])
    for event_type in ("on_train_start", "on_train_end"):
        emit_event(job_id, event_type)
    lost, in_flight = deliveries(job_id)
    now = datetime.now(UTC)
    with session_scope() as s:
        s.execute(update(WebhookDelivery).where(WebhookDelivery.id == lost.id).values(locked_until=now))
        claimed = {
            "next_attempt_at": now + timedelta(seconds=60),
            "locked_until": now + timedelta(seconds=60),
        }
        s.execute(update(WebhookDelivery).where(WebhookDelivery.id == in_flight.id).values(**claimed))
    assert dispatch.sweep() >= 1  # other tests' leftovers in this database may be due too
    leased = delivery(lost.id).locked_until
    assert leased > now + timedelta(seconds=1)  # leased again, so the next sweep leaves it alone
    assert delivery(in_flight.id).locked_until == claimed["locked_until"]
    dispatch.sweep()
    assert delivery(lost.id).locked_until == leased


def test_sweep_adds_no_duplicates_while_workers_are_behind(settings_env, make_job, redis_url) -> None:
    job_id = make_job(webhooks=[inline_hook("http://127.0.0.1:9/")])
    emit_event(job_id, "on_train_start")
    (row,) = deliveries(job_id)
    with session_scope() as s:
        stale = {"locked_until": datetime.now(UTC) - timedelta(seconds=1)}
        s.execute(update(WebhookDelivery).where(WebhookDelivery.id == row.id).values(**stale))
    backlog = redis.Redis.from_url(redis_url)
    backlog.delete(WEBHOOKS_QUEUE)
    for _ in range(dispatch.SWEEP_BATCH):
        dispatch.send_delivery("queued-" + row.id)  # messages waiting for a worker, not lost
    assert dispatch.queued_messages() == dispatch.SWEEP_BATCH
    assert dispatch.sweep() == 0 and delivery(row.id).locked_until < datetime.now(UTC)
    backlog.delete(WEBHOOKS_QUEUE)  # the broker restarted empty: now it is resent
    assert dispatch.sweep() >= 1 and delivery(row.id).locked_until > datetime.now(UTC)


def test_two_messages_for_one_delivery_send_it_once(settings_env, make_job) -> None:
    with Receiver(lambda _r, _n: Reply(200, delay_s=0.3)) as rx:
        job_id = make_job(webhooks=[inline_hook(rx.url)])
        emit_event(job_id, "on_train_start")
        (row,) = deliveries(job_id)
        outcomes: list[str] = []
        threads = [
            threading.Thread(target=lambda: outcomes.append(dispatch.deliver(row.id))) for _ in range(3)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(0.2)
        assert len(rx.requests) == 1
    assert sorted(outcomes).count("sent") == 1 and len(attempts(row.id)) == 1


def test_redirect_to_a_private_address_is_refused_and_explained(settings_env, make_job) -> None:
    location = {"location": "http://169.254.169.254/latest/meta-data/"}
    with Receiver(lambda _r, _n: Reply(302, location)) as rx:
        job_id = make_job(webhooks=[inline_hook(rx.url)])
        emit_event(job_id, "on_train_start")
        (row,) = deliveries(job_id)
        assert dispatch.deliver(row.id) == "retry"
        assert len(rx.requests) == 1
    error = attempts(row.id)[0].error
    assert "not followed" in error and "cloud metadata" in error


def test_redelivery_sends_the_same_webhook_id_again(settings_env, make_job) -> None:
    with Receiver() as rx:
        job_id = make_job(webhooks=[inline_hook(rx.url)])
        emit_event(job_id, "job.succeeded")
        (row,) = deliveries(job_id)
        drive(row.id)
        with session_scope() as s:
            service.redeliver(s, s.get(WebhookDelivery, row.id))
        assert drive(row.id) == ["sent"]
        first, second = rx.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == row.webhook_id
    assert json.loads(first.body) == json.loads(second.body)
    assert len(attempts(row.id)) == 2


def test_a_success_ends_an_endpoints_failing_streak(settings_env, make_job) -> None:
    tenant = new_tenant()
    with Receiver() as rx:
        endpoint_id, _ = add_endpoint(tenant, rx.url)
        with session_scope() as s:
            s.get(WebhookEndpoint, endpoint_id).failing_since = datetime.now(UTC) - timedelta(hours=1)
        job_id = make_job(tenant=tenant)
        emit_event(job_id, "on_train_start")
        assert drive(deliveries(job_id)[0].id) == ["sent"]
    assert endpoint(endpoint_id).failing_since is None and endpoint(endpoint_id).enabled


def test_warming_a_process_claims_and_changes_nothing(settings_env, make_job) -> None:
    with Receiver() as rx:
        job_id = make_job(webhooks=[inline_hook(rx.url + "/hook", ["on_fit_epoch_end"])])
        emit_event(job_id, "on_fit_epoch_end", EPOCH)
        (before,) = deliveries(job_id)
        dispatch.warm()
        (after,) = deliveries(job_id)
        assert (after.status, after.attempts, after.locked_until) == (
            before.status,
            before.attempts,
            before.locked_until,
        )
        assert drive(after.id) == ["sent"]
