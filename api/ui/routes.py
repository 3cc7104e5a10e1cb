"""The dashboard's routes in one router, and how the app mounts them with the static files."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from api.ui import auth, pages
from api.ui.render import STATIC_DIR

router = APIRouter()
router.include_router(auth.router)
router.include_router(pages.router)


def install(app: FastAPI) -> None:
    """Add the dashboard's pages and its static files (vendored JS, CSS) to `app`."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
