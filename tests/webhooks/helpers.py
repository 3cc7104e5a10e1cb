"""Helpers for DB-backed webhook tests: emit events, drive deliveries in-process, read rows back."""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import select

from trainforge.auth import get_or_create_tenant
from trainforge.db.models import JobEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from trainforge.db.session import session_scope
from trainforge.events import emit
from trainforge.webhooks import dispatch, service, signing


def tenant_id(name: str) -> str:
    """Return the id of tenant `name` (created if missing)."""
    with session_scope() as s:
        return get_or_create_tenant(s, name).id


def new_tenant() -> str:
    """Return a fresh tenant name."""
    return f"tenant-{uuid.uuid4().hex[:8]}"


def inline_hook(url: str, events: list[str] | None = None) -> dict[str, Any]:
    """Return a job-inline webhook as POST /v1/jobs stores it."""
    return {
        "id": str(uuid.uuid4()),
        "url": url,
        "events": events or ["*"],
        "secret": signing.generate_secret(),
    }


def add_endpoint(tenant: str, url: str, events: list[str] | None = None, tags: list[str] | None = None):
    """Create a tenant endpoint; return (id, secret)."""
    with session_scope() as s:
        endpoint = service.create_endpoint(
            s, get_or_create_tenant(s, tenant).id, url, events=events, tags=tags
        )
        return endpoint.id, endpoint.secret


def emit_event(job_id: str, event_type: str, data: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Record an event as the worker does (its own transaction)."""
    with session_scope() as s:
        return emit(s, job_id, event_type, data)


def deliveries(job_id: str | None = None, endpoint_id: str | None = None) -> list[WebhookDelivery]:
    """Return the deliveries of a job or an endpoint, oldest first."""
    with session_scope() as s:
        query = select(WebhookDelivery).order_by(WebhookDelivery.created_at, WebhookDelivery.id)
        if job_id is not None:
            query = query.where(WebhookDelivery.job_id == job_id)
        if endpoint_id is not None:
            query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
        rows = list(s.scalars(query))
        s.expunge_all()
        return rows


def delivery(delivery_id: str) -> WebhookDelivery:
    """Return one delivery as stored now."""
    with session_scope() as s:
        row = s.get(WebhookDelivery, delivery_id)
        assert row is not None
        s.expunge(row)
        return row


def attempts(delivery_id: str) -> list[WebhookAttempt]:
    """Return a delivery's attempts, oldest first."""
    with session_scope() as s:
        query = select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)
        rows = list(s.scalars(query.order_by(WebhookAttempt.started_at)))
        s.expunge_all()
        return rows


def endpoint(endpoint_id: str) -> WebhookEndpoint:
    """Return an endpoint as stored now."""
    with session_scope() as s:
        row = s.get(WebhookEndpoint, endpoint_id)
        assert row is not None
        s.expunge(row)
        return row


def events_of(job_id: str) -> list[JobEvent]:
    """Return the job's events in seq order."""
    with session_scope() as s:
        rows = list(s.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq)))
        s.expunge_all()
        return rows


def drive(delivery_id: str, timeout: float = 10.0) -> list[str]:
    """Run dispatch.deliver here whenever the delivery is due, until it is done; return the outcomes."""
    outcomes = []
    deadline = time.monotonic() + timeout
    while delivery(delivery_id).status == "pending":
        assert time.monotonic() < deadline, f"delivery still pending after {outcomes}"
        outcome = dispatch.deliver(delivery_id)
        if outcome != "not-due":
            outcomes.append(outcome)
        else:
            time.sleep(0.02)
    return outcomes


def wait_for(predicate, timeout: float = 20.0, what: str = "condition", every: float = 0.05) -> None:
    """Poll until `predicate()` is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)
