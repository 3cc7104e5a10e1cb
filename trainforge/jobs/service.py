"""Job operations shared by the API and the CLI: create (validated, idempotent) and cancel. Never commits."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trainer_engine.cfg import ConfigError, get_cfg
from trainforge import events, pubsub, references
from trainforge.datasets.resolve import resolve_inputs
from trainforge.db.models import Job, JobTag
from trainforge.db.session import savepoint
from trainforge.db.types import new_id, utcnow
from trainforge.errors import Conflict, Invalid
from trainforge.jobs import limits, repository
from trainforge.jobs.lease import send_run_job
from trainforge.jobs.state import transition
from trainforge.registry import TrainerError, resolve_trainer
from trainforge.schemas import JobCreate
from trainforge.settings import Settings
from trainforge.vocab import LIFECYCLE_EVENTS, TERMINAL, WAITING, JobStatus
from trainforge.webhooks.service import inline_webhooks

# Keys the service sets itself: the run's directory is <artifacts_dir>/<job_id>, resumed automatically.
RESERVED_OVERRIDES = {
    "project": "the service stores every run under its artifacts directory",
    "name": "the run is named after the job id",
    "exist_ok": "the service reuses the job's own directory",
    "resume": "the service resumes from last.pt by itself after a worker is lost",
    "mode": "jobs always train",
    "source": "jobs always train, and only predicting reads a source",
}


@dataclass
class Created:
    """The outcome of create_job: the job, whether this call made it, and inline webhook secrets to show."""

    job: Job
    created: bool
    webhooks: list[dict[str, Any]] = field(default_factory=list)


def request_hash(body: JobCreate) -> str:
    """Return a stable hash of a job request (to spot an Idempotency-Key reused with another body)."""
    return hashlib.sha256(json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def validate_overrides(overrides: dict[str, Any], task: str | None) -> dict[str, Any]:
    """Validate overrides with the engine's get_cfg; raise Invalid naming the key and the fix."""
    for key, why in RESERVED_OVERRIDES.items():
        if key in overrides:
            raise Invalid(f"override '{key}' cannot be set: {why}; remove it", key=key)
    try:
        get_cfg(overrides=overrides, task=task)
    except ConfigError as exc:
        raise Invalid(exc.message, key=exc.key) from None
    except (TypeError, ValueError) as exc:
        raise Invalid(f"invalid overrides: {exc}") from None
    return overrides


def create_job(
    session: Session,
    tenant_id: str,
    body: JobCreate,
    settings: Settings,
    idempotency_key: str | None = None,
) -> Created:
    """Validate and insert a queued job, emit job.queued and send run_job after commit.

    With `idempotency_key`, a repeated request returns the job the first one created.
    """
    digest = request_hash(body)
    if idempotency_key:
        existing = _existing(session, tenant_id, idempotency_key, digest)
        if existing is not None:
            return Created(existing, created=False)
    try:
        spec = resolve_trainer(body.trainer, settings.trainer_modules)
    except TrainerError as exc:
        raise Invalid(str(exc), key="trainer") from None
    task = spec.task or body.task
    if spec.task and body.task and body.task != spec.task:
        raise Invalid(
            f"task '{body.task}' does not match trainer '{spec.name}' (task '{spec.task}'); drop 'task'"
        )
    validate_overrides(body.overrides, task)
    # Checked here so a bad reference is a 422 now; the worker resolves them again when the job runs.
    references.resolve_overrides(references.Context(session, tenant_id, settings, task), body.overrides)
    # The exact dataset and model versions the job runs on, whatever is uploaded under their names later.
    inputs = resolve_inputs(session, tenant_id, body.overrides, task)
    hooks = inline_webhooks([hook.model_dump() for hook in body.webhooks], settings)
    limits.check_submission(session, tenant_id, body, task, settings)
    job = Job(
        id=new_id(),
        tenant_id=tenant_id,
        name=body.name,
        trainer=spec.name,
        trainer_ref=spec.ref,
        task=task,
        overrides=body.overrides,
        resources=body.resources.model_dump(),
        queue=body.resources.queue,
        gpus=body.resources.gpus,
        gpu_memory_gb=body.resources.gpu_memory_gb,
        webhooks=hooks,
        priority=body.priority,
        tags=body.tags,
        status=JobStatus.QUEUED.value,
        idempotency_key=idempotency_key,
        request_hash=digest,
        created_at=utcnow(),
    )
    try:
        # A savepoint, so losing the race undoes only this insert: rolling back the whole request
        # would also drop what it registered to run after commit.
        with savepoint(session):
            session.add(job)
            session.add_all(JobTag(job_id=job.id, tag=tag) for tag in body.tags)
            for item in inputs:
                item.job_id = job.id
            session.add_all(inputs)
    except IntegrityError:
        # Another request with the same Idempotency-Key won the race: answer with its job.
        existing = _existing(session, tenant_id, idempotency_key or "", digest)
        if existing is None:
            raise
        return Created(existing, created=False)
    events.emit(session, job.id, LIFECYCLE_EVENTS[JobStatus.QUEUED], {"trainer": spec.name})
    send_run_job(session, job.id, job.resources)
    return Created(
        job, created=True, webhooks=[{k: h[k] for k in ("id", "url", "events", "secret")} for h in hooks]
    )


def _existing(session: Session, tenant_id: str, key: str, digest: str) -> Job | None:
    """Return the job made with this Idempotency-Key; Conflict if it was made from another body."""
    job = repository.get_by_idempotency_key(session, tenant_id, key)
    if job is not None and job.request_hash != digest:
        raise Conflict(
            f"Idempotency-Key {key!r} was already used for a different request (job {job.id}); "
            "use a new key for a new job"
        )
    return job


def cancel_job(session: Session, job_id: str) -> Job:
    """Cancel job `job_id`: a waiting one ends cancelled at once; a running one goes to cancelling.

    The caller has checked the job's tenant; the row is read again here, inside this transaction.

    The running job's worker learns about it from a notice on `trainforge:jobs:{id}:control` (sent
    after commit) or from its next heartbeat, stops the trainer at a batch boundary and records cancelled.
    """
    job = session.get_one(Job, job_id)
    for _ in range(3):  # the status may change under us (a worker takes the job); re-read and retry
        status = JobStatus(job.status)
        if status in TERMINAL:
            raise Conflict(f"job {job.id} already ended ({status.value}); there is nothing to cancel")
        if status is JobStatus.CANCELLING:
            return job
        if status in WAITING and transition(session, job.id, JobStatus.CANCELLED, from_=WAITING):
            events.emit(
                session, job.id, LIFECYCLE_EVENTS[JobStatus.CANCELLED], {"reason": "cancelled before it ran"}
            )
            break
        if status is JobStatus.RUNNING and transition(
            session,
            job.id,
            JobStatus.CANCELLING,
            from_=JobStatus.RUNNING,
            values={"cancel_requested_at": utcnow()},
        ):
            events.emit(session, job.id, LIFECYCLE_EVENTS[JobStatus.CANCELLING], {"reason": "requested"})
            pubsub.publish_after_commit(
                session, pubsub.control_channel(job.id), {"action": "cancel", "job_id": job.id}
            )
            break
        session.refresh(job)
    session.refresh(job)
    return job
