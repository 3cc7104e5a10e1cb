"""Webhook deliveries of a job, and sending one again."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from api.deps import CurrentTenant, JobDep, SessionDep
from api.routes.webhooks import DeliveryPageDep, check_uuid, list_deliveries
from trainforge.webhooks import repository, service
from trainforge.webhooks.schemas import DeliveriesPublic, DeliveryPublic, delivery_public

router = APIRouter(prefix="/v1", tags=["webhooks"])


@router.get("/jobs/{job_id}/deliveries", response_model=DeliveriesPublic)
def job_deliveries(
    job: JobDep, session: SessionDep, principal: CurrentTenant, page: DeliveryPageDep
) -> DeliveriesPublic:
    """List the job's webhook deliveries with every attempt (status, response code, latency, error)."""
    return list_deliveries(session, principal.tenant_id, page, job_id=job.id)


@router.post(
    "/deliveries/{delivery_id}/redeliver", status_code=status.HTTP_202_ACCEPTED, response_model=DeliveryPublic
)
def redeliver(
    delivery_id: Annotated[str, Path(description="The delivery's id (a UUID).")],
    session: SessionDep,
    principal: CurrentTenant,
) -> DeliveryPublic:
    """Send a finished delivery again (same webhook-id, a fresh retry schedule)."""
    check_uuid(delivery_id, "delivery", "see GET /v1/jobs/{job_id}/deliveries")
    delivery = service.redeliver(session, service.get_delivery(session, principal.tenant_id, delivery_id))
    return delivery_public(delivery, repository.attempts_of(session, [delivery.id])[delivery.id])
