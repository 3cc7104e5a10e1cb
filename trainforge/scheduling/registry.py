"""The workers table: register at start, refresh by heartbeat, list the live ones. Never commits.

A worker is live while its heartbeat is younger than the lease timeout, the same bound after which
the reaper takes its jobs away; an older row is ignored by placement and dropped at the next
registration.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from trainforge.db.models import Job, Worker
from trainforge.db.types import utcnow
from trainforge.scheduling.inventory import Inventory
from trainforge.vocab import LEASED

# A row this much older than the lease timeout is deleted: the worker is not coming back under that id.
FORGET_AFTER_S = 24 * 3600.0


@dataclass(frozen=True)
class WorkerInfo:
    """What a starting worker tells the service about itself."""

    id: str
    hostname: str
    pid: int
    queues: list[str]
    slots: int
    inventory: Inventory


def register(session: Session, info: WorkerInfo) -> None:
    """Insert or replace the worker's row, and forget workers long gone."""
    now = utcnow()
    session.execute(delete(Worker).where(Worker.heartbeat_at < now - timedelta(seconds=FORGET_AFTER_S)))
    session.execute(delete(Worker).where(Worker.id == info.id))
    inv = info.inventory
    session.add(
        Worker(
            id=info.id,
            hostname=info.hostname,
            pid=info.pid,
            queues=list(info.queues),
            slots=info.slots,
            device_kind=inv.kind,
            gpus=inv.gpus,
            gpu_name=inv.name,
            gpu_memory_gb=inv.memory_gb,
            inventory_source=inv.source,
            started_at=now,
            heartbeat_at=now,
        )
    )
    session.flush()


def heartbeat(session: Session, worker_id: str) -> bool:
    """Refresh the worker's heartbeat; False when its row is gone (register again)."""
    result = session.execute(
        update(Worker)
        .where(Worker.id == worker_id)
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def deregister(session: Session, worker_id: str) -> None:
    """Remove the worker's row (it is shutting down)."""
    session.execute(delete(Worker).where(Worker.id == worker_id))


def live(session: Session, timeout_s: float) -> list[Worker]:
    """Return the workers that heartbeat within `timeout_s`, by id."""
    cutoff = utcnow() - timedelta(seconds=timeout_s)
    return list(session.scalars(select(Worker).where(Worker.heartbeat_at >= cutoff).order_by(Worker.id)))


def running_jobs(session: Session, worker_ids: list[str]) -> dict[str, list[tuple[str, str, int]]]:
    """Return, per worker, the (job id, tenant id, gpus) of the jobs it runs now."""
    if not worker_ids:
        return {}
    rows = session.execute(
        select(Job.worker_id, Job.id, Job.tenant_id, Job.gpus).where(
            Job.worker_id.in_(worker_ids), Job.status.in_([s.value for s in LEASED])
        )
    ).all()
    found: dict[str, list[tuple[str, str, int]]] = {w: [] for w in worker_ids}
    for worker_id, job_id, tenant_id, gpus in rows:
        found[str(worker_id)].append((job_id, tenant_id, int(gpus)))
    return found


def busy_gpus(session: Session, worker_id: str) -> tuple[int, int]:
    """Return (jobs running, GPUs they hold) on one worker."""
    count, gpus = session.execute(
        select(func.count(), func.coalesce(func.sum(Job.gpus), 0)).where(
            Job.worker_id == worker_id, Job.status.in_([s.value for s in LEASED])
        )
    ).one()
    return int(count), int(gpus)
