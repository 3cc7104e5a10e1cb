"""Webhook endpoints: create, update, disable, delete, rotate secrets; redeliver; URL and filter checks."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trainforge.db.models import WebhookDelivery as Delivery
from trainforge.db.models import WebhookEndpoint
from trainforge.db.types import new_id, read_db_now, utcnow
from trainforge.errors import Conflict, Invalid, NotFound
from trainforge.events import emit
from trainforge.queue import send_after_commit
from trainforge.settings import Settings, get_settings
from trainforge.tenant_limits import lock_tenant
from trainforge.vocab import DELIVER_WEBHOOK, ENDPOINT_DISABLED_EVENT
from trainforge.webhooks import signing
from trainforge.webhooks.catalog import unknown_event_message
from trainforge.webhooks.outbox import dispatch_lease_s
from trainforge.webhooks.ssrf import Policy, Resolver, UnsafeURLError, check_url, system_resolver

MAX_EVENTS = 100
MAX_TAGS = 50


def policy(settings: Settings | None = None) -> Policy:
    """Return the address policy from settings.webhook_allow."""
    return Policy.from_allow((settings or get_settings()).webhook_allow)


def check_webhook_url(
    url: str, settings: Settings | None = None, resolver: Resolver = system_resolver
) -> str:
    """Return the URL if webhooks may call it now; raise Invalid (422) with the reason."""
    try:
        check_url(url, policy(settings), resolver)
    except UnsafeURLError as exc:
        raise Invalid(str(exc)) from None
    return url.strip()


def normalize_events(events: Iterable[str] | None) -> list[str]:
    """Return a clean event filter (default ["*"]); raise Invalid naming a bad entry."""
    out = list(dict.fromkeys(e.strip() for e in (events if events is not None else ["*"])))
    if not out:
        raise Invalid('events is empty: list event types, or ["*"] for all events')
    if len(out) > MAX_EVENTS:
        raise Invalid(f"events lists {len(out)} types; at most {MAX_EVENTS} are allowed")
    for event in out:
        problem = unknown_event_message(event)
        if problem is not None:
            raise Invalid(problem)
    return out


def normalize_tags(tags: Iterable[str] | None) -> list[str]:
    """Return a clean tag filter (empty = every job); raise Invalid naming a bad tag."""
    out = list(dict.fromkeys(t.strip() for t in tags or []))
    if len(out) > MAX_TAGS or any(not t or len(t) > 100 for t in out):
        raise Invalid(f"tags must be 1-100 characters each, at most {MAX_TAGS} of them")
    return out


def inline_webhooks(
    specs: Iterable[dict[str, Any]], settings: Settings | None = None, resolver: Resolver = system_resolver
) -> list[dict[str, Any]]:
    """Check a job's inline webhooks and return them as stored on the job: {id, url, events, secret}."""
    specs = list(specs)
    check_webhooks_per_job(len(specs), settings or get_settings())
    out = []
    for index, spec in enumerate(specs):
        where = f"webhooks[{index}]"
        if not spec.get("url"):
            raise Invalid(
                f"{where}.url is missing: give the http(s) URL to POST events to", key=f"{where}.url"
            )
        try:
            url = check_webhook_url(spec["url"], settings, resolver)
        except Invalid as exc:
            raise Invalid(f"{where}.url: {exc.detail}", key=f"{where}.url") from None
        try:
            events = normalize_events(spec.get("events"))
        except Invalid as exc:
            raise Invalid(f"{where}.events: {exc.detail}", key=f"{where}.events") from None
        secret = spec.get("secret") or signing.generate_secret()
        try:
            signing.secret_key(secret)
        except signing.SignatureError as exc:
            raise Invalid(
                f"{where}.secret: {exc} (or leave it out to get one)", key=f"{where}.secret"
            ) from None
        out.append({"id": new_id(), "url": url, "events": events, "secret": secret})
    return out


def check_webhooks_per_job(count: int, settings: Settings) -> None:
    """Raise Invalid (422) when a job lists more inline webhooks than the operator allows."""
    cap = settings.webhook_max_per_job
    if count > cap:
        raise Invalid(
            f"webhooks lists {count} webhooks; a job may have at most {cap} (webhook_max_per_job): "
            "register a tenant endpoint (POST /v1/webhooks) to reach more receivers",
            key="webhooks",
        )


def check_endpoint_room(session: Session, tenant_id: str, settings: Settings) -> None:
    """Raise Invalid (422) when the tenant already has as many endpoints as the operator allows."""
    # Concurrent creates count one after another, so they cannot both slip in under the cap.
    lock_tenant(session, tenant_id)
    have = session.scalar(select(func.count()).where(WebhookEndpoint.tenant_id == tenant_id)) or 0
    cap = settings.webhook_max_endpoints
    if have >= cap:
        raise Invalid(
            f"this tenant has {have} webhook endpoints; at most {cap} are allowed (webhook_max_endpoints): "
            "delete one (DELETE /v1/webhooks/{id}) or give one endpoint more event types",
            key="url",
        )


