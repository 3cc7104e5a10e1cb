"""A job's training log: the whole text, or followed live until the job ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, StreamingResponse

from api.deps import JobDep, SettingsDep, open_session
from trainforge.errors import NotFound
from trainforge.jobs import repository
from trainforge.rundir import RunDir
from trainforge.settings import Settings
from trainforge.vocab import TERMINAL

router = APIRouter(prefix="/v1/jobs", tags=["logs"])
CHUNK = 64 * 1024
POLL_S = 0.25


def _ended(settings: Settings, job_id: str) -> bool:
    """Return whether the job has reached a terminal status."""
    # The followed log outlives its request, so each check opens its own session (nothing to commit).
    with open_session(settings) as session:
        status = repository.status_of(session, job_id)
    return status is None or status in TERMINAL


async def follow(path: Path, settings: Settings, job_id: str) -> AsyncIterator[bytes]:
    """Yield the log as it grows; stop once the job has ended and everything written was sent."""
    offset = 0
    since_check = 0.0
    while True:
        chunk = _read(path, offset)
        if chunk:
            offset += len(chunk)
            yield chunk
            continue
        since_check += POLL_S
        if since_check >= 1.0 or not path.exists():
            since_check = 0.0
            if await anyio.to_thread.run_sync(_ended, settings, job_id):
                tail = _read(path, offset)  # what the worker wrote just before it finished
                if tail:
                    yield tail
                return
        await anyio.sleep(POLL_S)


def _read(path: Path, offset: int) -> bytes:
    """Return up to CHUNK bytes of `path` from `offset` (empty if it does not exist yet)."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read(CHUNK)
    except FileNotFoundError:
        return b""


@router.get(
    "/{job_id}/logs",
    response_model=None,
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}},
)
def job_logs(
    job: JobDep,
    settings: SettingsDep,
    follow_: Annotated[bool, Query(alias="follow", description="Stream the log until the job ends.")] = False,
    tail: Annotated[int | None, Query(ge=1, description="Only the last N bytes.")] = None,
) -> StreamingResponse | PlainTextResponse:
    """Return the job's training log as text; `?follow=true` keeps streaming until the job ends."""
    path = RunDir.of(settings.artifacts_dir, job.id).log
    if follow_:
        return StreamingResponse(follow(path, settings, job.id), media_type="text/plain; charset=utf-8")
    if not path.is_file():
        raise NotFound(
            f"job {job.id} has no log yet (status {job.status}); it appears once the job starts — "
            "use ?follow=true to wait for it"
        )
    data = path.read_bytes()
    if tail is not None:
        data = data[-tail:]
    return PlainTextResponse(data.decode("utf-8", errors="replace"))
