"""A tenant's open streams (SSE events, followed logs): one cap shared by every API process, a lifetime.

Each open stream holds a slot in its tenant's pool (`trainforge.slots`), renewed while it runs and
given back when it ends; an API process that crashes stops renewing, so its slots free themselves
after LEASE_S. A stream also ends cleanly after `stream_max_lifetime_s`: clients reconnect where they
were (SSE with Last-Event-ID, a followed log with ?offset=), which spreads long-lived connections over
API processes as they come and go.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid

import anyio
import redis

from trainforge.errors import TooManyRequests
from trainforge.pubsub import get_redis
from trainforge.settings import Settings
from trainforge.slots import Pool, Slots, pool

log = logging.getLogger(__name__)

LEASE_S = 30.0
RENEW_EVERY_S = LEASE_S / 3
# Streams of one tenant end at least every lifetime, and crashed ones within LEASE_S: a few seconds
# is a fair first wait.
RETRY_AFTER_S = 5


class StreamLease:
    """One stream's slot in its tenant's pool, and the time the stream must end."""

    def __init__(self, settings: Settings, tenant_id: str, kind: str) -> None:
        self.cap = settings.stream_max_per_tenant
        self.pools: list[Pool] = [pool("streams:tenant", tenant_id, self.cap)]
        self.holder = f"{kind}:{uuid.uuid4().hex}"
        self.ends_at = time.monotonic() + settings.stream_max_lifetime_s
        self._slots = Slots(get_redis(settings.redis_url))
        self._renewed = time.monotonic()
        self._held = False

    @classmethod
    def open(cls, settings: Settings, tenant_id: str, kind: str) -> StreamLease:
        """Take a slot for a new stream; 429 with Retry-After when the tenant has every one in use."""
        lease = cls(settings, tenant_id, kind)
        try:
            full = lease._slots.take(lease.pools, lease.holder, LEASE_S)
        except (redis.RedisError, OSError) as exc:
            log.warning("stream slots unavailable (%s); opening the stream without the cap", exc)
            return lease
        if full is not None:
            raise TooManyRequests(
                f"this tenant already has {lease.cap} streams open (stream_max_per_tenant); close one "
                f"(an SSE event stream or a followed log) or retry after {RETRY_AFTER_S} s",
                retry_after_s=RETRY_AFTER_S,
            )
        lease._held = True
        return lease

    def left_s(self) -> float:
        """Return the seconds this stream may still run."""
        return max(0.0, self.ends_at - time.monotonic())

    def expired(self) -> bool:
        """Return whether the stream reached its lifetime and must end now."""
        return self.left_s() <= 0

    async def keep(self) -> None:
        """Renew the slot when it is due (call it from the stream's loop)."""
        if not self._held or time.monotonic() - self._renewed < RENEW_EVERY_S:
            return
        self._renewed = time.monotonic()
        try:
            await anyio.to_thread.run_sync(self._slots.renew, self.pools, self.holder, LEASE_S)
        except (redis.RedisError, OSError) as exc:
            log.warning("could not renew stream slot %s (%s)", self.holder, exc)

    async def close(self) -> None:
        """Give the slot back; shielded, since this runs while a cut stream is being cancelled."""
        if not self._held:
            return
        self._held = False
        with anyio.CancelScope(shield=True), contextlib.suppress(redis.RedisError, OSError):
            await anyio.to_thread.run_sync(self._slots.give_back, self.pools, self.holder)
