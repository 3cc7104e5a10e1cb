"""Jobs: submit, list, show, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.concurrency import run_in_threadpool

from api.deps import CurrentTenant, JobDep, SessionDep, SettingsDep, commit_in_handler
from api.presenters import job_links, job_public
from trainforge.datasets import repository as uploads
from trainforge.datasets.schemas import JobInputPublic, JobInputsPublic
from trainforge.db.session import get_read_engine
from trainforge.errors import Invalid
from trainforge.jobs import repository, service
from trainforge.jobs.repository import JobView
from trainforge.scheduling.pending import Pending, Waiting, explain, is_waiting
from trainforge.schemas import JobAccepted, JobCreate, JobPublic, JobsPublic, check_tag
from trainforge.settings import Settings
from trainforge.vocab import JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobAccepted)
def create_job(
    body: JobCreate,
    session: SessionDep,
    principal: CurrentTenant,
    settings: SettingsDep,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=200, description="Repeat a POST safely: the same key returns the same job."),
    ] = None,
) -> JobAccepted:
    """Submit a training job; it is queued and runs on the next free worker."""
    result = service.create_job(session, principal.tenant_id, body, settings, idempotency_key=idempotency_key)
    commit_in_handler(session)
    return JobAccepted(
        id=result.job.id, status=result.job.status, links=job_links(result.job), webhooks=result.webhooks
    )


@router.get("", response_model=JobsPublic)
def list_jobs(
    session: SessionDep,
    principal: CurrentTenant,
    settings: SettingsDep,
    status_: Annotated[
        list[str] | None, Query(alias="status", description="Keep jobs in these statuses.")
    ] = None,
    tag: Annotated[list[str] | None, Query(description="Keep jobs carrying every one of these tags.")] = None,
    cursor: Annotated[str | None, Query(description="The next_cursor of the previous page.")] = None,
    limit: Annotated[int | None, Query(ge=1, description="Page size.")] = None,
) -> JobsPublic:
    """List your jobs, newest first, filtered by status and tag before paging."""
    for value in tag or []:
        try:
            check_tag(value)
        except ValueError as exc:
            raise Invalid(f"tag filter: {exc}") from None
    statuses = [s for value in status_ or [] for s in value.split(",") if s]
    unknown = sorted(set(statuses) - {s.value for s in JobStatus})
    if unknown:
        raise Invalid(f"unknown status {unknown[0]!r}; use one of {', '.join(s.value for s in JobStatus)}")
    size = min(limit or settings.page_size, settings.max_page_size)
    jobs, next_cursor = repository.list_for_tenant(
        session, principal.tenant_id, statuses=statuses, tags=tag, cursor=cursor, limit=size
    )
    return JobsPublic(data=[job_public(j, settings.artifacts_dir) for j in jobs], next_cursor=next_cursor)


@router.get("/{job_id}", response_model=JobPublic)
async def get_job(job: JobDep, principal: CurrentTenant, settings: SettingsDep) -> Response:
    """Show a job: status, epoch k of n, latest metrics, checkpoints, error; if it waits, where and why."""
    # The hot polling path: on the event loop (the dependency's read is one indexed row), and the
    # body is serialised once here rather than validated again against response_model.
    pending = None
    if is_waiting(job.status):
        # A few counting reads, only while the job waits; a running job's poll stays one row.
        pending = await run_in_threadpool(explain_waiting, settings, principal.tenant_id, job)
    body = job_public(job, settings.artifacts_dir, pending).model_dump_json()
    return Response(body, media_type="application/json")


@router.post("/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=JobPublic)
def cancel_job(job: JobDep, session: SessionDep, settings: SettingsDep) -> JobPublic:
    """Cancel a job: at once if it has not started, at the next batch boundary if it runs."""
    return job_public(service.cancel_job(session, job.id), settings.artifacts_dir)


@router.get("/{job_id}/inputs", response_model=JobInputsPublic)
def job_inputs(job: JobDep, session: SessionDep) -> JobInputsPublic:
    """List the exact dataset and model versions the job runs on (resolved when it was submitted)."""
    rows = uploads.job_inputs(session, job.id)
    return JobInputsPublic(
        data=[
            JobInputPublic(
                key=row.key,
                kind=row.kind,
                id=row.resource_id,
                ref=f"{row.kind}:{row.name}@{row.version}",
                name=row.name,
                version=row.version,
                sha256=row.sha256,
            )
            for row in rows
        ]
    )


def explain_waiting(settings: Settings, tenant_id: str, job: JobView) -> Pending:
    """Return where the waiting job stands and why, read on its own connection."""
    waiting = Waiting(
        id=job.id,
        tenant_id=tenant_id,
        queue=job.queue,
        gpus=job.gpus,
        gpu_memory_gb=job.gpu_memory_gb,
        priority=job.priority,
        created_at=job.created_at,
    )
    with get_read_engine(settings.database_url).connect() as conn:
        return explain(conn, waiting, settings.lease_timeout_s)
