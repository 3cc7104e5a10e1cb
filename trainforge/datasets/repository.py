"""Queries on datasets, uploaded models and the job inputs that use them. Never commits."""

from __future__ import annotations

from typing import cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trainforge.db.models import Dataset, Job, JobInput, ModelWeights
from trainforge.vocab import TERMINAL

Upload = Dataset | ModelWeights
UploadClass = type[Dataset] | type[ModelWeights]


def get(session: Session, cls: UploadClass, upload_id: str) -> Upload | None:
    """Return the dataset or model row `upload_id` of any tenant (for tasks that were given its id)."""
    return cast(Upload | None, session.get(cls, upload_id))


def get_for_tenant(session: Session, cls: UploadClass, tenant_id: str, upload_id: str) -> Upload | None:
    """Return the tenant's row `upload_id`, or None (also when it is another tenant's)."""
    row = get(session, cls, upload_id)
    return row if row is not None and row.tenant_id == tenant_id else None


def get_by_name(
    session: Session, cls: UploadClass, tenant_id: str, name: str, version: int | None
) -> Upload | None:
    """Return version `version` of the tenant's `name` (the newest when None)."""
    query = select(cls).where(cls.tenant_id == tenant_id, cls.name == name)
    if version is not None:
        query = query.where(cls.version == version)
    return cast(Upload | None, session.scalars(query.order_by(cls.version.desc()).limit(1)).first())


def next_version(session: Session, cls: UploadClass, tenant_id: str, name: str) -> int:
    """Return the version number the next upload of `name` gets."""
    latest = session.scalar(select(func.max(cls.version)).where(cls.tenant_id == tenant_id, cls.name == name))
    return int(latest or 0) + 1


def list_for_tenant(
    session: Session, cls: UploadClass, tenant_id: str, name: str | None = None
) -> list[Upload]:
    """Return the tenant's rows, newest first (only versions of `name` when given)."""
    query = select(cls).where(cls.tenant_id == tenant_id)
    if name is not None:
        query = query.where(cls.name == name)
    return list(session.scalars(query.order_by(cls.created_at.desc(), cls.version.desc())))


def active_jobs_using(session: Session, resource_id: str) -> list[str]:
    """Return the ids of jobs not yet ended that use resource `resource_id`."""
    query = (
        select(Job.id)
        .join(JobInput, JobInput.job_id == Job.id)
        .where(JobInput.resource_id == resource_id, Job.status.not_in([s.value for s in TERMINAL]))
    )
    return list(session.scalars(query))


def sha_in_use(session: Session, sha256: str) -> bool:
    """Return whether any dataset or model row (of any tenant) still names blob `sha256`."""
    for cls in (Dataset, ModelWeights):
        if session.scalar(select(cls.id).where(cls.sha256 == sha256).limit(1)) is not None:
            return True
    return False


def job_inputs(session: Session, job_id: str) -> list[JobInput]:
    """Return the datasets and models job `job_id` was submitted with."""
    return list(session.scalars(select(JobInput).where(JobInput.job_id == job_id)))
