"""Liveness, readiness (database and Redis) and Prometheus metrics."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from redis.exceptions import RedisError
from sqlalchemy import text

from api.deps import SettingsDep, open_session
from trainforge.jobs import repository
from trainforge.settings import Settings
from trainforge.vocab import JobStatus

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Say the process is alive."""
    return {"status": "ok"}


def _check_db(settings: Settings) -> None:
    """Run a trivial query on the database."""
    with open_session(settings) as session:
        session.execute(text("SELECT 1"))


@router.get("/readyz", responses={503: {"description": "The database or Redis does not answer."}})
async def readyz(request: Request, settings: SettingsDep) -> JSONResponse:
    """Say whether the database and Redis answer (503 naming the one that does not)."""
    checks: dict[str, str] = {}
    try:
        with anyio.fail_after(5):
            await anyio.to_thread.run_sync(_check_db, settings)
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not ready"
        checks["database"] = f"error: {type(exc).__name__}: {exc}"[:300]
    try:
        with anyio.fail_after(5):
            await request.app.state.redis.ping()
        checks["redis"] = "ok"
    except (RedisError, OSError, TimeoutError) as exc:
        checks["redis"] = f"error: {type(exc).__name__}: {exc}"[:300]
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


def _counts(settings: Settings) -> dict[str, int]:
    """Return job counts by status."""
    with open_session(settings) as session:
        return repository.count_by_status(session)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(settings: SettingsDep) -> PlainTextResponse:
    """Expose job counts by status in the Prometheus text format."""
    counts = await anyio.to_thread.run_sync(_counts, settings)
    lines = ["# HELP trainforge_jobs Jobs by status.", "# TYPE trainforge_jobs gauge"]
    lines += [f'trainforge_jobs{{status="{s.value}"}} {counts.get(s.value, 0)}' for s in JobStatus]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")
