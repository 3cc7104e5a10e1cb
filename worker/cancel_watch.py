"""Hear a job's cancel notice on Redis at once, instead of waiting for the next heartbeat.

Redis only speeds things up: a lost notice is caught by the heartbeat, which reads the job's status
from the database ("cancelling").
"""

from __future__ import annotations

import contextlib
import json
import logging

import redis

from trainforge import pubsub

log = logging.getLogger(__name__)


class CancelWatch:
    """A subscription to `trainforge:jobs:{id}:control`; `requested()` polls it without blocking."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self._pubsub: redis.client.PubSub | None = None
        try:
            self._pubsub = pubsub.get_redis().pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(pubsub.control_channel(job_id))
        except redis.RedisError as exc:
            log.warning("job %s: no cancel notices from Redis (%s); relying on heartbeats", job_id, exc)
            self._pubsub = None

    def requested(self) -> bool:
        """Return whether a cancel notice arrived since the last call."""
        if self._pubsub is None:
            return False
        try:
            while (message := self._pubsub.get_message(timeout=0)) is not None:
                if _is_cancel(message.get("data")):
                    return True
        except redis.RedisError as exc:
            log.warning("job %s: cancel notices stopped (%s); relying on heartbeats", self.job_id, exc)
            self.close()
        return False

    def close(self) -> None:
        """Drop the subscription."""
        if self._pubsub is not None:
            with contextlib.suppress(redis.RedisError):
                self._pubsub.close()
            self._pubsub = None


def _is_cancel(data: object) -> bool:
    """Return whether a control message asks to cancel."""
    try:
        return json.loads(data).get("action") == "cancel"  # type: ignore[arg-type]
    except (TypeError, ValueError, AttributeError):
        return False
