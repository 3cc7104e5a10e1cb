"""Why a waiting job has not started, and where it stands: the answer GET /v1/jobs/{id} carries.

The reasons are checked in this order, and the first that holds is the answer:

    tenant limit            (the tenant runs as many jobs as its max_running_jobs allows)
    no live worker serves the job's queue
    no worker of the queue offers the GPUs (or the GPU memory) the job asks for
    jobs ahead in the queue: of higher priority, or of equal priority submitted earlier
    every worker that fits is busy
    a worker has room: it is being placed

`position` counts the waiting jobs of the same queue placed before this one, plus one: the order
of trainforge/scheduling/placement.py (priority, then submission), leaving out the jobs of tenants
at their running limit, which placement passes over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy.orm import Session

from trainforge.db.models import Job, TenantLimits, Worker
from trainforge.db.types import utcnow
from trainforge.settings import get_settings
from trainforge.tenant_limits import resolve
from trainforge.vocab import LEASED, WAITING, JobStatus


@dataclass(frozen=True)
class Waiting:
    """What the explanation needs to know of a waiting job."""

    id: str
    tenant_id: str | None
    queue: str
    gpus: int
    gpu_memory_gb: float | None
    priority: int
    created_at: datetime


@dataclass(frozen=True)
class Pending:
    """A waiting job's place in its queue and why it waits."""

    position: int
    reason: str


Db = Connection | Session
# A check returns the reason the job waits, or None to let the next check speak.
Check = Callable[[Db, Waiting, list[Any]], str | None]


def explain(db: Db, job: Waiting, lease_timeout_s: float) -> Pending:
    """Return the waiting job's position and the first reason (in CHECKS order) that holds."""
    cutoff = utcnow() - timedelta(seconds=lease_timeout_s)
    serving = [
        w
        for w in db.execute(
            select(Worker.id, Worker.queues, Worker.slots, Worker.gpus, Worker.gpu_memory_gb)
            .where(Worker.heartbeat_at >= cutoff)
        ).all()
        if job.queue in (w.queues or [])
    ]  # fmt: skip
    position = _ahead(db, job, higher_only=False) + 1
    for check in CHECKS:
        reason = check(db, job, serving)
        if reason is not None:
            return Pending(position, reason)
    return Pending(position, "a worker has room for it; it starts at the next placement")


def _tenant_limit(db: Db, job: Waiting, serving: list[Any]) -> str | None:
    """Say so when the tenant already runs as many jobs as max_running_jobs allows.

    First: placement skips such a job whatever the workers offer, so no other reason would be true.
    """
    if job.tenant_id is None:
        return None
    limited = _running_limits(db, [job.tenant_id]).get(job.tenant_id)
    if limited is None or limited[0] < limited[1]:
        return None
    running, bound = limited
    return f"tenant limit: {_jobs(running)} running (max {bound})"


def _running_limits(db: Db, tenant_ids: list[str]) -> dict[str, tuple[int, int]]:
    """Return (jobs running, max_running_jobs) of each of the tenants that has that bound."""
    settings = get_settings()
    own: dict[str, Any] = dict(
        db.execute(
            select(TenantLimits.tenant_id, TenantLimits.limits).where(TenantLimits.tenant_id.in_(tenant_ids))
        ).all()
    )
    bounds = {t: resolve(settings, own.get(t)).max_running_jobs for t in tenant_ids}
    bounded = {t: b for t, b in bounds.items() if b is not None}
    if not bounded:
        return {}
    running = dict(
        db.execute(
            select(Job.tenant_id, func.count())
            .where(Job.tenant_id.in_(list(bounded)), Job.status.in_([s.value for s in LEASED]))
            .group_by(Job.tenant_id)
        ).all()
    )
    return {t: (int(running.get(t, 0)), b) for t, b in bounded.items()}


def _no_worker(db: Db, job: Waiting, serving: list[Any]) -> str | None:
    """Say so when no live worker consumes the job's queue."""
    if serving:
        return None
    return f"no live worker serves queue {job.queue} (see GET /v1/workers)"


