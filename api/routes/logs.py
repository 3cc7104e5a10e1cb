"""A job's training log: the whole text, its end, or followed live until the job ends."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, StreamingResponse

from api.deps import CurrentTenant, JobDep, SettingsDep, open_session
from api.streams import StreamLease
from trainforge.errors import Invalid, NotFound
from trainforge.jobs import repository
from trainforge.rundir import RunDir
from trainforge.settings import Settings
from trainforge.vocab import TERMINAL

router = APIRouter(prefix="/v1/jobs", tags=["logs"])
CHUNK = 64 * 1024
POLL_S = 0.25
LOG_OFFSET_HEADER = "X-Log-Offset"
MAX_OFFSET = 2**62  # an offset past any real file; bounds the integer the query may carry


def _ended(settings: Settings, job_id: str) -> bool:
    """Return whether the job has reached a terminal status."""
    # The followed log outlives its request, so each check opens its own session (nothing to commit).
    with open_session(settings) as session:
        status = repository.status_of(session, job_id)
    return status is None or status in TERMINAL


async def follow(
    path: Path, settings: Settings, job_id: str, offset: int = 0, lease: StreamLease | None = None
) -> AsyncIterator[bytes]:
    """Yield the log from `offset` as it grows; stop once the job has ended and everything was sent.

    Also stops, cleanly, when the stream's lifetime is over: the client asks again from the byte it
    had reached (?offset=), so nothing is sent twice or skipped.
    """
    since_check = 1.0  # the first time nothing is left to read, ask at once whether the job ended
    try:
        while lease is None or not lease.expired():
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
            if lease is not None:
                await lease.keep()
            await anyio.sleep(POLL_S)
    finally:
        if lease is not None:
            await lease.close()


def _read(path: Path, offset: int) -> bytes:
    """Return up to CHUNK bytes of `path` from `offset` (empty if it does not exist yet)."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read(CHUNK)
    except FileNotFoundError:
        return b""


def _size(path: Path) -> int:
    """Return the log's size in bytes (0 before it exists)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def read_tail(path: Path, tail: int) -> bytes:
    """Return the last `tail` bytes of the log, reading only those (a log may be gigabytes)."""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - tail))
        data = fh.read(tail)
    # Start at a character: drop the UTF-8 continuation bytes (10xxxxxx) the cut left at the front.
    cut = 0
    while cut < min(3, len(data)) and data[cut] & 0xC0 == 0x80:
        cut += 1
    return data[cut:]


def _check_tail(tail: int | None, settings: Settings) -> None:
    """Refuse a ?tail= larger than the operator's bound (422 naming it)."""
    if tail is not None and tail > settings.log_tail_max_bytes:
        raise Invalid(
            f"tail={tail} is more than the {settings.log_tail_max_bytes} bytes a tail may be "
            "(log_tail_max_bytes); ask for less, or download the whole log without ?tail=",
            key="tail",
        )


@router.get(
    "/{job_id}/logs",
    response_model=None,
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}},
)
def job_logs(
    job: JobDep,
    principal: CurrentTenant,
    settings: SettingsDep,
    follow_: Annotated[bool, Query(alias="follow", description="Stream the log until the job ends.")] = False,
    tail: Annotated[int | None, Query(ge=1, description="Only the last N bytes (bounded).")] = None,
    offset: Annotated[
        int | None, Query(ge=0, le=MAX_OFFSET, description="With follow: start at this byte (to resume).")
    ] = None,
) -> StreamingResponse | PlainTextResponse:
    """Return the job's training log as text; `?follow=true` keeps streaming until the job ends.

    A followed log also ends at the end of the stream's lifetime: follow again with `offset` set to
    the bytes received so far. 429 with Retry-After while the tenant has as many streams open as allowed.
    """
    _check_tail(tail, settings)
    if offset is not None and (not follow_ or tail is not None):
        raise Invalid("offset resumes a followed log: use it with follow=true and without tail", key="offset")
    path = RunDir.of(settings.artifacts_dir, job.id).log
    if follow_:
        start = offset or 0
        if tail is not None:
            start = max(0, _size(path) - tail)
        lease = StreamLease.open(settings, principal.tenant_id, "logs")
        stream = follow(path, settings, job.id, start, lease)
        # Where the bytes start, so a client resumes at this + what it received (after a tail, too).
        headers = {LOG_OFFSET_HEADER: str(start), "Cache-Control": "no-store"}
        return StreamingResponse(stream, media_type="text/plain; charset=utf-8", headers=headers)
    if not path.is_file():
        raise NotFound(
            f"job {job.id} has no log yet (status {job.status}); it appears once the job starts — "
            "use ?follow=true to wait for it"
        )
    data = read_tail(path, tail) if tail is not None else path.read_bytes()
    return PlainTextResponse(data.decode("utf-8", errors="replace"))
