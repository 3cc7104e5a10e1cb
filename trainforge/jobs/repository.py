"""Job queries: fetch within a tenant, list with filters and a keyset cursor. Never commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, exists, func, or_, select, update
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from trainforge.cursors import decode_cursor, encode_cursor
from trainforge.db.models import Job, JobTag
from trainforge.jobs.fence import Fence, LeaseLostError
from trainforge.metrics import best_so_far

# A job as the API shows it: a read-only row with the columns below (not an ORM object).
JobView = Row[Any]

# What a job view shows (api.presenters.job_public); bookkeeping columns (lease, hashes) stay unread.
_VIEW_COLUMNS = [
    c for c in Job.__table__.c if c.name not in {
        "tenant_id", "idempotency_key", "request_hash", "lease_owner", "heartbeat_at", "event_seq",
        "cancel_requested_at", "updated_at",
    }
]  # fmt: skip
# Built once: this lookup runs on every request about a job, and building the statement costs more
# than its (cached) compilation.
_JOB_VIEW_OF_TENANT = select(*_VIEW_COLUMNS).where(
    Job.__table__.c.id == bindparam("job_id"), Job.__table__.c.tenant_id == bindparam("tenant_id")
)


def read_view_for_tenant(engine: Engine, tenant_id: str, job_id: str) -> JobView | None:
    """Return the tenant's job as a read-only row of its view columns, or None if it is not theirs.

    A plain row on its own connection, not an ORM object in a session: loading the ORM object and
    ending the session's transaction doubled the CPU time of GET /v1/jobs/{id} (bench/api_status.py).
    """
    params = {"job_id": job_id, "tenant_id": tenant_id}
    try:
        with engine.connect() as conn:
            return conn.execute(_JOB_VIEW_OF_TENANT, params).first()
    except DBAPIError as exc:
        # A server restart drops every pooled connection, and the read engine does not ping first
        # (one round trip per read): the first read after it fails, which invalidates the pool, so
        # one more try gets a fresh connection. Any other error is the caller's (503 or a bug).
        if not exc.connection_invalidated:
            raise
    with engine.connect() as conn:
        return conn.execute(_JOB_VIEW_OF_TENANT, params).first()


def status_of(session: Session, job_id: str) -> str | None:
    """Return a job's status, or None when it is gone (streams re-check it without loading the row)."""
    return session.execute(select(Job.status).where(Job.id == job_id)).scalar_one_or_none()


def status_for_tenant(session: Session, tenant_id: str, job_id: str) -> str | None:
    """Return the status of the tenant's job `job_id`, or None when there is no such job of theirs."""
    return session.execute(
        select(Job.status).where(Job.id == job_id, Job.tenant_id == tenant_id)
    ).scalar_one_or_none()


def get_by_idempotency_key(session: Session, tenant_id: str, key: str) -> Job | None:
    """Return the tenant's job created with Idempotency-Key `key`, or None."""
    return session.execute(
        select(Job).where(Job.tenant_id == tenant_id, Job.idempotency_key == key)
    ).scalar_one_or_none()


def list_for_tenant(
    session: Session,
    tenant_id: str,
    *,
    statuses: list[str] | None = None,
    tags: list[str] | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Job], str | None]:
    """Return one page of the tenant's jobs, newest first, filtered before paging, and the next cursor.

    A job matches when its status is one of `statuses` and it carries every tag in `tags`.
    """
    stmt = select(Job).where(Job.tenant_id == tenant_id)
    if statuses:
        stmt = stmt.where(Job.status.in_(statuses))
    for tag in tags or ():
        stmt = stmt.where(exists().where(JobTag.job_id == Job.id, JobTag.tag == tag))
    if cursor:
        created, job_id = decode_cursor(cursor)
        stmt = stmt.where(or_(Job.created_at < created, and_(Job.created_at == created, Job.id < job_id)))
    rows = list(session.scalars(stmt.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)))
    page = rows[:limit]
    return page, (encode_cursor(page[-1].created_at, page[-1].id) if len(rows) > limit else None)


def count_by_status(session: Session) -> dict[str, int]:
    """Return how many jobs are in each status (all tenants), for /metrics."""
    rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
    return {status: int(n) for status, n in rows}


def record_progress(
    session: Session,
    job_id: str,
    *,
    epoch: int | None = None,
    epochs: int | None = None,
    metrics: dict[str, Any] | None = None,
    progress: dict[str, Any] | None = None,
    best_path: str | None = None,
    last_path: str | None = None,
    fence: Fence | None = None,
) -> None:
    """Store a running job's latest epoch (1-based), metrics, batch progress and checkpoint paths.

    The best epoch so far (`best`) moves when `metrics` beat it on the task's headline metric.

    With `fence`, only while that run holds the lease; raises LeaseLostError otherwise.
    """
    values: dict[str, Any] = {
        key: value
        for key, value in {
            "epoch": epoch,
            "epochs": epochs,
            "metrics": metrics,
            "progress": progress,
            "best_path": best_path,
            "last_path": last_path,
        }.items()
        if value is not None
    }
    if not values:
        return
    if metrics is not None:
        stored = session.execute(select(Job.best).where(Job.id == job_id)).scalar_one_or_none()
        best = best_so_far(stored, metrics, epoch)
        if best is not None:
            values["best"] = best
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, *(fence.guard() if fence else ()))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if fence is not None and result.rowcount == 0:  # type: ignore[attr-defined]
        raise LeaseLostError(f"job {job_id!r} is no longer leased to {fence.owner} (attempt {fence.attempt})")