def _no_fit(db: Db, job: Waiting, serving: list[Any]) -> str | None:
    """Say what the largest worker offers when none offers the GPUs or memory asked for."""
    if any(_fits(w, job) for w in serving):
        return None
    largest = max(serving, key=lambda w: (w.gpus, w.gpu_memory_gb or 0))
    if job.gpus > largest.gpus:
        offers = "runs on CPU only" if largest.gpus == 0 else f"offers {largest.gpus}"
        return f"no worker offers {_gpus(job.gpus)} (the largest {offers})"
    most = max((w.gpu_memory_gb or 0) for w in serving if w.gpus >= job.gpus)
    return (
        f"no worker offers {_gpus(job.gpus)} with {job.gpu_memory_gb:g} GB each "
        f"(the most memory is {most:g} GB)"
    )


def _ahead_in_queue(db: Db, job: Waiting, serving: list[Any]) -> str | None:
    """Count the jobs placed before this one: of higher priority first, else of equal priority."""
    higher = _ahead(db, job, higher_only=True)
    if higher:
        return f"{_jobs(higher)} of higher priority {_are(higher)} ahead in queue {job.queue}"
    earlier = _ahead(db, job, higher_only=False)
    if earlier:
        same = f"{_jobs(earlier)} of the same priority submitted earlier"
        return f"{same} {_are(earlier)} ahead in queue {job.queue}"
    return None


def _all_busy(db: Db, job: Waiting, serving: list[Any]) -> str | None:
    """Say so when every worker that fits the job runs as much as it can."""
    fitting = [w for w in serving if _fits(w, job)]
    rows = db.execute(
        select(Job.worker_id, func.count(), func.coalesce(func.sum(Job.gpus), 0))
        .where(Job.worker_id.in_([w.id for w in fitting]), Job.status.in_([s.value for s in LEASED]))
        .group_by(Job.worker_id)
    ).all()
    busy = {worker_id: (int(n), int(gpus)) for worker_id, n, gpus in rows}
    for w in fitting:
        running, held = busy.get(w.id, (0, 0))
        if running < w.slots and w.gpus - held >= job.gpus:
            return None
    return f"all {len(fitting)} worker(s) of queue {job.queue} that fit it are busy"


# The order in which reasons are looked for.
CHECKS: list[Check] = [_tenant_limit, _no_worker, _no_fit, _ahead_in_queue, _all_busy]


def _ahead(db: Db, job: Waiting, *, higher_only: bool) -> int:
    """Count the waiting jobs of the job's queue that placement takes before it.

    A job whose tenant already runs its max_running_jobs does not count: placement passes it over.
    """
    before = Job.priority > job.priority
    if not higher_only:
        same = Job.priority == job.priority
        earlier = or_(
            Job.created_at < job.created_at, and_(Job.created_at == job.created_at, Job.id < job.id)
        )
        before = or_(before, and_(same, earlier))
    ahead = [Job.status.in_([s.value for s in WAITING]), Job.queue == job.queue, Job.id != job.id, before]
    tenants = [t for t in db.execute(select(Job.tenant_id).where(*ahead).distinct()).scalars() if t]
    held = [t for t, (running, bound) in _running_limits(db, tenants).items() if running >= bound]
    if held:
        ahead.append(Job.tenant_id.not_in(held))
    return int(db.execute(select(func.count()).where(*ahead)).scalar_one())


def _fits(worker: Any, job: Waiting) -> bool:
    """Return whether the worker has the devices the job asks for (free or not)."""
    if worker.gpus < job.gpus:
        return False
    return job.gpu_memory_gb is None or (worker.gpu_memory_gb or 0) >= job.gpu_memory_gb


def _gpus(n: int) -> str:
    """Return '1 GPU' / '4 GPUs'."""
    return f"{n} GPU" if n == 1 else f"{n} GPUs"


def _jobs(n: int) -> str:
    """Return '1 job' / '2 jobs'."""
    return f"{n} job" if n == 1 else f"{n} jobs"


def _are(n: int) -> str:
    """Return 'is' / 'are'."""
    return "is" if n == 1 else "are"


def is_waiting(status: str) -> bool:
    """Return whether a job in `status` waits for placement."""
    return JobStatus(status) in WAITING
