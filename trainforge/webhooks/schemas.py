"""Request and response bodies of the webhook endpoints and delivery routes (pydantic)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from trainforge.schemas import Strict

if TYPE_CHECKING:  # the client parses these bodies and must not load the database layer
    from trainforge.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


class WebhookCreate(Strict):
    """A tenant-wide endpoint: receives matching events of every job of the tenant."""

    url: str = Field(min_length=1, max_length=2000, description="http(s) URL that receives signed POSTs.")
    events: list[str] = Field(
        default_factory=lambda: ["*"],
        min_length=1,
        max_length=100,
        description="Event types ('on_fit_epoch_end', 'job.succeeded'), families ('job.*') or '*'.",
    )
    tags: list[str] = Field(
        default_factory=list, max_length=50, description="Only jobs with one of these tags (empty: all)."
    )
    description: str | None = Field(default=None, max_length=500)


class WebhookUpdate(Strict):
    """Fields to change on an endpoint; absent fields stay as they are."""

    url: str | None = Field(default=None, min_length=1, max_length=2000)
    events: list[str] | None = Field(default=None, min_length=1, max_length=100)
    tags: list[str] | None = Field(default=None, max_length=50)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None


class SecretRotate(Strict):
    """How long the old secret keeps signing (a second signature) after a rotation."""

    grace_s: float | None = Field(
        default=None, ge=0, le=30 * 86400, description="Seconds (default: the server's grace period)."
    )


class WebhookPublic(BaseModel):
    """An endpoint as the API shows it (never its secret)."""

    id: str
    url: str
    events: list[str]
    tags: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    links: dict[str, str]


class WebhookCreated(WebhookPublic):
    """A new endpoint, with its signing secret: shown this once, store it now."""

    secret: str


class WebhooksPublic(BaseModel):
    """The tenant's endpoints."""

    data: list[WebhookPublic]


class AttemptPublic(BaseModel):
    """One HTTP attempt of a delivery."""

    started_at: datetime
    status_code: int | None
    latency_ms: float | None
    error: str | None
    response_excerpt: str | None


class DeliveryPublic(BaseModel):
    """One event sent to one receiver, with every attempt."""

    id: str
    webhook_id: str
    job_id: str | None
    endpoint_id: str | None
    url: str | None
    event_type: str
    event_id: str | None
    status: str
    attempts: list[AttemptPublic]
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class DeliveriesPublic(BaseModel):
    """A page of deliveries, oldest first; pass next_cursor as ?cursor= for the next page."""

    data: list[DeliveryPublic]
    next_cursor: str | None = None


def endpoint_public(endpoint: WebhookEndpoint, secret: bool = False) -> WebhookPublic:
    """Return the public form of an endpoint; with `secret`, the one-time form that carries it."""
    base = f"/v1/webhooks/{endpoint.id}"
    fields: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": list(endpoint.events or ["*"]),
        "tags": list(endpoint.tags or []),
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "failing_since": endpoint.failing_since,
        "previous_secret_expires_at": endpoint.previous_secret_expires_at,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
        "links": {"self": base, "deliveries": f"{base}/deliveries"},
    }
    return WebhookCreated(**fields, secret=endpoint.secret) if secret else WebhookPublic(**fields)


def delivery_public(delivery: WebhookDelivery, attempts: list[WebhookAttempt]) -> DeliveryPublic:
    """Return the public form of a delivery and its attempts (oldest first)."""
    return DeliveryPublic(
        id=delivery.id,
        webhook_id=delivery.webhook_id,
        job_id=delivery.job_id,
        endpoint_id=delivery.endpoint_id,
        url=delivery.url,
        event_type=delivery.event_type,
        event_id=delivery.event_id,
        status=delivery.status,
        attempts=[
            AttemptPublic(
                started_at=a.started_at,
                status_code=a.status_code,
                latency_ms=a.latency_ms,
                error=a.error,
                response_excerpt=a.response_excerpt,
            )
            for a in attempts
        ],
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        updated_at=delivery.updated_at,
    )
