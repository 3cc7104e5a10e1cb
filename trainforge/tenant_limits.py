"""Limits per tenant: the operator's settings, replaced key by key by the tenant's row in tenant_limits.

A tenant's row holds only the keys an operator set for it (`trainforge tenant set acme max_epochs=50`);
every other key falls back to the setting of the same name (`TRAINFORGE_MAX_EPOCHS`). A key set to
`none` means "no limit" for that tenant; `key=default` removes the tenant's value again. The one key
with no setting of its own is `queues`: the job queues the tenant may use, a subset of `job_queues`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, fields
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from trainforge.db.models import Job, Tenant, TenantLimits
from trainforge.settings import Settings, parse_size

# The keys a tenant's row may hold; each but `queues` is also a Settings field with its bounds.
QUEUES = "queues"
SIZE_KEYS = ("job_disk_quota_bytes", "job_log_max_bytes")
NO_LIMIT, DEFAULT = "none", "default"


@dataclass(frozen=True)
class Limits:
    """The limits in force for one tenant (None: no limit)."""

    queues: tuple[str, ...]
    max_queued_jobs: int | None
    max_running_jobs: int | None
    max_gpus_per_job: int | None
    max_epochs: int | None
    max_imgsz: int | None
    max_batch: int | None
    max_time_h: float | None
    max_world_size: int | None
    max_synthetic_images: int | None
    max_synthetic_size: int | None
    min_save_period: int | None
    job_time_limit_s: float | None
    job_disk_quota_bytes: int | None
    job_log_max_bytes: int | None
    post_rate_per_minute: int | None


LIMIT_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Limits))


def resolve(settings: Settings, own: dict[str, Any] | None = None) -> Limits:
    """Return the limits of a tenant whose row holds `own` (None or {}: the operator's settings)."""
    own = own or {}
    values: dict[str, Any] = {
        key: own[key] if key in own else getattr(settings, key, None) for key in LIMIT_KEYS
    }
    allowed = own.get(QUEUES)
    # The operator's list bounds the tenant's: a queue later removed from job_queues is gone for all.
    values[QUEUES] = tuple(q for q in settings.job_queues if allowed is None or q in allowed)
    return Limits(**values)


def own_limits(session: Session, tenant_id: str) -> dict[str, Any]:
    """Return the keys set on the tenant's own row ({} when it has none)."""
    row = session.get(TenantLimits, tenant_id)
    return dict(row.limits) if row is not None else {}


def limits_for(session: Session, tenant_id: str, settings: Settings) -> Limits:
    """Return the limits in force for `tenant_id`."""
    return resolve(settings, own_limits(session, tenant_id))


class _Cache:
    """Tenant limits remembered for a few seconds, for checks on every request (the POST rate)."""

    def __init__(self) -> None:
        self._items: dict[str, tuple[float, Limits]] = {}
        self._lock = threading.Lock()

    def get(self, open_session: Callable[[], Session], tenant_id: str, settings: Settings) -> Limits:
        """Return the tenant's limits, read (in a session from `open_session`) once per auth_cache_s."""
        with self._lock:
            item = self._items.get(tenant_id)
        if item is not None and time.monotonic() - item[0] <= settings.auth_cache_s:
            return item[1]
        with closing(open_session()) as session:
            limits = limits_for(session, tenant_id, settings)
        with self._lock:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[tenant_id] = (time.monotonic(), limits)
        return limits

    def clear(self) -> None:
        """Forget everything (between tests)."""
        with self._lock:
            self._items.clear()


limits_cache = _Cache()


def lock_tenant(session: Session, tenant_id: str) -> None:
    """Hold the tenant's row until the transaction ends, so counting and inserting jobs is serialized.

    PostgreSQL: a row lock, `FOR NO KEY UPDATE`: it excludes another holder of the same lock, but not
    the key-share locks that inserting rows which reference the tenant takes (a worker's webhook
    deliveries), so only this tenant's limit checks wait, and only for each other. SQLite has one
    writer at a time: a no-op UPDATE takes the database's write lock; other writers wait (busy_timeout).
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(Tenant)
            .where(Tenant.id == tenant_id)
            .values(name=Tenant.name)
            .execution_options(synchronize_session=False)
        )
    else:
        session.execute(select(Tenant.id).where(Tenant.id == tenant_id).with_for_update(key_share=True))


def count_jobs(session: Session, tenant_id: str, statuses: frozenset[Any]) -> int:
    """Return how many of the tenant's jobs are in `statuses`."""
    return int(
        session.execute(
            select(func.count())
            .select_from(Job)
            .where(Job.tenant_id == tenant_id, Job.status.in_([str(s) for s in statuses]))
        ).scalar_one()
    )


# --- setting a tenant's limits (the CLI) ----------------------------------------------------------


class LimitError(ValueError):
    """A `key=value` for a tenant's limits that cannot be stored; the message says why and how."""


def parse_assignments(pairs: list[str], settings: Settings) -> dict[str, Any]:
    """Turn `key=value` words into {key: value} (`DEFAULT` as a value: drop the tenant's own value)."""
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise LimitError(f"{pair!r}: write key=value, e.g. max_running_jobs=2")
        if key not in LIMIT_KEYS:
            import difflib

            close = difflib.get_close_matches(key, LIMIT_KEYS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise LimitError(f"unknown limit {key!r}; {hint}the limits are: {', '.join(LIMIT_KEYS)}")
        changes[key] = DEFAULT if raw.lower() == DEFAULT else _parse_value(key, raw, settings)
    return changes


def _parse_value(key: str, raw: str, settings: Settings) -> Any:
    """Check one value against the bounds of the setting of the same name."""
    if key == QUEUES:
        queues = [q.strip() for q in raw.split(",") if q.strip()]
        unknown = [q for q in queues if q not in settings.job_queues]
        if not queues or unknown:
            raise LimitError(
                f"queues={raw!r}: give queues from the operator's list "
                f"(TRAINFORGE_JOB_QUEUES: {', '.join(settings.job_queues)})"
            )
        return queues
    if raw.lower() == NO_LIMIT:
        return None
    value: Any = raw
    try:
        if key in SIZE_KEYS:
            value = parse_size(raw)
        field = Settings.model_fields[key]
        bounded: Any = Annotated[field.annotation, *field.metadata]  # the setting's type and bounds
        return TypeAdapter(bounded).validate_python(value)
    except (ValueError, ValidationError) as exc:
        reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        hint = "or 'none' for no limit, 'default' for the setting"
        raise LimitError(f"{key}={raw!r}: {reason} ({hint})") from None


def set_limits(session: Session, tenant_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply `changes` to the tenant's row (created if missing); return the keys it now holds."""
    row = session.get(TenantLimits, tenant_id)
    if row is None:
        row = TenantLimits(tenant_id=tenant_id, limits={})
        session.add(row)
    own = dict(row.limits or {})
    for key, value in changes.items():
        if value == DEFAULT:
            own.pop(key, None)
        else:
            own[key] = value
    row.limits = own  # a new dict: JSON columns do not track changes made in place
    session.flush()
    return own
