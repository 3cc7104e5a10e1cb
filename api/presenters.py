"""Build API response bodies from rows (links included)."""

from __future__ import annotations

from pathlib import Path

from trainforge.db.models import Job
from trainforge.jobs.repository import JobView
from trainforge.rundir import RunDir
from trainforge.scheduling.pending import Pending
from trainforge.schemas import JobLinks, JobPublic


def job_links(job: Job | JobView, artifacts_dir: Path | None = None) -> JobLinks:
    """Return the links of a job; best/last only when the checkpoint exists."""
    base = f"/v1/jobs/{job.id}"
    links = JobLinks(
        self=base,
        events=f"{base}/events",
        logs=f"{base}/logs",
        artifacts=f"{base}/artifacts",
        cancel=f"{base}/cancel",
    )
    # A job that never started has no checkpoints; otherwise trust the recorded paths, then the disk.
    if artifacts_dir is not None and job.started_at is not None:
        run = RunDir.of(artifacts_dir, job.id)
        if job.best_path or run.best.is_file():
            links.best = f"{base}/artifacts/best.pt"
        if job.last_path or run.last.is_file():
            links.last = f"{base}/artifacts/last.pt"
    return links


def job_public(
    job: Job | JobView, artifacts_dir: Path | None = None, pending: Pending | None = None
) -> JobPublic:
    """Return the public view of a job (with its position and reason when it waits and they are known)."""
    return JobPublic(
        id=job.id,
        name=job.name,
        trainer=job.trainer,
        trainer_ref=job.trainer_ref,
        status=job.status,
        task=job.task,
        webhooks=[{k: h.get(k) for k in ("id", "url", "events")} for h in job.webhooks or []],
        overrides=job.overrides or {},
        resources=job.resources or {},
        priority=job.priority,
        tags=list(job.tags or []),
        epoch=job.epoch,
        epochs=job.epochs,
        progress=job.progress,
        metrics=job.metrics,
        best=job.best,
        error=job.error,
        stop_reason=job.stop_reason,
        attempt=job.attempt,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        worker=job.worker_id,
        position=pending.position if pending else None,
        pending_reason=pending.reason if pending else None,
        links=job_links(job, artifacts_dir),
    )
