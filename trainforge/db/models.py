"""The database schema as SQLAlchemy 2 models; migrations/ is generated from and checked against it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from trainforge.db.types import UTCDateTime, new_id, utcnow

# Stable constraint names: Alembic batch mode on SQLite needs them to alter tables.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(36)


class Base(DeclarativeBase):
    """Declarative base with the project's naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class Tenant(Base):
    """An organisation; every job, token and webhook endpoint belongs to one."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A bearer token of a tenant, stored as the SHA-256 of the token; `prefix` finds the row."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ID, ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str | None] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # None: the token never expires (`trainforge token create --expires 30d` sets it).
    expires_at: Mapped[datetime | None]


class TenantLimits(Base):
    """A tenant's own limits, each replacing the operator's setting of the same name (see jobs/limits.py)."""

    __tablename__ = "tenant_limits"

    tenant_id: Mapped[str] = mapped_column(ID, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    # {"max_running_jobs": 2, "queues": ["jobs"], ...}: only the keys the operator set for this tenant.
    limits: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Job(Base):
    """One training run: what to run, where it stands, and who holds its lease."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_jobs_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_jobs_status_heartbeat", "status", "heartbeat_at"),
        # The placement order: a worker takes the waiting job of its queues with the highest priority,
        # the oldest first among equals (trainforge/scheduling/placement.py).
        Index("ix_jobs_placement", "status", "queue", "priority", "created_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ID, ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(200))
    trainer: Mapped[str] = mapped_column(String(300))
    trainer_ref: Mapped[str] = mapped_column(String(300))
    task: Mapped[str | None] = mapped_column(String(50))
    overrides: Mapped[dict[str, Any]] = mapped_column(default=dict)
    resources: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Webhooks given inline in the job: [{"id", "url", "events", "secret"}].
    webhooks: Mapped[list[Any]] = mapped_column(default=list)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    # `resources` copied into columns, so placement filters and orders in SQL on every database.
    queue: Mapped[str] = mapped_column(String(64), default="jobs")
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    gpu_memory_gb: Mapped[float | None]
    # The worker (Celery node name) that took the job's last run.
    worker_id: Mapped[str | None] = mapped_column(String(200), index=True)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    epoch: Mapped[int | None] = mapped_column(Integer)
    epochs: Mapped[int | None] = mapped_column(Integer)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The best epoch so far by the task's headline metric: {"metric", "value", "epoch"}.
    best: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    best_path: Mapped[str | None] = mapped_column(String(1000))
    last_path: Mapped[str | None] = mapped_column(String(1000))
    error: Mapped[str | None] = mapped_column(Text)
    stop_reason: Mapped[str | None] = mapped_column(String(50))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # SHA-256 of the request body, so a reused Idempotency-Key with another body is refused.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None]
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    event_seq: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class Worker(Base):
    """A live worker's inventory, written at start and refreshed by its heartbeat; placement reads it."""

    __tablename__ = "workers"

    # The Celery node name ("jobs-1@host"): what its pool processes see as `request.hostname`.
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    queues: Mapped[list[Any]] = mapped_column(default=list)
    # How many jobs it runs at once (the Celery pool size).
    slots: Mapped[int] = mapped_column(Integer, default=1)
    # "cpu" or "cuda"; `gpus` is 0 on a CPU worker, and the memory is the smallest device's.
    device_kind: Mapped[str] = mapped_column(String(16), default="cpu")
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    gpu_name: Mapped[str | None] = mapped_column(String(200))
    gpu_memory_gb: Mapped[float | None]
    # Where the inventory came from: "detected" (torch in a subprocess) or "declared" (a setting).
    inventory_source: Mapped[str] = mapped_column(String(16), default="detected")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class JobTag(Base):
    """One tag of a job, as a row so tag filters run in SQL before pagination."""

    __tablename__ = "job_tags"

    job_id: Mapped[str] = mapped_column(ID, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class JobEvent(Base):
    """A persisted job event; `seq` orders a job's events, `dedupe_key` makes re-emission a no-op."""

    __tablename__ = "job_events"
    __table_args__ = (UniqueConstraint("job_id", "seq"), UniqueConstraint("job_id", "dedupe_key"))

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ID, ForeignKey("jobs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookEndpoint(Base):
    """A tenant-wide webhook receiver that gets matching events of every job of the tenant."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ID, ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(500))
    events: Mapped[list[Any]] = mapped_column(default=lambda: ["*"])
    # Only jobs carrying one of these tags match; empty means every job.
    tags: Mapped[list[Any]] = mapped_column(default=list)
    secret: Mapped[str] = mapped_column(String(200))
    previous_secret: Mapped[str | None] = mapped_column(String(200))
    previous_secret_expires_at: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    failing_since: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookDelivery(Base):
    """The outbox: one event to send to one receiver (an endpoint, or a webhook inline in a job)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_job", "job_id", "created_at"),
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ID, ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    endpoint_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    job_id: Mapped[str | None] = mapped_column(ID, ForeignKey("jobs.id", ondelete="CASCADE"))
    event_id: Mapped[str | None] = mapped_column(ID, ForeignKey("job_events.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(100))
    # For a job-inline webhook (endpoint_id is NULL) the target lives on the row itself.
    url: Mapped[str | None] = mapped_column(String(2000))
    secret: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The Standard Webhooks `webhook-id`: stable across retries and redeliveries.
    webhook_id: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookAttempt(Base):
    """One HTTP attempt of a delivery and what came back."""

    __tablename__ = "webhook_attempts"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    delivery_id: Mapped[str] = mapped_column(
        ID, ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None]
    error: Mapped[str | None] = mapped_column(Text)
    response_excerpt: Mapped[str | None] = mapped_column(Text)


class _Upload:
    """The columns a dataset and an uploaded model share: a tenant's named, versioned, stored blob."""

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ID, ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    # 1, 2, ... per (tenant, name): uploading the same name again makes the next version.
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="uploading")
    # The SHA-256 of the uploaded bytes: the blob's name in the store (equal bytes are stored once).
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # "zip", "tar.gz" or "pt".
    format: Mapped[str] = mapped_column(String(16))
    # What validation found (layout, splits, classes, counts) and every problem with its place.
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Dataset(_Upload, Base):
    """An uploaded dataset archive (YOLO detection or ImageFolder classification) of one tenant."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("tenant_id", "name", "version"),)

    # "detect" or "classify", known once validation has read the layout.
    task: Mapped[str | None] = mapped_column(String(50))


class ModelWeights(_Upload, Base):
    """An uploaded checkpoint (.pt) of one tenant, usable as `model=` or `pretrained=`."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("tenant_id", "name", "version"),)


class JobInput(Base):
    """The exact dataset or model version a job's override resolved to when it was submitted.

    No foreign key to the dataset: deleting a dataset a finished job used keeps the record of it.
    """

    __tablename__ = "job_inputs"
    __table_args__ = (Index("ix_job_inputs_resource", "resource_id"),)

    job_id: Mapped[str] = mapped_column(ID, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    # The override it fills: data, model or pretrained.
    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "dataset" or "model"
    resource_id: Mapped[str] = mapped_column(ID)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
