"""Response bodies of /v1/datasets and /v1/models, shared by the API, the client and the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class UploadPublic(BaseModel):
    """A dataset or model version: what it is, where it stands, and what validation found."""

    id: str
    name: str
    version: int
    ref: str
    status: str
    sha256: str | None
    size_bytes: int | None
    format: str
    report: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime
    updated_at: datetime


class DatasetPublic(UploadPublic):
    """One dataset version; `task` is detect or classify once validation has read its layout."""

    task: str | None = None


class DatasetsPublic(BaseModel):
    """The tenant's datasets, newest first."""

    data: list[DatasetPublic]


class ModelPublic(UploadPublic):
    """One uploaded model version."""


class ModelsPublic(BaseModel):
    """The tenant's uploaded models, newest first."""

    data: list[ModelPublic]


class JobInputPublic(BaseModel):
    """One dataset or model version a job runs on, as resolved when it was submitted."""

    key: str
    kind: str
    id: str
    ref: str
    name: str
    version: int
    sha256: str


class JobInputsPublic(BaseModel):
    """The exact dataset and model versions of a job."""

    data: list[JobInputPublic]
