"""The words the API, the worker, the client and the CLI share: job statuses, event types, queues and tasks.

Standard library only: the client, the CLI and the worker import it without loading the database
layer, and every other module takes these names from here instead of spelling them again.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """Where a job stands."""

    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RETRYING = "retrying"


TERMINAL: frozenset[JobStatus] = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
WAITING: frozenset[JobStatus] = frozenset({JobStatus.QUEUED, JobStatus.RETRYING})
# The statuses in which a worker holds the job's lease and heartbeats it.
LEASED: frozenset[JobStatus] = frozenset({JobStatus.RUNNING, JobStatus.CANCELLING})

# The lifecycle event recorded when a job enters each status.
LIFECYCLE_EVENTS: dict[JobStatus, str] = {
    JobStatus.QUEUED: "job.queued",
    JobStatus.RUNNING: "job.started",
    JobStatus.CANCELLING: "job.cancelling",
    JobStatus.SUCCEEDED: "job.succeeded",
    JobStatus.FAILED: "job.failed",
    JobStatus.CANCELLED: "job.cancelled",
    JobStatus.RETRYING: "job.retrying",
}
TERMINAL_EVENTS: frozenset[str] = frozenset(LIFECYCLE_EVENTS[s] for s in TERMINAL)
# Recorded on a job when one of its deliveries made the service disable a tenant's endpoint.
ENDPOINT_DISABLED_EVENT = "webhook.endpoint_disabled"

# Celery queues: training runs, webhook deliveries (and their sweep), everything else.
JOBS_QUEUE = "jobs"
WEBHOOKS_QUEUE = "webhooks"
DEFAULT_QUEUE = "default"
# What the service worker consumes: never a queue for training jobs.
SERVICE_QUEUES: frozenset[str] = frozenset({WEBHOOKS_QUEUE, DEFAULT_QUEUE})

# Task names: the API enqueues by name and never imports the worker.
RUN_JOB = "trainforge.run_job"
REAP_JOBS = "trainforge.reap_jobs"
DELIVER_WEBHOOK = "trainforge.deliver_webhook"
# An event's deliveries, claimed, sent and recorded together by one task.
DELIVER_WEBHOOKS = "trainforge.deliver_webhooks"
SWEEP_WEBHOOKS = "trainforge.sweep_webhooks"
# Validation of an upload runs on the service queue, never in the API process.
VALIDATE_DATASET = "trainforge.validate_dataset"
VALIDATE_MODEL = "trainforge.validate_model"


class UploadStatus(StrEnum):
    """Where an uploaded dataset or model stands: uploading → validating → ready | invalid."""

    UPLOADING = "uploading"
    VALIDATING = "validating"
    READY = "ready"
    INVALID = "invalid"


# Delivery statuses of a webhook delivery row.
DELIVERY_STATUSES: tuple[str, ...] = ("pending", "succeeded", "failed")
