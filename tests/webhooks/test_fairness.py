"""Delivery slots in-process against real Redis and a real database: receiver and tenant caps, leases."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import update

from tests.webhooks.helpers import (
    add_endpoint,
    deliveries,
    delivery,
    emit_event,
    inline_hook,
    new_tenant,
    tenant_id,
)
from tests.webhooks.receiver import Receiver
from trainforge.db.models import WebhookDelivery
from trainforge.db.session import session_scope
from trainforge.settings import get_settings
from trainforge.slots import Slots
from trainforge.webhooks import dispatch, fairness


def hold(pools, count: int, lease_s: float = 60.0) -> list[str]:
    """Take `count` slots in the pools as other workers' attempts in flight would; return the holders."""
    holders = [f"elsewhere-{n}-{time.monotonic_ns()}" for n in range(count)]
    for holder in holders:
        assert fairness.take(pools, holder, lease_s) is None
    return holders


def pools_of(tenant: str, endpoint_id: str | None = None, url: str | None = None):
    """Return the receiver's and the tenant's pool as the dispatcher builds them."""
    return fairness.pools_for(tenant_id(tenant), endpoint_id, url, get_settings())


def test_a_full_receiver_leaves_its_delivery_due_and_other_receivers_flow(settings_env, make_job) -> None:
    tenant = new_tenant()
    busy_id, _ = add_endpoint(tenant, "http://127.0.0.1:9/busy")
    with Receiver() as rx:
        free_id, _ = add_endpoint(tenant, rx.url)
        job_id = make_job(tenant=tenant)
        emit_event(job_id, "on_train_epoch_end", {"epoch": 1})
        receiver_pool, tenant_pool = pools_of(tenant, busy_id)
        holders = hold([receiver_pool], settings_env.webhook_endpoint_in_flight)
        (busy,) = deliveries(endpoint_id=busy_id)
        before = delivery(busy.id).locked_until
        assert dispatch.deliver(busy.id) == "busy"
        parked = delivery(busy.id)
        assert parked.attempts == 0 and parked.status == "pending"
        assert parked.next_attempt_at <= datetime.now(UTC)  # still due: the next offer may take it
        assert parked.locked_until > before  # the sweep leaves it to that offer
        (free,) = deliveries(endpoint_id=free_id)
        assert dispatch.deliver(free.id) == "sent" and len(rx.requests) == 1
        # The attempt that frees a slot hands it to the delivery waiting for it.
        assert Slots().give_back([receiver_pool], holders[0]) == [busy.id]
        assert dispatch.deliver(busy.id) == "retry"  # attempted now (nothing listens on port 9)
    # What the dispatcher took it gave back: only the other workers' holders are left.
    assert Slots().holders(receiver_pool) == settings_env.webhook_endpoint_in_flight - 1
    assert Slots().holders(tenant_pool) == 0


def test_a_tenant_using_its_share_waits_while_another_tenant_is_served(settings_env, make_job) -> None:
    greedy, other = new_tenant(), new_tenant()
    with Receiver() as rx:
        greedy_job = make_job(tenant=greedy, webhooks=[inline_hook(rx.url + "/greedy")])
        other_job = make_job(tenant=other, webhooks=[inline_hook(rx.url + "/other")])
        emit_event(greedy_job, "on_train_epoch_end", {"epoch": 1})
        emit_event(other_job, "on_train_epoch_end", {"epoch": 1})
        # Every slot of the tenant is in use, by attempts to its other receivers.
        _, tenant_pool = pools_of(greedy, url=rx.url + "/elsewhere")
        hold([tenant_pool], settings_env.webhook_tenant_in_flight)
        (waiting,) = deliveries(greedy_job)
        (served,) = deliveries(other_job)
        assert dispatch.deliver(waiting.id) == "busy"
        assert dispatch.deliver(served.id) == "sent"
        assert [r.path for r in rx.requests] == ["/other"]


