"""The `job:<id>/best.pt|last.pt` scheme: a checkpoint of one of the tenant's own jobs."""

from __future__ import annotations

import uuid

from trainforge.errors import Invalid
from trainforge.jobs import repository
from trainforge.references.context import Context
from trainforge.rundir import ARTIFACT_ALIASES, RunDir

FORM = "job:<id>/best.pt or job:<id>/last.pt"


def resolve_job_checkpoint(ctx: Context, key: str, rest: str) -> str:
    """Return the path of the checkpoint `rest` (`<id>/best.pt`) names, if the job is the tenant's."""
    job_id, _, name = rest.partition("/")
    if name not in ARTIFACT_ALIASES or not job_id:
        raise Invalid(f"override '{key}': 'job:{rest}' names no checkpoint; write {FORM}", key=key)
    status = repository.status_for_tenant(ctx.session, ctx.tenant_id, job_id) if _is_id(job_id) else None
    if status is None:
        # The same words for another tenant's job as for one that never existed.
        raise Invalid(
            f"override '{key}': you have no job {job_id!r}; refer to one of your jobs "
            "(`trainforge jobs` lists them)",
            key=key,
        )
    path = RunDir.of(ctx.settings.artifacts_dir, job_id).path / ARTIFACT_ALIASES[name]
    if not path.is_file():
        raise Invalid(
            f"override '{key}': job {job_id} has no {name} (it is {status}); "
            "refer to it once it has saved a checkpoint",
            key=key,
        )
    return str(path.resolve())


def _is_id(text: str) -> bool:
    """Return whether `text` is a job id (a UUID), so the database is not asked about anything else."""
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False
