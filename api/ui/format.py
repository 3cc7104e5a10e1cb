"""Small formatting helpers for the dashboard's templates (the same rules as static/ui.js)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

NONE = "\N{EN DASH}"  # shown for a value not known yet


def metric_value(value: Any) -> str:
    """Render a metric value with 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, int | float) else NONE


def duration(seconds: float | None) -> str:
    """Render seconds as 1h02m, 3m05s or 12s."""
    if seconds is None or seconds < 0:
        return NONE
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def _parse(ts: Any) -> datetime | None:
    """Return an aware datetime from an ISO string (the API's JSON), or None."""
    if not ts:
        return None
    value = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def when(ts: Any) -> str:
    """Render an API timestamp as 'YYYY-MM-DD HH:MM:SS' UTC."""
    value = _parse(ts)
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else NONE


def size(n: int | None) -> str:
    """Render a byte count as B, KB or MB."""
    if n is None:
        return NONE
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


def overrides(values: dict[str, Any] | None) -> str:
    """Render overrides as the `key=value` lines the submit form takes."""
    return "\n".join(
        f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in (values or {}).items()
    )


def status_class(status: str) -> str:
    """Return the CSS class of a status badge."""
    return f"status status-{status}"


def timing(job: dict[str, Any], now: datetime | None = None) -> dict[str, float | None]:
    """Return elapsed seconds and an ETA from the job's start, finished epochs and batch progress."""
    started, finished = _parse(job.get("started_at")), _parse(job.get("finished_at"))
    if started is None:
        return {"elapsed": None, "eta": None}
    end = finished or now or datetime.now(UTC)
    elapsed = (end - started).total_seconds()
    return {"elapsed": elapsed, "eta": None if finished else eta(job, elapsed)}


def eta(job: dict[str, Any], elapsed: float) -> float | None:
    """Return the seconds left, extrapolating the fraction of epochs done so far."""
    epochs = job.get("epochs") or (job.get("progress") or {}).get("epochs")
    if not epochs:
        return None
    done = float(job.get("epoch") or 0)
    progress = job.get("progress") or {}
    if progress.get("batches") and progress.get("epoch") == done + 1:
        done += min(1.0, progress.get("batch", 0) / progress["batches"])
    if done <= 0:
        return None
    return elapsed * (epochs - done) / done
