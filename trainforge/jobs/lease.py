"""Job leases: one worker owns a running job (lease_owner + heartbeat_at); stale leases are reaped.

Every helper is one guarded UPDATE (or a select followed by guarded UPDATEs), never commits, and
returns whether it took effect, so racing workers and reapers agree on a single winner. Lease times
(heartbeat_at and every cutoff compared with it) are the database server's clock (`db_now()`),
read in the statement itself: a worker whose clock is off can neither reap nor keep a lease by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from trainforge import events, queue
from trainforge.db.models import Job
from trainforge.db.types import db_now
from trainforge.jobs.state import transition
from trainforge.vocab import JOBS_QUEUE, LEASED, LIFECYCLE_EVENTS, RUN_JOB, WAITING, JobStatus


def take_lease(session: Session, job_id: str, owner: str) -> bool:
    """Take the lease of a queued or retrying job and mark it running; False if someone else has it.

    Increments `attempt` and emits `job.started` (with the attempt number) when it wins.
    """
    took = transition(
        session,
        job_id,
        JobStatus.RUNNING,
        from_=WAITING,
        values={"lease_owner": owner, "heartbeat_at": db_now(), "attempt": Job.attempt + 1, "error": None},
    )
    if took:
        attempt = session.execute(select(Job.attempt).where(Job.id == job_id)).scalar_one()
        events.emit(
            session, job_id, LIFECYCLE_EVENTS[JobStatus.RUNNING], {"attempt": attempt, "worker": owner}
        )
    return took


def heartbeat(session: Session, job_id: str, owner: str, attempt: int | None = None) -> str | None:
    """Renew the lease; return the job's status (e.g. "cancelling"), or None if `owner` lost the lease."""
    guard = [] if attempt is None else [Job.attempt == attempt]
    status = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == owner, Job.status.in_([s.value for s in LEASED]), *guard)
        .values(heartbeat_at=db_now())
        .returning(Job.status)
        .execution_options(synchronize_session=False)
    ).scalar()
    return status


def release_lease(
    session: Session,
    job_id: str,
    owner: str,
    to: JobStatus | str,
    *,
    values: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    attempt: int | None = None,
) -> bool:
    """Finish the owner's run: move the job to `to` (succeeded/failed/cancelled/retrying) and emit its event.

    A job in `cancelling` that succeeded stays succeeded (its training finished); one that stopped goes
    to cancelled. Returns False if the owner no longer holds the lease (the reaper took it over) or,
    given `attempt`, the job is on another attempt.
    """
    target = JobStatus(to)
    values = dict(values or {})
    if target is JobStatus.RETRYING:
        values.setdefault("lease_owner", None)
    guard = [] if attempt is None else [Job.attempt == attempt]
    moved = transition(session, job_id, target, owner=owner, values=values, where=guard)
    if moved:
        events.emit(session, job_id, LIFECYCLE_EVENTS[target], data or {})
    return moved


@dataclass(frozen=True)
class Reaped:
    """A job the reaper moved: its id and the status it now has."""

    job_id: str
    status: JobStatus


def reap_stale(session: Session, lease_timeout_s: float, max_attempts: int) -> list[Reaped]:
    """Move running/cancelling jobs whose heartbeat is older than `lease_timeout_s`; return what moved.

    running → retrying (run_job is re-sent after commit; the next run resumes from last.pt), or
    failed once `max_attempts` runs were made; cancelling → cancelled. Each move emits its event.
    """
    cutoff = db_now(-lease_timeout_s)
    stale = session.execute(
        select(Job.id, Job.status, Job.attempt, Job.resources).where(
            Job.status.in_([s.value for s in LEASED]),
            or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < cutoff),
        )
    ).all()
    reaped = []
    for job_id, status, attempt, resources in stale:
        target = _reap_target(JobStatus(status), attempt, max_attempts)
        guard = [or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < cutoff)]
        values: dict[str, Any] = {"lease_owner": None}
        if target is JobStatus.FAILED:
            values["error"] = f"the worker stopped responding and the job already ran {attempt} times"
        if not transition(session, job_id, target, from_=status, values=values, where=guard):
            continue  # its worker heartbeat or finished meanwhile
        events.emit(session, job_id, LIFECYCLE_EVENTS[target], {"reason": "stale lease", "attempt": attempt})
        if target is JobStatus.RETRYING:
            send_run_job(session, job_id, resources)
        reaped.append(Reaped(job_id, target))
    return reaped


def _reap_target(status: JobStatus, attempt: int, max_attempts: int) -> JobStatus:
    """Return where a job with a stale lease goes."""
    if status is JobStatus.CANCELLING:
        return JobStatus.CANCELLED
    return JobStatus.RETRYING if attempt < max_attempts else JobStatus.FAILED


def resend_waiting(session: Session, older_than_s: float, limit: int | None = 100) -> list[str]:
    """Re-send run_job for queued/retrying jobs untouched for `older_than_s`; return their ids.

    A run_job message lost with Redis would leave a job queued forever; sending it again is safe
    because take_lease lets only one run win. `updated_at` is bumped so the next sweep waits again,
    and a job another sweep bumped or a worker took meanwhile is skipped. `limit=None`: all of them.
    """
    cutoff = db_now(-older_than_s)
    rows = session.execute(
        select(Job.id, Job.resources)
        .where(Job.status.in_([s.value for s in WAITING]), Job.updated_at < cutoff)
        .order_by(Job.updated_at)
        .limit(limit)
    ).all()
    resent = []
    for job_id, resources in rows:
        bumped = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.in_([s.value for s in WAITING]), Job.updated_at < cutoff)
            .values(updated_at=db_now())
            .execution_options(synchronize_session=False)
        )
        if bumped.rowcount == 1:  # type: ignore[attr-defined]
            send_run_job(session, job_id, resources)
            resent.append(job_id)
    return resent


def send_run_job(session: Session, job_id: str, resources: dict[str, Any] | None) -> None:
    """Send run_job for the job after commit, on the queue its resources name (default "jobs")."""
    job_queue = (resources or {}).get("queue") or JOBS_QUEUE
    queue.send_after_commit(session, RUN_JOB, [job_id], queue=job_queue)
