"""What a reference is resolved against: the job's tenant, its task, the session and the settings."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from trainforge.settings import Settings


@dataclass(frozen=True)
class Context:
    """The tenant whose resources a job may name, and where the service keeps them."""

    session: Session
    tenant_id: str
    settings: Settings
    # The job's task (classify, detect), or None for a custom trainer that declares none.
    task: str | None = None
