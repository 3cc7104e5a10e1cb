"""Datasets: upload (a .zip or .tar.gz, streamed), list, show with the validation report, delete."""

from __future__ import annotations

from api.routes.uploads import upload_router

router = upload_router("dataset")
