"""A job's events: a JSON page by seq cursor, or a live SSE stream resumable with Last-Event-ID."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from sse_starlette import EventSourceResponse

from api.deps import CurrentTenant, JobDep, SessionDep, SettingsDep
from api.sse import EventStream
from api.streams import StreamLease
from trainforge.errors import Invalid
from trainforge.events import event_json, list_events
from trainforge.schemas import EventsPublic

router = APIRouter(prefix="/v1/jobs", tags=["events"])
MAX_SEQ = 2**31 - 1  # seq is a 32-bit integer column
# ASCII digits only: str.isdigit() also accepts '²' and other digits int() refuses, and a bounded length
# keeps int() from a very long string.
SEQ_RE = re.compile(r"[0-9]{1,10}")
MAX_TYPES = 32
EVENT_TYPE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _resume_point(after: int | None, last_event_id: str | None) -> int:
    """Return the seq to resume after: Last-Event-ID wins over ?after=."""
    if last_event_id not in (None, ""):
        if not SEQ_RE.fullmatch(last_event_id) or int(last_event_id) > MAX_SEQ:
            raise Invalid(
                f"invalid Last-Event-ID {last_event_id[:20]!r}: send the id (a seq number from 0 to "
                f"{MAX_SEQ}) of the last event you received"
            )
        return int(last_event_id)
    return after or 0


def _event_types(types: list[str] | None) -> list[str]:
    """Check the ?type= filter: a few event names (letters, digits and `_.:-`)."""
    types = types or []
    if len(types) > MAX_TYPES:
        raise Invalid(f"too many ?type= values ({len(types)}): ask for at most {MAX_TYPES}", key="type")
    for name in types:
        if not EVENT_TYPE.fullmatch(name):
            raise Invalid(
                f"invalid ?type= value {name[:80]!r}: an event type such as 'on_fit_epoch_end'", key="type"
            )
    return types


@router.get(
    "/{job_id}/events",
    response_model=EventsPublic,
    responses={200: {"content": {"text/event-stream": {}}, "description": "JSON page, or SSE when asked."}},
)
def job_events(
    request: Request,
    job: JobDep,
    principal: CurrentTenant,
    session: SessionDep,
    settings: SettingsDep,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_SEQ, description="Return events with seq greater than this.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    accept: Annotated[str | None, Header()] = None,
    last_event_id: Annotated[str | None, Header(description="SSE resume point (a seq).")] = None,
    type: Annotated[
        list[str] | None,
        Query(description="Only events of these types (repeatable); JSON pages only, not the stream."),
    ] = None,
) -> Any:
    """List a job's events in order; with `Accept: text/event-stream`, stream them live.

    A stream ends after the job's terminal event, or at the end of its lifetime (reconnect with
    Last-Event-ID); 429 with Retry-After while the tenant has as many streams open as allowed.
    """
    start = _resume_point(after, last_event_id)
    if accept and "text/event-stream" in accept:
        lease = StreamLease.open(settings, principal.tenant_id, "events")
        stream = EventStream(settings, request.app.state.redis, job.id, start, lease)
        return EventSourceResponse(
            stream.__aiter__(),
            ping=int(max(1, settings.sse_heartbeat_s)),
            headers={"Cache-Control": "no-store"},
        )
    events = list_events(session, job.id, after=start, limit=limit, types=_event_types(type))
    cursor = events[-1].seq if len(events) == limit else None
    page = EventsPublic.model_validate({"data": [event_json(e) for e in events], "next_cursor": cursor})
    # Rendered here: returning the model would have FastAPI validate the page a second time, which
    # for a page of 1,000 events costs about as much as reading it.
    return Response(page.model_dump_json(), media_type="application/json")
