"""The outbox: in the event's own transaction, one delivery row per receiver whose filters match."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trainforge.db.models import Job, JobEvent, WebhookDelivery, WebhookEndpoint
from trainforge.db.types import new_id, read_db_now
from trainforge.queue import send_after_commit
from trainforge.settings import get_settings
from trainforge.vocab import DELIVER_WEBHOOKS


def dispatch_lease_s() -> float:
    """Return how long the sweep leaves a sent delivery alone before assuming its message was lost."""
    # Six sweeps: long enough for a healthy queue to take the message, short enough that a broker
    # restart delays the lost deliveries by well under a minute with the default 5 s sweep.
    return 6 * get_settings().webhook_sweep_interval_s


def matches(patterns: Iterable[str] | None, event_type: str) -> bool:
    """Return whether an event type matches a receiver's filter ("*" = all, "job.*" = a family)."""
    return any(p == "*" or p == event_type or fnmatch.fnmatchcase(event_type, p) for p in patterns or ["*"])


def tags_match(wanted: Iterable[str] | None, job_tags: Iterable[str] | None) -> bool:
    """Return whether a job carries one of an endpoint's tags (no tags on the endpoint = every job)."""
    wanted_set = set(wanted or ())
    return not wanted_set or bool(wanted_set & set(job_tags or ()))


def build_payload(event: JobEvent, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the webhook body: {type, timestamp, data: {job_id, seq, event_id, ...event data}}."""
    created = payload["created_at"] if payload else event.created_at.isoformat().replace("+00:00", "Z")
    data = {"job_id": event.job_id, "seq": event.seq, "event_id": event.id, **(event.data or {})}
    return {"type": event.type, "timestamp": created, "data": data}


def enqueue_for_event(
    session: Session, job: Job | None, event: JobEvent, payload: dict[str, Any] | None = None
) -> list[WebhookDelivery]:
    """Insert a delivery for each matching inline webhook and tenant endpoint; send them after commit."""
    if job is None:
        return []
    body = build_payload(event, payload)
    rows = [
        _delivery(job, event, body, url=hook["url"], secret=hook["secret"])
        for hook in job.webhooks or []
        if hook.get("url")
        and hook.get("secret")
        and not hook.get("disabled")
        and matches(hook.get("events"), event.type)
    ]
    endpoints = session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.tenant_id == job.tenant_id, WebhookEndpoint.enabled.is_(True)
        )
    )
    rows += [
        _delivery(job, event, body, endpoint_id=endpoint.id)
        for endpoint in endpoints
        if matches(endpoint.events, event.type) and tags_match(endpoint.tags, job.tags)
    ]
    if not rows:
        return []  # most events match no webhook: they pay no clock read
    # The database's clock, as every due comparison uses: a host whose clock is off must not
    # delay or rush its deliveries. Due now, and marked as dispatched (their message goes out next).
    now = read_db_now(session)
    lease_until = now + timedelta(seconds=dispatch_lease_s())
    for row in rows:
        row.next_attempt_at, row.locked_until, row.created_at, row.updated_at = now, lease_until, now, now
    session.add_all(rows)
    session.flush()
    # One message for the whole fan-out: a message (and a claim and record commit) per delivery was
    # most of each delivery's cost.
    send_after_commit(session, DELIVER_WEBHOOKS, [[row.id for row in rows]])
    return rows


def _delivery(
    job: Job,
    event: JobEvent,
    body: dict[str, Any],
    endpoint_id: str | None = None,
    url: str | None = None,
    secret: str | None = None,
) -> WebhookDelivery:
    """Build one pending delivery row (its times are set by the caller, from one clock read)."""
    delivery_id = new_id()
    return WebhookDelivery(
        id=delivery_id,
        tenant_id=job.tenant_id,
        endpoint_id=endpoint_id,
        job_id=job.id,
        event_id=event.id,
        event_type=event.type,
        url=url,
        secret=secret,
        payload=body,
        webhook_id="msg_" + delivery_id.replace("-", ""),
        status="pending",
        attempts=0,
    )
