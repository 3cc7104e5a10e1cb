"""The FastAPI app: `api.main:app`, or `create_app(settings)` for a configured instance."""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI

from api import errors
from api.middleware import BodyLimitMiddleware
from api.routes import artifacts, events, health, jobs, logs, trainers
from api.ui.routes import install as install_ui
from trainforge import __version__
from trainforge.db.async_reads import AsyncReadPool
from trainforge.settings import Settings, get_settings

log = logging.getLogger(__name__)

# Routers other parts of the project add (each module exposes `router`); absent ones are skipped.
OPTIONAL_ROUTERS = ("api.routes.webhooks", "api.routes.deliveries")


def _optional_routers() -> list[object]:
    """Import the optional route modules that exist and return their routers."""
    found = []
    for name in OPTIONAL_ROUTERS:
        if importlib.util.find_spec(name) is not None:
            found.append(importlib.import_module(name).router)
    return found


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API with its routes, error handlers and body limit."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.redis = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=2)
        # Job views read PostgreSQL on async connections of this event loop (see trainforge.db.async_reads).
        app.state.read_pool = None if settings.is_sqlite else AsyncReadPool(settings.database_url)
        try:
            yield
        finally:
            if app.state.read_pool is not None:
                await app.state.read_pool.close()
            await app.state.redis.aclose()

    app = FastAPI(
        title="trainforge",
        version=__version__,
        description="Submit training jobs, follow their epochs live, download their checkpoints.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.redis = None
    app.state.read_pool = None
    errors.install(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    for module in (health, jobs, events, logs, artifacts, trainers):
        app.include_router(module.router)
    for router in _optional_routers():
        app.include_router(router)  # type: ignore[arg-type]
    install_ui(app)
    return app


app = create_app()