def test_the_slots_of_a_worker_that_died_mid_attempt_end_with_their_lease(settings_env, make_job) -> None:
    tenant = new_tenant()
    with Receiver() as rx:
        endpoint_id, _ = add_endpoint(tenant, rx.url)
        job_id = make_job(tenant=tenant)
        emit_event(job_id, "on_train_epoch_end", {"epoch": 1})
        # Killed workers never give their slots back: here they hold every slot, on short leases.
        hold(pools_of(tenant, endpoint_id), settings_env.webhook_endpoint_in_flight, lease_s=0.5)
        (row,) = deliveries(endpoint_id=endpoint_id)
        assert dispatch.deliver(row.id) == "busy"
        time.sleep(0.6)
        assert dispatch.deliver(row.id) == "sent" and len(rx.requests) == 1


def test_every_attempt_gives_its_slots_back_whatever_its_outcome(settings_env, make_job) -> None:
    tenant = new_tenant()
    with Receiver() as rx:
        good_id, _ = add_endpoint(tenant, rx.url)
        bad_id, _ = add_endpoint(tenant, "http://127.0.0.1:9/refused")
        job_id = make_job(tenant=tenant)
        for epoch in range(3):
            emit_event(job_id, "on_train_epoch_end", {"epoch": epoch})
        outcomes = [dispatch.deliver(d.id) for d in deliveries(job_id)]
    assert sorted(set(outcomes)) == ["retry", "sent"]
    for endpoint_id in (good_id, bad_id):
        for pool in pools_of(tenant, endpoint_id):
            assert Slots().holders(pool) == 0, pool


def test_a_wake_up_for_a_delivery_done_meanwhile_passes_its_slot_on(settings_env, make_job) -> None:
    tenant = new_tenant()
    with Receiver() as rx:
        endpoint_id, _ = add_endpoint(tenant, rx.url)
        job_id = make_job(tenant=tenant)
        for epoch in range(2):
            emit_event(job_id, "on_train_epoch_end", {"epoch": epoch})
        pools = pools_of(tenant, endpoint_id)
        holders = hold(pools, settings_env.webhook_endpoint_in_flight)
        first, second = deliveries(endpoint_id=endpoint_id)
        assert dispatch.deliver(first.id) == "busy" and dispatch.deliver(second.id) == "busy"
        assert Slots().give_back(pools, holders[0]) == [first.id]
        with session_scope() as s:  # another message for it got there first
            done = update(WebhookDelivery).where(WebhookDelivery.id == first.id).values(status="succeeded")
            s.execute(done)
        assert dispatch.deliver(first.id) == "not-due"  # and the slot reserved for it moves on
        assert dispatch.deliver(second.id) == "sent" and len(rx.requests) == 1


def test_the_attempt_that_frees_a_slot_delivers_its_waiters_itself_up_to_its_bound(
    settings_env, make_job, monkeypatch
) -> None:
    monkeypatch.setattr(dispatch, "HANDOFFS_PER_TASK", 2)
    tenant = new_tenant()
    with Receiver() as rx:
        endpoint_id, _ = add_endpoint(tenant, rx.url)
        job_id = make_job(tenant=tenant)
        for epoch in range(4):
            emit_event(job_id, "on_train_epoch_end", {"epoch": epoch})
        pools = pools_of(tenant, endpoint_id)
        holders = hold(pools, settings_env.webhook_endpoint_in_flight)
        rows = deliveries(endpoint_id=endpoint_id)
        assert [dispatch.deliver(d.id) for d in rows] == ["busy"] * 4
        assert Slots().give_back(pools, holders[0]) == [rows[0].id]
        # No worker runs here: only this call can deliver the three, the first and its two hand-offs.
        assert dispatch.deliver(rows[0].id) == "sent"
        assert [delivery(d.id).status for d in rows] == ["succeeded"] * 3 + ["pending"]
        assert len(rx.requests) == 3
        # Past the bound the last waiter was sent its message, its slot kept for it.
        assert dispatch.deliver(rows[3].id) == "sent" and len(rx.requests) == 4
    assert Slots().holders(pools[0]) == settings_env.webhook_endpoint_in_flight - 1
