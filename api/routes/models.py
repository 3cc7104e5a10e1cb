"""Uploaded models: upload a checkpoint (streamed), list, show, delete."""

from __future__ import annotations

from api.routes.uploads import upload_router

router = upload_router("model")
