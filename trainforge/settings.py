"""The one settings object of the service, read from `TRAINFORGE_*` environment variables."""

from __future__ import annotations

import ipaddress
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from trainforge.scheduling.inventory import parse_declared
from trainforge.vocab import SERVICE_QUEUES
from trainforge.webhooks.ssrf import Policy

DEFAULT_DATABASE_URL = "sqlite:///./.trainforge/trainforge.db"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# Immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (Standard Webhooks' suggested schedule).
DEFAULT_WEBHOOK_RETRY_SCHEDULE_S = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)

# The most inline webhooks a job body may list at all; TRAINFORGE_WEBHOOK_MAX_PER_JOB sets the cap below it.
MAX_WEBHOOKS_PER_JOB = 100

CommaList = Annotated[list[str], NoDecode]
QUEUE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")


def parse_size(value: str | int) -> int:
    """Return a byte count from an int or a string like "500M", "10GB", "64k" (binary units)."""
    if isinstance(value, int):
        return value
    match = SIZE_RE.match(value.lower())
    if match is None or match.group(2) not in SIZE_UNITS:
        raise ValueError(f"{value!r} is not a size; write bytes or a number with K, M or G, e.g. 500M")
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2)])


def _parse_size(value: Any) -> Any:
    """Accept a size string ("10G") where a byte count is expected."""
    return parse_size(value) if isinstance(value, str) and value.strip() else value or None


