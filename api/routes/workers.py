"""Workers: the live pool, with each worker's queues, devices and running jobs."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentTenant, SessionDep, SettingsDep
from trainforge.scheduling import registry
from trainforge.schemas import DevicesPublic, WorkerPublic, WorkersPublic

router = APIRouter(prefix="/v1/workers", tags=["workers"])


@router.get("", response_model=WorkersPublic)
def list_workers(session: SessionDep, principal: CurrentTenant, settings: SettingsDep) -> WorkersPublic:
    """List the live workers: queues, devices, running jobs (yours by id, others' counted), heartbeat."""
    workers = registry.live(session, settings.lease_timeout_s)
    running = registry.running_jobs(session, [w.id for w in workers])
    return WorkersPublic(
        data=[
            WorkerPublic(
                id=w.id,
                hostname=w.hostname,
                queues=list(w.queues or []),
                slots=w.slots,
                devices=DevicesPublic(
                    kind=w.device_kind,
                    count=w.gpus,
                    name=w.gpu_name,
                    memory_gb=w.gpu_memory_gb,
                    source=w.inventory_source,
                ),
                running=len(running[w.id]),
                jobs=[job_id for job_id, tenant, _ in running[w.id] if tenant == principal.tenant_id],
                started_at=w.started_at,
                heartbeat_at=w.heartbeat_at,
            )
            for w in workers
        ]
    )
