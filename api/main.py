"""The FastAPI app: `api.main:app`, or `create_app(settings)` for a configured instance."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI

from api import errors
from api.middleware import BodyLimitMiddleware
from api.routes import (
    artifacts,
    datasets,
    deliveries,
    events,
    health,
    jobs,
    logs,
    models,
    trainers,
    webhooks,
    workers,
)
from api.ui.routes import install as install_ui
from trainforge import __version__
from trainforge.schemas import ErrorPublic
from trainforge.settings import Settings, get_settings

log = logging.getLogger(__name__)

# Every route may answer these, always as an ErrorPublic body (api/errors.py makes sure of it); declared
# once for all routes so the OpenAPI document matches what clients really get.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorPublic, "description": description}
    for status, description in (
        (400, "The request is malformed (e.g. the body is not JSON)."),
        (401, "The API token is missing or invalid."),
        (403, "A dashboard session without its CSRF token."),
        (404, "No such resource for your tenant, or no such route."),
        (409, "The request conflicts with the resource's state."),
        (413, "The request body is over TRAINFORGE_MAX_BODY_BYTES."),
        (422, "A field is invalid; `detail` names it and the fix."),
        (503, "The database is unavailable; retry after Retry-After seconds."),
    )
}


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API with its routes, error handlers and body limit."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.redis = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=2)
        try:
            yield
        finally:
            await app.state.redis.aclose()

    app = FastAPI(
        title="trainforge",
        version=__version__,
        description="Submit training jobs, follow their epochs live, download their checkpoints.",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.state.settings = settings
    app.state.redis = None
    errors.install(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        upload_max_bytes=settings.upload_max_bytes,
        upload_paths=("/v1/datasets", "/v1/models"),
    )
    modules = (
        health,
        jobs,
        events,
        logs,
        artifacts,
        trainers,
        webhooks,
        deliveries,
        datasets,
        models,
        workers,
    )
    for module in modules:
        app.include_router(module.router)
    install_ui(app)
    return app


app = create_app()