def _split_list(value: Any) -> Any:
    """Accept a JSON list, a Python list or a comma-separated string."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Service configuration; every field can be set as `TRAINFORGE_<FIELD>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="TRAINFORGE_", extra="ignore", validate_default=True)

    env: Literal["development", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str = DEFAULT_REDIS_URL
    artifacts_dir: Path = Path("./.trainforge/artifacts")
    # Uploaded datasets and models, content-addressed (the shared volume in production).
    storage_dir: Path = Path("./.trainforge/storage")
    # A worker's own disk: extracted datasets by content hash, and the engine's label caches.
    cache_dir: Path = Path("./.trainforge/cache")
    cache_max_bytes: int = Field(default=50 * 1024**3, gt=0, description="Extracted sets kept, LRU.")
    # Module prefixes from which "package.module:Class" trainers may be loaded ("mypkg" allows mypkg.*).
    trainer_modules: CommaList = Field(default_factory=list)
    # CIDRs or host names webhooks may reach although they are private/loopback (e.g. "127.0.0.0/8");
    # "*" allows every address (development only).
    webhook_allow: CommaList = Field(default_factory=list)
    # Folders whose files jobs may name by raw path (data=, model=, pretrained=); none by default.
    data_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)

    # The queues jobs may name in resources.queue; the first is the default. Job workers consume them;
    # the service worker's queues (webhooks, default) are never among them.
    job_queues: CommaList = Field(default_factory=lambda: ["jobs"])

    heartbeat_interval_s: float = Field(default=5.0, gt=0)
    lease_timeout_s: float = Field(default=60.0, gt=0)
    reap_interval_s: float = Field(default=15.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, description="Runs of one job before it fails for good.")
    job_time_limit_s: float | None = Field(default=None, gt=0, description="Wall-clock limit of every run.")
    stop_grace_s: float = Field(default=30.0, gt=0, description="SIGTERM to SIGKILL of a training child.")
    resend_waiting_after_s: float = Field(
        default=60.0, gt=0, description="Re-send run_job for a job waiting this long untouched."
    )
    # Added to this host's clock: a test hook that plays a host whose clock is off (leases ignore it).
    clock_skew_s: float = 0.0
    # A worker's devices as the operator declares them ("cpu" or "2xA100:80"); unset: torch finds them.
    worker_devices: str | None = None

    # Operator limits (see docs/operations.md); a tenant's row in tenant_limits replaces any of them.
    # None means no limit. Checked at submit unless marked "run time".
    max_queued_jobs: int | None = Field(default=None, ge=0, description="Waiting jobs per tenant.")
    max_running_jobs: int | None = Field(default=None, ge=0, description="Running jobs per tenant.")
    max_gpus_per_job: int | None = Field(default=8, ge=0)
    max_epochs: int | None = Field(default=1000, ge=1)
    max_imgsz: int | None = Field(default=2048, ge=8)
    max_batch: int | None = Field(default=1024, ge=1)
    max_time_h: float | None = Field(default=72.0, gt=0, description="Bound on the `time` override.")
    max_world_size: int | None = Field(default=8, ge=1)
    max_synthetic_images: int | None = Field(default=100_000, ge=2, description="train + val images.")
    max_synthetic_size: int | None = Field(default=1024, ge=8, description="Synthetic image side (px).")
    min_save_period: int | None = Field(default=None, ge=1, description="Smallest save_period > 0.")
    job_disk_quota_bytes: int | None = Field(default=None, gt=0, description="Run time: run folder size.")
    job_log_max_bytes: int | None = Field(default=None, ge=4096, description="Run time: train.log size.")
    post_rate_per_minute: int | None = Field(default=None, gt=0, description="POSTs per token.")

    max_body_bytes: int = Field(default=1_048_576, gt=0)
    upload_max_bytes: int = Field(default=10 * 1024**3, gt=0, description="One dataset or model upload.")
    # Archive limits: what an uploaded .zip/.tar.gz may hold once unpacked (zip bombs stop here).
    archive_max_files: int = Field(default=200_000, gt=0)
    archive_max_bytes: int = Field(default=50 * 1024**3, gt=0, description="Unpacked size of one archive.")
    archive_max_ratio: float = Field(default=200.0, gt=1, description="Unpacked size over archive size.")
    page_size: int = Field(default=50, ge=1)
    max_page_size: int = Field(default=500, ge=1)
    sse_heartbeat_s: float = Field(default=15.0, gt=0)
    # How often an SSE stream re-reads the DB when Redis is silent (Redis may have lost a message).
    sse_poll_s: float = Field(default=2.0, gt=0)
    auth_cache_s: float = Field(default=5.0, ge=0, description="How long a resolved token is trusted.")

    webhook_retry_schedule_s: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_WEBHOOK_RETRY_SCHEDULE_S)
    )
    webhook_connect_timeout_s: float = Field(default=5.0, gt=0)
    webhook_timeout_s: float = Field(default=15.0, gt=0)
    webhook_max_response_bytes: int = Field(default=65_536, gt=0)
    webhook_sweep_interval_s: float = Field(default=5.0, gt=0)
    webhook_disable_after_s: float = Field(default=5 * 24 * 3600.0, gt=0)
    webhook_secret_grace_s: float = Field(default=24 * 3600.0, ge=0)
    # Fairness: a slow or hostile receiver holds a worker process per attempt, for up to
    # webhook_timeout_s. These caps bound how many one receiver and one tenant hold at once, across
    # every webhooks worker; keep the tenant's below the workers' total processes.
    webhook_endpoint_in_flight: int = Field(
        default=4, ge=1, description="Attempts to one receiver (endpoint, or a job webhook's URL) at once."
    )
    webhook_tenant_in_flight: int = Field(
        default=4, ge=1, description="A tenant's share of delivery slots: its attempts running at once."
    )
    webhook_max_endpoints: int = Field(default=20, ge=0, description="Webhook endpoints per tenant.")
    webhook_max_per_job: int = Field(
        default=10, ge=0, le=MAX_WEBHOOKS_PER_JOB, description="Inline webhooks in one job."
    )

    # Streams (SSE events and followed logs): a per-tenant cap shared by every API process, and a
    # lifetime after which the server ends a stream cleanly (clients reconnect where they were).
    stream_max_per_tenant: int = Field(default=20, ge=1, description="Open streams of one tenant.")
    stream_max_lifetime_s: float = Field(default=1800.0, gt=0, description="Seconds before a stream ends.")
    log_tail_max_bytes: int = Field(default=1_048_576, ge=1, description="Largest ?tail= of a log.")

    _split = field_validator(
        "trainer_modules",
        "webhook_allow",
        "webhook_retry_schedule_s",
        "data_roots",
        "job_queues",
        mode="before",
    )(_split_list)
    _sizes = field_validator("job_disk_quota_bytes", "job_log_max_bytes", mode="before")(_parse_size)

    @field_validator("data_roots")
    @classmethod
    def _roots_absolute(cls, value: list[Path]) -> list[Path]:
        """Resolve every data root once, so API and workers compare paths against the same folders."""
        return [Path(os.path.realpath(root.expanduser())) for root in value]

    @field_validator("webhook_allow")
    @classmethod
    def _allow_entries_parse(cls, value: list[str]) -> list[str]:
        """Check every entry now, so a typo stops the service at start, not each webhook at submit."""
        Policy.from_allow(value)
        return value

    @field_validator("worker_devices")
    @classmethod
    def _devices_readable(cls, value: str | None) -> str | None:
        """Check that declared worker devices parse, so a typo stops the worker at start."""
        if value:
            parse_declared(value)
        return value or None

    @field_validator("job_queues")
    @classmethod
    def _job_queues_apart(cls, value: list[str]) -> list[str]:
        """Check the job queues: at least one, valid names, none of the service worker's queues."""
        if not value:
            raise ValueError("list one or more queues for jobs, e.g. 'jobs' or 'jobs,gpu-a100'")
        for name in value:
            if not QUEUE_NAME_RE.match(name):
                raise ValueError(f"queue name {name!r}: use 1-64 letters, digits and _ . -")
            if name in SERVICE_QUEUES:
                raise ValueError(
                    f"queue {name!r} belongs to the service worker (webhooks and the reaper); "
                    "training there would stall them, so name another queue for jobs"
                )
        return list(dict.fromkeys(value))

    @field_validator("webhook_retry_schedule_s")
    @classmethod
    def _schedule_non_negative(cls, value: list[float]) -> list[float]:
        """Check that the schedule has at least one delay and none is negative."""
        if not value or any(delay < 0 for delay in value):
            raise ValueError("give one or more delays in seconds >= 0, e.g. '0,5,300,1800'")
        return value

    @property
    def is_sqlite(self) -> bool:
        """Return whether the database is SQLite."""
        return self.database_url.startswith("sqlite")

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        """Refuse development defaults that are unsafe when env=production."""
        if self.env != "production":
            return self
        problems = []
        if self.database_url == DEFAULT_DATABASE_URL:
            problems.append("set TRAINFORGE_DATABASE_URL (the default is a local SQLite file)")
        if self.redis_url == DEFAULT_REDIS_URL:
            problems.append(
                "set TRAINFORGE_REDIS_URL explicitly (the default is an unauthenticated local Redis)"
            )
        if self.clock_skew_s:
            problems.append("TRAINFORGE_CLOCK_SKEW_S is a test hook; leave it unset in production")
        problems += [
            f"TRAINFORGE_WEBHOOK_ALLOW entry {entry!r} opens every address; list the exact hosts/CIDRs"
            for entry in self.webhook_allow
            if _opens_everything(entry)
        ]
        problems += [
            f"TRAINFORGE_DATA_ROOTS entry {str(root)!r} opens the whole filesystem; list the data folders"
            for root in self.data_roots
            if root == Path(root.anchor)
        ]
        if problems:
            raise ValueError("insecure settings for env=production: " + "; ".join(problems))
        return self


def _opens_everything(entry: str) -> bool:
    """Return whether a webhook_allow entry would disable SSRF protection altogether."""
    if entry.strip() == "*":
        return True
    try:
        return ipaddress.ip_network(entry, strict=False).prefixlen == 0
    except ValueError:
        return False


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings (cached; call `get_settings.cache_clear()` after changing env)."""
    return Settings()
