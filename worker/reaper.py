"""The reaper: re-queue jobs whose worker stopped heartbeating, and finish abandoned cancels."""

from __future__ import annotations

import logging

from sqlalchemy import select

from trainforge.db.models import Job
from trainforge.db.session import session_scope
from trainforge.jobs import lease
from trainforge.settings import Settings, get_settings
from trainforge.vocab import WAITING

log = logging.getLogger(__name__)


def reap(settings: Settings | None = None) -> list[lease.Reaped]:
    """Move stale running jobs to retrying (re-sent) and stale cancelling jobs to cancelled; return them."""
    settings = settings or get_settings()
    with session_scope() as session:
        reaped = lease.reap_stale(session, settings.lease_timeout_s, settings.max_attempts)
    for item in reaped:
        log.warning("job %s had a stale lease; now %s", item.job_id, item.status)
    return reaped


def resend_waiting(settings: Settings | None = None) -> int:
    """Send run_job again for every queued or retrying job; return how many.

    Run when a worker starts: a broker that lost its messages (Redis restarted without persistence)
    must not strand jobs, since the database is the source of truth. A duplicate delivery is harmless:
    only one run takes the lease, the others are dropped.
    """
    settings = settings or get_settings()
    with session_scope() as session:
        rows = session.execute(
            select(Job.id, Job.resources).where(Job.status.in_([s.value for s in WAITING]))
        ).all()
        for job_id, resources in rows:
            lease.send_run_job(session, job_id, resources)
    return len(rows)
