"""Queries for delivery history: pages of a job's or an endpoint's deliveries with their attempts."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from trainforge.cursors import decode_cursor, encode_cursor
from trainforge.db.models import WebhookAttempt, WebhookDelivery
from trainforge.errors import Invalid
from trainforge.vocab import DELIVERY_STATUSES

DeliveryPage = tuple[list[tuple[WebhookDelivery, list[WebhookAttempt]]], str | None]


def list_deliveries(
    session: Session,
    tenant_id: str,
    *,
    job_id: str | None = None,
    endpoint_id: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> DeliveryPage:
    """Return up to `limit` of the tenant's deliveries (oldest first) with their attempts, and a cursor."""
    where: list[ColumnElement[bool]] = [WebhookDelivery.tenant_id == tenant_id]
    if job_id is not None:
        where.append(WebhookDelivery.job_id == job_id)
    if endpoint_id is not None:
        where.append(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        if status not in DELIVERY_STATUSES:
            raise Invalid(f"unknown delivery status {status!r}; use one of {', '.join(DELIVERY_STATUSES)}")
        where.append(WebhookDelivery.status == status)
    if cursor:
        created, last_id = decode_cursor(cursor)
        where.append(
            or_(
                WebhookDelivery.created_at > created,
                and_(WebhookDelivery.created_at == created, WebhookDelivery.id > last_id),
            )
        )
    rows = list(
        session.scalars(
            select(WebhookDelivery)
            .where(*where)
            .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
            .limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    attempts = attempts_of(session, [row.id for row in rows])
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
    return [(row, attempts[row.id]) for row in rows], next_cursor


def attempts_of(session: Session, delivery_ids: list[str]) -> dict[str, list[WebhookAttempt]]:
    """Return the attempts of each delivery, oldest first (one query for the whole page)."""
    out: dict[str, list[WebhookAttempt]] = defaultdict(list)
    if not delivery_ids:
        return out
    query = (
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(delivery_ids))
        .order_by(WebhookAttempt.started_at, WebhookAttempt.id)
    )
    for attempt in session.scalars(query):
        out[attempt.delivery_id].append(attempt)
    return out
