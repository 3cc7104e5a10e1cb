"""Request and response bodies of the v1 API (pydantic), shared by the API, the client and tests."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from trainforge.settings import MAX_WEBHOOKS_PER_JOB
from trainforge.vocab import JOBS_QUEUE

TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/=-]{0,99}$"
TAG_RE = re.compile(TAG_PATTERN)
MAX_JSON_DEPTH = 20


def check_json_value(value: Any, where: str, depth: int = 0) -> None:
    """Refuse what JSON columns cannot store: NaN/Infinity, NUL characters, very deep nesting."""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"{where} is nested more than {MAX_JSON_DEPTH} levels deep")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} is {value}; use a finite number")
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(f"{where} contains a NUL character; remove it")
    if isinstance(value, dict):
        for key, item in value.items():
            check_json_value(key, f"{where} key", depth + 1)
            check_json_value(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json_value(item, f"{where}[{index}]", depth + 1)


def check_tag(tag: str) -> str:
    """Return `tag` if it is a valid tag; ValueError explaining the rule otherwise."""
    if not TAG_RE.match(tag):
        raise ValueError(
            f"invalid tag {tag!r}: use 1-100 letters, digits and _ . : / = - "
            "(starting with a letter or digit)"
        )
    return tag


class Strict(BaseModel):
    """A request body that refuses unknown fields (a typo should fail, not be ignored) and unstorable values.

    Every field of every request body is checked here, once: PostgreSQL refuses a NUL character in any
    text it stores, and JSON columns cannot hold NaN, so such a value is a 422 naming the field.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        """Refuse NUL characters, NaN/Infinity and very deep nesting anywhere in the body."""
        if isinstance(data, dict):
            for key, value in data.items():
                check_json_value(value, str(key))
        return data


class ErrorPublic(BaseModel):
    """Every 4xx/5xx answer: what is wrong and how to fix it; `key` names the offending field if one does."""

    model_config = ConfigDict(extra="allow")

    detail: str
    key: str | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="One entry per invalid field (loc, msg, type), on 422 for a bad request."
    )


class Resources(Strict):
    """Where and on what a job runs."""

    queue: str = Field(
        default=JOBS_QUEUE, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Celery queue for run_job."
    )
    gpus: int = Field(
        default=0, ge=0, le=64, description="GPUs for the job; more than one runs under torchrun."
    )
    gpu_memory_gb: float | None = Field(
        default=None,
        gt=0,
        le=1024,
        description="Memory each of the job's GPUs must have, in GB (needs gpus >= 1).",
    )

    @model_validator(mode="after")
    def _memory_needs_gpus(self) -> Resources:
        """Refuse a GPU memory need on a job that asks for no GPU."""
        if self.gpu_memory_gb is not None and self.gpus == 0:
            raise ValueError("gpu_memory_gb needs gpus >= 1; ask for GPUs or drop gpu_memory_gb")
        return self


class JobWebhook(Strict):
    """A webhook that receives this job's events."""

    url: str = Field(min_length=1, max_length=2000, description="http(s) URL that receives signed POSTs.")
    events: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=100)
    secret: str | None = Field(
        default=None,
        description="A `whsec_` secret to sign with; one is generated (and returned once) if absent.",
    )


class JobCreate(Strict):
    """What to run: a trainer, its overrides, and how to run and report it."""

    trainer: str = Field(
        min_length=1,
        max_length=300,
        description="'classify', 'detect', or an allowed 'package.module:Class'.",
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Trainer config keys (see /v1/trainers)."
    )
    task: Literal["classify", "detect"] | None = Field(
        default=None, description="The task of a custom trainer (validates task-specific overrides)."
    )
    webhooks: list[JobWebhook] = Field(default_factory=list, max_length=MAX_WEBHOOKS_PER_JOB)
    resources: Resources = Field(default_factory=Resources)
    priority: int = Field(default=0, ge=0, le=9)
    name: str | None = Field(default=None, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=20)

    @field_validator("tags")
    @classmethod
    def _tags_valid(cls, tags: list[str]) -> list[str]:
        """Check each tag's characters and drop duplicates."""
        return list(dict.fromkeys(check_tag(t) for t in tags))

    @field_validator("name")
    @classmethod
    def _name_printable(cls, name: str | None) -> str | None:
        """Refuse control characters in the name."""
        if name is not None and any(ord(c) < 32 for c in name):
            raise ValueError("name contains control characters; use printable text")
        return name


