"""Redis notifications: channel names and publishing after commit.

Redis only carries notifications; every message can be rebuilt from the database, so a failed
publish is logged and dropped rather than failing the transaction that produced it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from sqlalchemy.orm import Session

from trainforge.db.session import after_commit, json_dumps
from trainforge.settings import get_settings

log = logging.getLogger(__name__)

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()


def events_channel(job_id: str) -> str:
    """Return the channel on which a job's events are published."""
    return f"trainforge:jobs:{job_id}:events"


def control_channel(job_id: str) -> str:
    """Return the channel on which control notices (cancel) for a job are published."""
    return f"trainforge:jobs:{job_id}:control"


def get_redis(url: str | None = None) -> redis.Redis:
    """Return a shared synchronous Redis client for `url` (default: settings.redis_url)."""
    url = url or get_settings().redis_url
    with _lock:
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = redis.Redis.from_url(
                url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
            )
        return client


def reset_clients() -> None:
    """Close the shared clients (after a fork, or when tests change the Redis URL)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def publish(channel: str, message: dict[str, Any]) -> None:
    """Publish `message` as JSON now; log and swallow Redis errors (the DB holds the truth)."""
    try:
        get_redis().publish(channel, json_dumps(message))
    except redis.RedisError as exc:
        log.warning("publish on %s failed: %s", channel, exc)


def publish_after_commit(session: Session, channel: str, message: dict[str, Any]) -> None:
    """Publish `message` on `channel` once the session's transaction has committed."""
    after_commit(session, lambda: publish(channel, message))
