"""Request dependencies as `Annotated` aliases: the session, settings, the caller's tenant, the job."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import closing
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.ui import session as ui_session
from trainforge import ratelimit
from trainforge.auth import Principal, cached_principal, resolve_token
from trainforge.db.session import get_read_engine, get_sessionmaker
from trainforge.errors import Invalid, NotFound
from trainforge.jobs import repository
from trainforge.jobs.repository import JobView
from trainforge.settings import Settings
from trainforge.tenant_limits import limits_cache


async def get_app_settings(request: Request) -> Settings:
    """Return the settings the app was created with."""
    return request.app.state.settings  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def open_session(settings: Settings) -> Session:
    """Return a new session on the app's database: the request's, or a stream's that outlives it."""
    return get_sessionmaker(settings.database_url)()


async def get_session(settings: SettingsDep) -> AsyncIterator[Session]:
    """Yield the request's session; commit when the handler returns, roll back if it raises.

    Creating a session does no I/O, and a session that holds no transaction closes without I/O, so
    only requests that touched the database pay a thread hop at the end.
    """
    session = open_session(settings)
    try:
        yield session
        if session.in_transaction():
            await run_in_threadpool(session.commit)
    except BaseException:
        if session.in_transaction():
            await run_in_threadpool(session.rollback)
        raise
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


# scope="function": the commit happens before the response is sent, so a client that reads right
# after a 202 sees the job.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def commit_in_handler(session: Session) -> None:
    """Commit now, in the handler's own thread, for writes that other requests may wait on.

    A write that holds a lock other requests queue behind (the tenant's row, a unique key another
    request with the same Idempotency-Key is inserting) must not need a second pool thread to
    commit: with every pool thread blocked behind it, that commit would never get one. Measured
    with bench/load.py: POSTs stalled for minutes on PostgreSQL until the pool timed out.
    """
    session.commit()


bearer = HTTPBearer(auto_error=False, description="An API token: `trainforge token create --tenant NAME`.")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]

# The token and job lookups below run on the event loop, not in the thread pool: each is one indexed
# read that never waits on a lock (PostgreSQL reads do not block on row locks; SQLite WAL readers do
# not wait for writers), so it costs less than the two thread switches a pool call needs, and every
# request pays them (measured with bench/api_status.py). Writes and list queries stay in threads.
# A token is read from the database at most once per TRAINFORGE_AUTH_CACHE_S.


def dashboard_session_token(request: Request) -> str | None:
    """Return the token of the dashboard's session cookie; 403 for an unsafe method without its CSRF header.

    Only asked when there is no bearer header. A browser sends the cookie on its own, so a POST that
    carries it proves nothing about who wrote the request: it must also echo the page's CSRF token.
    """
    token = ui_session.cookie_token(request)
    if token is None or request.method in ui_session.SAFE_METHODS:
        return token
    if not ui_session.csrf_matches(token, request.headers.get(ui_session.CSRF_HEADER)):
        raise HTTPException(
            status_code=403,
            detail="missing or wrong X-CSRF-Token header: a request signed in with the dashboard's "
            "cookie must send the CSRF token of the page (or use 'Authorization: Bearer <token>')",
        )
    return token


async def current_principal(request: Request, settings: SettingsDep, credentials: BearerDep) -> Principal:
    """Return the tenant of the request's API token; 401 if it is missing or invalid.

    The one way every route authenticates: the bearer header, or else the dashboard's session
    cookie (with its CSRF check), resolved the same way.
    """
    principal = authenticate(
        settings, credentials.credentials if credentials else dashboard_session_token(request)
    )
    if request.method == "POST":
        await check_post_rate(request, settings, principal)
    return principal


async def check_post_rate(request: Request, settings: Settings, principal: Principal) -> None:
    """Refuse a POST over the token's rate (post_rate_per_minute, the tenant's or the operator's): 429."""
    per_minute = limits_cache.get(
        lambda: open_session(settings), principal.tenant_id, settings
    ).post_rate_per_minute
    client = request.app.state.redis
    if per_minute is None or client is None:
        return
    wait_s = await ratelimit.retry_after_s(client, principal.token_id, per_minute)
    if wait_s is not None:
        raise HTTPException(
            status_code=429,
            detail=f"too many POSTs with this token: the limit is {per_minute} per minute "
            f"(post_rate_per_minute); retry in {wait_s} s",
            headers={"Retry-After": str(wait_s)},
        )


def authenticate(settings: Settings, token: str | None) -> Principal:
    """Return the tenant of an API token, however it was presented; 401 if it is missing or invalid."""
    if token is None:
        raise HTTPException(
            status_code=401,
            detail="missing API token: send 'Authorization: Bearer <token>' "
            "(create one with `trainforge token create --tenant NAME`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = cached_principal(token, settings.auth_cache_s)
    if principal is None:
        # Its own short read, opened the request's way: most requests find the token cached and then
        # need no session at all, which is what keeps the polled routes cheap (bench/api_status.py).
        with closing(open_session(settings)) as session:
            principal = resolve_token(session, token, cache_ttl_s=settings.auth_cache_s)
    if principal is None:
        raise HTTPException(
            status_code=401,
            detail="invalid or revoked API token (or one past its expiry); "
            "create a new one with `trainforge token create --tenant NAME`",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return principal


CurrentTenant = Annotated[Principal, Depends(current_principal)]


def check_job_id(job_id: str) -> str:
    """Return `job_id` if it is a UUID; Invalid (422) otherwise."""
    try:
        uuid.UUID(job_id)
    except ValueError:
        raise Invalid(
            f"invalid job id {job_id!r}: job ids are UUIDs like 3f2c9a1e-...; see GET /v1/jobs"
        ) from None
    return job_id


JobIdPath = Annotated[str, Path(description="The job's id (a UUID).")]


async def get_job(job_id: JobIdPath, settings: SettingsDep, principal: CurrentTenant) -> JobView:
    """Return the caller's job `job_id` as a read-only row; 404 if it does not exist or is another's.

    Every route about one job takes it from here, so the fetch and the tenant check happen once.
    A route that changes the job re-reads it in its own transaction (see jobs.service.cancel_job).
    """
    engine = get_read_engine(settings.database_url)
    job = repository.read_view_for_tenant(engine, principal.tenant_id, check_job_id(job_id))
    if job is None:
        raise NotFound(f"job {job_id} not found; list your jobs with GET /v1/jobs")
    return job


JobDep = Annotated[JobView, Depends(get_job)]
