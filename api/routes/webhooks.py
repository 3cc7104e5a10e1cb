"""Tenant-wide webhook endpoints: create (secret shown once), list, show, update, disable, delete, rotate."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status
from sqlalchemy.orm import Session

from api.deps import CurrentTenant, SessionDep, SettingsDep, commit_in_handler
from trainforge.db.models import WebhookEndpoint
from trainforge.errors import Invalid
from trainforge.webhooks import repository, service
from trainforge.webhooks.schemas import (
    DeliveriesPublic,
    SecretRotate,
    WebhookCreate,
    WebhookCreated,
    WebhookPublic,
    WebhooksPublic,
    WebhookUpdate,
    delivery_public,
    endpoint_public,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


def check_uuid(value: str, what: str, hint: str) -> str:
    """Return `value` if it is a UUID; Invalid (422) naming what it should be otherwise."""
    try:
        uuid.UUID(value)
    except ValueError:
        raise Invalid(f"invalid {what} id {value!r}: {what} ids are UUIDs; {hint}") from None
    return value


@dataclass(frozen=True)
class DeliveryPage:
    """The filter and page of a delivery listing (a job's or an endpoint's)."""

    status: str | None
    cursor: str | None
    limit: int


def delivery_page(
    status_: Annotated[str | None, Query(alias="status", description="pending, succeeded or failed.")] = None,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the last page.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveryPage:
    """Read the query parameters every delivery listing takes."""
    return DeliveryPage(status_, cursor, limit)


DeliveryPageDep = Annotated[DeliveryPage, Depends(delivery_page)]


def list_deliveries(session: Session, tenant_id: str, page: DeliveryPage, **owner: str) -> DeliveriesPublic:
    """Return one page of deliveries of a job (`job_id=`) or an endpoint (`endpoint_id=`)."""
    rows, next_cursor = repository.list_deliveries(
        session, tenant_id, status=page.status, cursor=page.cursor, limit=page.limit, **owner
    )
    return DeliveriesPublic(data=[delivery_public(d, a) for d, a in rows], next_cursor=next_cursor)


def get_endpoint(
    webhook_id: Annotated[str, Path(description="The endpoint's id (a UUID).")],
    session: SessionDep,
    principal: CurrentTenant,
) -> WebhookEndpoint:
    """Return the caller's endpoint; 404 when it does not exist or belongs to another tenant."""
    check_uuid(webhook_id, "webhook", "list yours with GET /v1/webhooks")
    return service.get_endpoint(session, principal.tenant_id, webhook_id)


EndpointDep = Annotated[WebhookEndpoint, Depends(get_endpoint)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated)
def create_webhook(
    body: WebhookCreate, session: SessionDep, principal: CurrentTenant, settings: SettingsDep
) -> WebhookPublic:
    """Register an endpoint for every job of your tenant; the response shows its secret once."""
    endpoint = service.create_endpoint(
        session,
        principal.tenant_id,
        body.url,
        events=body.events,
        tags=body.tags,
        description=body.description,
        settings=settings,
    )
    commit_in_handler(session)
    return endpoint_public(endpoint, secret=True)


@router.get("", response_model=WebhooksPublic)
def list_webhooks(session: SessionDep, principal: CurrentTenant) -> WebhooksPublic:
    """List your tenant's endpoints, oldest first."""
    return WebhooksPublic(
        data=[endpoint_public(e) for e in service.list_endpoints(session, principal.tenant_id)]
    )


@router.get("/{webhook_id}", response_model=WebhookPublic)
def show_webhook(endpoint: EndpointDep) -> WebhookPublic:
    """Show one endpoint (its secret is never shown again; rotate it to get a new one)."""
    return endpoint_public(endpoint)


@router.patch("/{webhook_id}", response_model=WebhookPublic)
def update_webhook(
    body: WebhookUpdate, endpoint: EndpointDep, session: SessionDep, settings: SettingsDep
) -> WebhookPublic:
    """Change an endpoint's url, events, tags, description, or enable/disable it."""
    changes = body.model_dump(exclude_unset=True)
    nulls = sorted(k for k, v in changes.items() if v is None and k != "description")
    if nulls:
        raise Invalid(f"{nulls[0]} cannot be null; leave it out to keep the current value")
    return endpoint_public(service.update_endpoint(session, endpoint, changes, settings=settings))


@router.post("/{webhook_id}/disable", response_model=WebhookPublic)
def disable_webhook(endpoint: EndpointDep, session: SessionDep) -> WebhookPublic:
    """Stop sending to an endpoint (pending deliveries fail); PATCH {"enabled": true} turns it back on."""
    return endpoint_public(service.update_endpoint(session, endpoint, {"enabled": False}))


@router.post("/{webhook_id}/rotate-secret", response_model=WebhookCreated)
def rotate_webhook_secret(
    endpoint: EndpointDep, session: SessionDep, body: SecretRotate | None = None
) -> WebhookPublic:
    """Give the endpoint a new secret (shown once); the old one also signs until the grace period ends."""
    grace = body.grace_s if body is not None else None
    return endpoint_public(service.rotate_secret(session, endpoint, grace), secret=True)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(endpoint: EndpointDep, session: SessionDep) -> Response:
    """Delete an endpoint with its delivery history."""
    service.delete_endpoint(session, endpoint)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", response_model=DeliveriesPublic)
def webhook_deliveries(
    endpoint: EndpointDep, session: SessionDep, principal: CurrentTenant, page: DeliveryPageDep
) -> DeliveriesPublic:
    """List the endpoint's deliveries with every attempt (status, response code, latency, error)."""
    return list_deliveries(session, principal.tenant_id, page, endpoint_id=endpoint.id)
