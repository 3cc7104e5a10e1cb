"""Job events: persist first (with the next per-job sequence number), then notify after commit.

`emit()` is the one way an event is recorded. In one transaction it
1. allocates the next `seq` with `UPDATE jobs SET event_seq = event_seq + 1 ... RETURNING` (the row
   lock makes this race-free on PostgreSQL; SQLite serialises writers); a run's events pass its
   fence (`trainforge.jobs.fence`), so the UPDATE matches only while that run holds the lease,
2. skips the event if `(job_id, dedupe_key)` already exists (re-emission after a crash is a no-op),
3. inserts the job_events row,
4. lets the webhook outbox add its delivery rows (`trainforge.webhooks.outbox.enqueue_for_event`),
and after COMMIT publishes the event JSON on `trainforge:jobs:{job_id}:events`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from trainforge.db.models import Job, JobEvent
from trainforge.db.types import new_id, utcnow
from trainforge.jobs.fence import Fence, LeaseLostError
from trainforge.pubsub import events_channel, publish_after_commit
from trainforge.webhooks import outbox


class UnknownJobError(LookupError):
    """An event for a job that does not exist."""


# The columns of an event's public form, in the order event_json reads them.
EVENT_COLUMNS = (
    JobEvent.id,
    JobEvent.job_id,
    JobEvent.seq,
    JobEvent.type,
    JobEvent.created_at,
    JobEvent.data,
)


def event_json(event: JobEvent | Row[Any]) -> dict[str, Any]:
    """Return the public JSON form of an event: {id, job_id, seq, type, created_at, data}."""
    return {
        "id": event.id,
        "job_id": event.job_id,
        "seq": event.seq,
        "type": event.type,
        "created_at": _iso(event.created_at),
        "data": event.data,
    }


def _iso(value: datetime) -> str:
    """Format a timestamp as ISO 8601 with a Z suffix."""
    return value.isoformat().replace("+00:00", "Z")


def emit(
    session: Session,
    job_id: str,
    type: str,
    data: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    fence: Fence | None = None,
) -> dict[str, Any] | None:
    """Record event `type` for `job_id` and return its JSON, or None if `dedupe_key` was already used.

    Never commits: the caller's boundary does, and the Redis publish waits for that commit.
    Raises UnknownJobError when the job does not exist, LeaseLostError when `fence` no longer holds.
    """
    seq = session.execute(
        update(Job)
        .where(Job.id == job_id, *(fence.guard() if fence else ()))
        .values(event_seq=Job.event_seq + 1)
        .returning(Job.event_seq)
        .execution_options(synchronize_session=False)
    ).scalar()
    if seq is None:
        if fence is not None and session.get(Job, job_id) is not None:
            raise LeaseLostError(
                f"job {job_id!r} is no longer leased to {fence.owner} (attempt {fence.attempt})"
            )
        raise UnknownJobError(f"no job {job_id!r}")
    if dedupe_key is not None and _seen(session, job_id, dedupe_key):
        # We hold the job row's lock, so giving the number back keeps seq gap-free.
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(event_seq=Job.event_seq - 1)
            .execution_options(synchronize_session=False)
        )
        return None
    event = JobEvent(
        id=new_id(),
        job_id=job_id,
        seq=seq,
        type=type,
        # NaN and infinities become null where every write goes out: db.session.json_dumps.
        data=data or {},
        dedupe_key=dedupe_key,
        created_at=utcnow(),
    )
    session.add(event)
    session.flush()
    payload = event_json(event)
    # The outbox adds its delivery rows in this transaction; their sends wait for the commit too.
    outbox.enqueue_for_event(session, session.get(Job, job_id), event, payload)
    publish_after_commit(session, events_channel(job_id), payload)
    return payload


def _seen(session: Session, job_id: str, dedupe_key: str) -> bool:
    """Return whether the job already has an event with `dedupe_key`."""
    found = session.execute(
        select(JobEvent.id).where(JobEvent.job_id == job_id, JobEvent.dedupe_key == dedupe_key)
    ).first()
    return found is not None


def list_events(
    session: Session, job_id: str, after: int = 0, limit: int = 100, types: Sequence[str] = ()
) -> list[Row[Any]]:
    """Return up to `limit` events of a job with seq > `after`, in seq order; only `types` if given.

    Rows, not ORM objects: a page is read once and rendered, and a thousand identity-mapped
    objects cost several times the query itself.
    """
    query = select(*EVENT_COLUMNS).where(JobEvent.job_id == job_id, JobEvent.seq > after)
    if types:
        query = query.where(JobEvent.type.in_(types))
    return list(session.execute(query.order_by(JobEvent.seq).limit(limit)))
