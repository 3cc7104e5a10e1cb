"""Turn every failure into a JSON 4xx (or a logged 500) with a message that says what to fix."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from trainforge.errors import ServiceError

log = logging.getLogger(__name__)


def _location(loc: tuple[Any, ...]) -> str:
    """Render a pydantic error location as a dotted path without the leading 'body'/'query'."""
    parts = (
        [str(p) for p in loc[1:]]
        if loc and loc[0] in ("body", "query", "path", "header")
        else list(map(str, loc))
    )
    where = loc[0] if loc else "request"
    return ".".join(parts) if parts else str(where)


def describe_validation_errors(errors: list[dict[str, Any]]) -> str:
    """Join pydantic errors into one readable sentence per field."""
    messages = []
    for err in errors:
        msg = str(err.get("msg", "invalid"))
        if err.get("type") == "extra_forbidden":
            msg = "unknown field; remove it (see the request schema at /docs)"
        elif err.get("type") == "missing":
            msg = "field required"
        elif err.get("type") == "value_error":
            msg = msg.removeprefix("Value error, ")  # our validators' own messages, told as they are
            if tuple(err.get("loc", ())) == ("body",):  # a whole-body check names the field itself
                messages.append(msg)
                continue
        messages.append(f"{_location(tuple(err.get('loc', ())))}: {msg}")
    return "; ".join(messages)


async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """400 for a body that is not JSON, 422 naming each invalid field otherwise."""
    errors = list(exc.errors())
    bad_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if bad_json is not None:
        reason = (bad_json.get("ctx") or {}).get("error", "JSON decode error")
        pos = bad_json.get("loc", ("body", "?"))[-1]
        return JSONResponse(
            {"detail": f"request body is not valid JSON ({reason} at character {pos}); send a JSON object"},
            status_code=400,
        )
    simple = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
    return JSONResponse({"detail": describe_validation_errors(errors), "errors": simple}, status_code=422)


async def service_error(_request: Request, exc: ServiceError) -> JSONResponse:
    """Answer a service error with its own status and message."""
    headers = getattr(exc, "headers", None)  # e.g. Retry-After on a 429
    return JSONResponse({"detail": exc.detail, **exc.extra}, status_code=exc.status_code, headers=headers)


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Answer HTTP errors as JSON, with a hint for unknown routes and methods."""
    detail = exc.detail
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route {request.method} {request.url.path}; the routes are listed at /docs"
    elif exc.status_code == 400 and detail == "There was an error parsing the body":
        # FastAPI's words for a body that is not UTF-8 or too deeply nested to decode.
        detail = (
            "request body could not be decoded (not UTF-8, or nested too deeply); send a UTF-8 JSON object"
        )
    elif exc.status_code == 405:
        detail = f"method {request.method} is not allowed on {request.url.path}; see /docs"
    return JSONResponse(
        {"detail": detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


async def database_unavailable(request: Request, exc: DBAPIError | PoolTimeout) -> JSONResponse:
    """Answer 503 when the database is unreachable or busy (the client can retry); other DB errors are bugs.

    Busy: every pooled connection stayed taken for the pool's timeout, or SQLite's write lock did.
    """
    lost = isinstance(exc, (OperationalError, PoolTimeout)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )
    if not lost:
        return await unexpected_error(request, exc)
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "the database is unavailable right now; retry in a few seconds"},
        status_code=503,
        headers={"Retry-After": "2"},
    )


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """Log a bug and answer 500 without leaking internals."""
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error; the server log has the details"}, status_code=500)


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(ServiceError, service_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, database_unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(PoolTimeout, database_unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected_error)
