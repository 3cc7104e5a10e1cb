"""The reaper: re-queue jobs with a stale lease, finish abandoned cancels, re-send waiting jobs.

`sweep()` is what the beat schedule runs every `reap_interval_s` (task `trainforge.reap_jobs`);
a starting worker also re-sends every waiting job once (`resend_waiting`).
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from trainforge.db.models import Job
from trainforge.db.session import session_scope
from trainforge.jobs import lease
from trainforge.jobs import limits as job_limits
from trainforge.settings import Settings, get_settings

log = logging.getLogger(__name__)


def reap(settings: Settings | None = None) -> list[lease.Reaped]:
    """Move stale running jobs to retrying (re-sent) and stale cancelling jobs to cancelled; return them."""
    settings = settings or get_settings()
    with session_scope() as session:
        reaped = lease.reap_stale(session, settings.lease_timeout_s, settings.max_attempts)
        # A reaped run frees its tenant's running slot: send the jobs that max_running_jobs held back.
        ids = [item.job_id for item in reaped]
        tenants: list[str] = (
            list(session.execute(select(Job.tenant_id).where(Job.id.in_(ids)).distinct()).scalars())
            if ids
            else []
        )
        for tenant_id in tenants:
            job_limits.wake_waiting(session, tenant_id, settings)
    for item in reaped:
        log.warning("job %s had a stale lease; now %s", item.job_id, item.status)
    return reaped


def resend_stuck(settings: Settings | None = None) -> list[str]:
    """Re-send run_job for jobs waiting longer than `resend_waiting_after_s` untouched; return their ids.

    Their message may be lost (sent while Redis was down, or Redis restarted without it). A job whose
    message is still in the broker gets a second one; take_lease lets only one of them run it.
    """
    settings = settings or get_settings()
    with session_scope() as session:
        resent = lease.resend_waiting(session, older_than_s=settings.resend_waiting_after_s, limit=None)
    for job_id in resent:
        log.warning(
            "job %s waited %.0f s or more without a worker; run_job re-sent",
            job_id,
            settings.resend_waiting_after_s,
        )
    return resent


def sweep(settings: Settings | None = None) -> tuple[list[lease.Reaped], list[str]]:
    """Reap stale leases, then re-send waiting jobs without a live message; return both."""
    settings = settings or get_settings()
    return reap(settings), resend_stuck(settings)


def resend_waiting() -> list[str]:
    """Send run_job again for every queued or retrying job; return their ids.

    Run when a worker starts: a broker that lost its messages (Redis restarted without persistence)
    must not strand jobs, since the database is the source of truth. A duplicate delivery is harmless:
    only one run takes the lease, the others are dropped.
    """
    with session_scope() as session:
        return lease.resend_waiting(session, older_than_s=0.0, limit=None)