class JobLinks(BaseModel):
    """Where to find more about a job."""

    self: str
    events: str
    logs: str
    artifacts: str
    cancel: str
    best: str | None = None
    last: str | None = None


class JobAccepted(BaseModel):
    """The answer to POST /v1/jobs."""

    id: str
    status: str
    links: JobLinks
    webhooks: list[dict[str, Any]] = Field(
        default_factory=list, description="Inline webhooks with their secrets (shown only in this answer)."
    )


class JobPublic(BaseModel):
    """A job as the API shows it."""

    id: str
    name: str | None
    trainer: str
    trainer_ref: str
    status: str
    overrides: dict[str, Any]
    resources: dict[str, Any]
    priority: int
    tags: list[str]
    task: str | None
    webhooks: list[dict[str, Any]] = Field(
        description="Inline webhooks (their secrets are shown only at creation)."
    )
    epoch: int | None = Field(description="The last finished epoch (1-based).")
    epochs: int | None
    progress: dict[str, Any] | None
    metrics: dict[str, Any] | None
    best: dict[str, Any] | None = Field(
        default=None,
        description="The best epoch so far by the task's headline metric (mAP50-95, top-1): "
        "{metric, value, epoch}.",
    )
    error: str | None
    stop_reason: str | None
    attempt: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    worker: str | None = Field(default=None, description="The worker that runs (or last ran) the job.")
    position: int | None = Field(
        default=None, description="A waiting job's place in its queue (1: next), in placement order."
    )
    pending_reason: str | None = Field(default=None, description="Why a waiting job has not started yet.")
    links: JobLinks


class DevicesPublic(BaseModel):
    """What a worker trains on: `kind` "cpu" (count 0) or "cuda" with the count, name and memory."""

    kind: str
    count: int
    name: str | None
    memory_gb: float | None = Field(description="Memory of each device (the smallest), in GB.")
    source: str = Field(description='"detected" by torch, or "declared" by the operator in settings.')


class WorkerPublic(BaseModel):
    """A live worker: its queues, devices, the jobs it runs, its last heartbeat."""

    id: str
    hostname: str
    queues: list[str]
    slots: int = Field(description="Jobs it runs at once.")
    devices: DevicesPublic
    running: int = Field(description="Jobs it runs now, of every tenant.")
    jobs: list[str] = Field(description="Your jobs among them (other tenants' are only counted).")
    started_at: datetime
    heartbeat_at: datetime


class WorkersPublic(BaseModel):
    """Every live worker (one that heartbeat within the lease timeout)."""

    data: list[WorkerPublic]


class JobsPublic(BaseModel):
    """A page of jobs; pass `next_cursor` as `cursor` for the next page (null at the end)."""

    data: list[JobPublic]
    next_cursor: str | None


class EventPublic(BaseModel):
    """A persisted job event."""

    id: str
    job_id: str
    seq: int
    type: str
    created_at: str
    data: dict[str, Any]


class EventsPublic(BaseModel):
    """A page of events in seq order; pass `next_cursor` as `after` for the next page."""

    data: list[EventPublic]
    next_cursor: int | None


class ArtifactPublic(BaseModel):
    """A file a job produced."""

    name: str
    size: int
    url: str


class ArtifactsPublic(BaseModel):
    """The files a job produced."""

    data: list[ArtifactPublic]


class TrainerPublic(BaseModel):
    """A runnable trainer and the override keys it accepts."""

    name: str
    ref: str
    task: str | None
    overrides: dict[str, dict[str, Any]]


class TrainersPublic(BaseModel):
    """What can be run: built-in trainers, and module prefixes allowed for custom ones."""

    data: list[TrainerPublic]
    allowed_modules: list[str]