def create_endpoint(
    session: Session,
    tenant_id: str,
    url: str,
    events: Iterable[str] | None = None,
    tags: Iterable[str] | None = None,
    description: str | None = None,
    resolver: Resolver = system_resolver,
    settings: Settings | None = None,
) -> WebhookEndpoint:
    """Add a tenant-wide endpoint with a new secret (read `endpoint.secret` once, to show it)."""
    now = utcnow()
    checked_url = check_webhook_url(url, settings, resolver)
    checked_events, checked_tags = normalize_events(events), normalize_tags(tags)
    check_endpoint_room(session, tenant_id, settings or get_settings())
    endpoint = WebhookEndpoint(
        id=new_id(),
        tenant_id=tenant_id,
        url=checked_url,
        events=checked_events,
        tags=checked_tags,
        description=description,
        secret=signing.generate_secret(),
        enabled=True,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def get_endpoint(session: Session, tenant_id: str, endpoint_id: str) -> WebhookEndpoint:
    """Return the tenant's endpoint; another tenant's (or a missing) one is NotFound."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.tenant_id != tenant_id:
        raise NotFound(f"no webhook endpoint {endpoint_id!r}")
    return endpoint


def list_endpoints(session: Session, tenant_id: str) -> list[WebhookEndpoint]:
    """Return the tenant's endpoints, oldest first."""
    query = select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant_id)
    return list(session.scalars(query.order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)))


def update_endpoint(
    session: Session,
    endpoint: WebhookEndpoint,
    changes: dict[str, Any],
    resolver: Resolver = system_resolver,
    settings: Settings | None = None,
) -> WebhookEndpoint:
    """Apply the given changes (url, events, tags, description, enabled) after checking each."""
    if "url" in changes:
        endpoint.url = check_webhook_url(changes["url"], settings, resolver)
    if "events" in changes:
        endpoint.events = normalize_events(changes["events"])
    if "tags" in changes:
        endpoint.tags = normalize_tags(changes["tags"])
    if "description" in changes:
        endpoint.description = changes["description"]
    if changes.get("enabled") is True and not endpoint.enabled:
        endpoint.enabled, endpoint.disabled_reason, endpoint.failing_since = True, None, None
    elif changes.get("enabled") is False and endpoint.enabled:
        disable_endpoint(session, endpoint, "disabled by request")
    endpoint.updated_at = utcnow()
    session.flush()
    return endpoint


def disable_endpoint(
    session: Session, endpoint: WebhookEndpoint, reason: str, job_id: str | None = None
) -> None:
    """Disable an endpoint; when a job's delivery caused it, record webhook.endpoint_disabled on that job."""
    endpoint.enabled = False
    endpoint.disabled_reason = reason
    endpoint.updated_at = utcnow()
    if job_id is not None:
        data = {"endpoint_id": endpoint.id, "url": endpoint.url, "reason": reason}
        key = f"{ENDPOINT_DISABLED_EVENT}:{endpoint.id}"
        emit(session, job_id, ENDPOINT_DISABLED_EVENT, data, dedupe_key=key)


def delete_endpoint(session: Session, endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint with its deliveries and attempts."""
    session.delete(endpoint)
    session.flush()


def rotate_secret(
    session: Session, endpoint: WebhookEndpoint, grace_s: float | None = None
) -> WebhookEndpoint:
    """Give the endpoint a new secret; the old one keeps signing (a second signature) for the grace period."""
    grace = get_settings().webhook_secret_grace_s if grace_s is None else grace_s
    now = utcnow()
    endpoint.previous_secret = endpoint.secret if grace > 0 else None
    endpoint.previous_secret_expires_at = now + timedelta(seconds=grace) if grace > 0 else None
    endpoint.secret = signing.generate_secret()
    endpoint.updated_at = now
    session.flush()
    return endpoint


def get_delivery(session: Session, tenant_id: str, delivery_id: str) -> Delivery:
    """Return the tenant's delivery; another tenant's (or a missing) one is NotFound."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.tenant_id != tenant_id:
        raise NotFound(f"no delivery {delivery_id!r}")
    return delivery


def redeliver(session: Session, delivery: Delivery) -> Delivery:
    """Send a finished delivery again (same webhook-id, a fresh retry schedule); sent after commit."""
    if delivery.status == "pending":
        raise Conflict(f"delivery {delivery.id!r} is still pending; wait for it to finish, then redeliver")
    if delivery.endpoint_id is not None:
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint is not None and not endpoint.enabled:
            raise Conflict(
                f"endpoint {endpoint.id!r} is disabled ({endpoint.disabled_reason}); "
                "enable it with PATCH /v1/webhooks/{id} {'enabled': true} first"
            )
    now = read_db_now(session)  # the clock the due comparisons use
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.locked_until = now + timedelta(seconds=dispatch_lease_s())
    delivery.updated_at = now
    session.flush()
    send_after_commit(session, DELIVER_WEBHOOK, [delivery.id])
    return delivery
