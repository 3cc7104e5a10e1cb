"""The one settings object of the service, read from `TRAINFORGE_*` environment variables."""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from trainforge.scheduling.inventory import parse_declared

DEFAULT_DATABASE_URL = "sqlite:///./.trainforge/trainforge.db"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# Immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (Standard Webhooks' suggested schedule).
DEFAULT_WEBHOOK_RETRY_SCHEDULE_S = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)

CommaList = Annotated[list[str], NoDecode]


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
    # Module prefixes from which "package.module:Class" trainers may be loaded ("mypkg" allows mypkg.*).
    trainer_modules: CommaList = Field(default_factory=list)
    # CIDRs or host names webhooks may reach although they are private/loopback (e.g. "127.0.0.0/8").
    webhook_allow: CommaList = Field(default_factory=list)
    # Folders whose files jobs may name by raw path (data=, model=, pretrained=); none by default.
    data_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)

    heartbeat_interval_s: float = Field(default=5.0, gt=0)
    lease_timeout_s: float = Field(default=60.0, gt=0)
    reap_interval_s: float = Field(default=15.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, description="Runs of one job before it fails for good.")
    job_time_limit_s: float | None = Field(default=None, gt=0, description="Wall-clock limit of every run.")
    stop_grace_s: float = Field(default=30.0, gt=0, description="SIGTERM to SIGKILL of a training child.")
    # A worker's devices as the operator declares them ("cpu" or "2xA100:80"); unset: torch finds them.
    worker_devices: str | None = None

    max_body_bytes: int = Field(default=1_048_576, gt=0)
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

    _split = field_validator(
        "trainer_modules", "webhook_allow", "webhook_retry_schedule_s", "data_roots", mode="before"
    )(_split_list)

    @field_validator("data_roots")
    @classmethod
    def _roots_absolute(cls, value: list[Path]) -> list[Path]:
        """Resolve every data root once, so API and workers compare paths against the same folders."""
        return [Path(os.path.realpath(root.expanduser())) for root in value]

    @field_validator("worker_devices")
    @classmethod
    def _devices_readable(cls, value: str | None) -> str | None:
        """Check that declared worker devices parse, so a typo stops the worker at start."""
        if value:
            parse_declared(value)
        return value or None

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
