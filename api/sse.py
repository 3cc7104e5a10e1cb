"""The live event stream of a job: subscribe, replay from the DB, then follow Redis, each seq once.

Order matters: subscribing before the replay means an event committed during the replay is either
in the replay or arrives on the channel; duplicates are dropped by seq. When Redis is silent for
`sse_poll_s` the stream re-reads the DB, so a lost message (or a Redis outage) delays an event but
never loses it. The stream ends after the job's terminal event, or cleanly at the end of its
lifetime (`api.streams`): the client reconnects with Last-Event-ID and the replay goes on from there.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from api.deps import open_session
from api.streams import StreamLease
from trainforge.events import event_json, list_events
from trainforge.jobs import repository
from trainforge.pubsub import events_channel
from trainforge.settings import Settings
from trainforge.vocab import TERMINAL, TERMINAL_EVENTS

log = logging.getLogger(__name__)
BATCH = 500


def _load(settings: Settings, job_id: str, after: int) -> tuple[list[dict[str, Any]], bool]:
    """Return up to BATCH events after `after`, and whether the job has ended."""
    # The stream outlives its request, so each read opens its own session (nothing to commit).
    with open_session(settings) as session:
        events = [event_json(e) for e in list_events(session, job_id, after=after, limit=BATCH)]
        status = repository.status_of(session, job_id)
    return events, status is None or status in TERMINAL


def sse_message(event: dict[str, Any]) -> dict[str, Any]:
    """Render an event as an SSE message (id = seq, event = type, data = the event JSON)."""
    return {"id": str(event["seq"]), "event": event["type"], "data": json.dumps(event)}


class EventStream:
    """One client's stream of one job's events after seq `after`."""

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis | None,
        job_id: str,
        after: int,
        lease: StreamLease | None = None,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.job_id = job_id
        self.last = after
        self.done = False
        self.lease = lease

    def _over(self) -> bool:
        """Return whether the stream must end: the job ended, or the stream's lifetime ran out."""
        return self.done or (self.lease is not None and self.lease.expired())

    async def _catch_up(self) -> AsyncIterator[dict[str, Any]]:
        """Yield every persisted event after the last one sent."""
        while not self._over():
            events, ended = await anyio.to_thread.run_sync(_load, self.settings, self.job_id, self.last)
            for event in events:
                for message in self._accept(event):
                    yield message
            if len(events) < BATCH:
                if ended and not events:
                    self.done = True  # ended without a terminal event we can see: nothing more will come
                return

    def _accept(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Return the message for `event` if it is the next one, marking the end after a terminal event."""
        if self.done or event["seq"] <= self.last:
            return []
        self.last = event["seq"]
        if event["type"] in TERMINAL_EVENTS:
            self.done = True
        return [sse_message(event)]

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        """Yield SSE messages until the job's terminal event, the stream's lifetime, or the client leaves."""
        pubsub = None
        try:
            pubsub = await self._subscribe()
            async for message in self._catch_up():
                yield message
            while not self._over():
                if self.lease is not None:
                    await self.lease.keep()
                event = await self._next_live(pubsub)
                if event is None or event["seq"] > self.last + 1:
                    # Silence, or a gap: the DB has whatever Redis did not bring.
                    async for message in self._catch_up():
                        yield message
                    # A catch-up cut short by the lifetime leaves a gap before this event: skip it,
                    # the client's resume replays it in order.
                    if event is None or event["seq"] > self.last + 1:
                        continue
                for message in self._accept(event):
                    yield message
        finally:
            if pubsub is not None:
                with anyio.CancelScope(shield=True):
                    with contextlib.suppress(RedisError, OSError):
                        await pubsub.aclose()
            if self.lease is not None:
                await self.lease.close()

    def _wait_s(self) -> float:
        """Return how long to wait for a live event: the poll period, cut to the stream's time left."""
        if self.lease is None:
            return self.settings.sse_poll_s
        return max(0.01, min(self.settings.sse_poll_s, self.lease.left_s()))

    async def _subscribe(self) -> Any:
        """Subscribe to the job's channel; None when Redis is unreachable (then the DB is polled)."""
        if self.redis is None:
            return None
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(events_channel(self.job_id))
        except (RedisError, OSError) as exc:
            log.warning("SSE for job %s without Redis (%s); polling the database", self.job_id, exc)
            await pubsub.aclose()
            return None
        return pubsub

    async def _next_live(self, pubsub: Any) -> dict[str, Any] | None:
        """Wait up to sse_poll_s for the next published event of this job."""
        if pubsub is None:
            await anyio.sleep(self._wait_s())
            return None
        try:
            message = await pubsub.get_message(timeout=self._wait_s())
        except (RedisError, OSError) as exc:
            log.warning("SSE for job %s lost Redis (%s); polling the database", self.job_id, exc)
            await anyio.sleep(self.settings.sse_poll_s)
            return None
        if message is None or message.get("type") != "message":
            return None
        try:
            event = json.loads(message["data"])
        except (TypeError, ValueError):
            return None
        return event if isinstance(event, dict) and isinstance(event.get("seq"), int) else None
