"""Counted slots shared by every process, held as expiring leases in Redis.

A slot pool is a Redis sorted set: one member per holder, scored with the time its lease ends (the
Redis server's clock, so processes on several machines agree). Taking a slot first drops the leases
that ended, so a holder that died (a killed worker, a crashed API process) frees its slot when its
lease runs out, never later. One script takes a slot in several pools at once or in none, so two
processes can never both take the last slot.

A taker that finds a pool full may leave its name in the pool's waiting list, in the same script.
Giving a slot back hands it to the first waiter of that pool, in one script too: the slot stays
taken, reserved for the waiter ("reserved:<waiter>") for a short lease, so a newcomer cannot take it
before the waiter comes back for it, and the waiter's next take turns the reservation into its own
slot. The caller wakes the waiters it got.

Redis only throttles here; the database stays the source of truth. When Redis cannot be reached
the caller decides (webhooks and streams go ahead unthrottled rather than stop).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from trainforge.pubsub import get_redis

log = logging.getLogger(__name__)
PREFIX = "trainforge:slots:"

# KEYS: the pools; ARGV: member, lease ms, waiter ("" for none), "1" to queue the waiter in a full pool,
# then each pool's cap. Returns 0 when taken, else the 1-based index of the first full pool (whose
# waiting list then ends with the waiter, if queued).
# A member already in a pool renews its lease there.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if ARGV[3] ~= '' then redis.call('ZREM', key, 'reserved:' .. ARGV[3]) end
  if not redis.call('ZSCORE', key, ARGV[1]) and redis.call('ZCARD', key) >= tonumber(ARGV[i + 4]) then
    if ARGV[3] ~= '' and ARGV[4] == '1' then
      redis.call('RPUSH', key .. ':waiting', ARGV[3])
      redis.call('PEXPIRE', key .. ':waiting', lease * 4)
    end
    return i
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + lease, ARGV[1])
  if redis.call('PTTL', key) < lease then redis.call('PEXPIRE', key, lease) end
end
return 0
"""
# KEYS: the pools; ARGV: member, lease ms. Pushes the member's lease end out (re-adding it if its
# lease had already run out: the holder is alive, so it still counts).
_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + lease, ARGV[1])
  if redis.call('PTTL', key) < lease then redis.call('PEXPIRE', key, lease) end
end
return 0
"""


# KEYS: the pools; ARGV: member, reservation ms. Frees the member's slot in each pool where it held
# one, reserving it for that pool's first waiter if there is one. Returns the waiters served.
_GIVE_BACK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local woken = {}
for _, key in ipairs(KEYS) do
  if redis.call('ZREM', key, ARGV[1]) == 1 then
    local waiter = redis.call('LPOP', key .. ':waiting')
    if waiter then
      redis.call('ZADD', key, now + tonumber(ARGV[2]), 'reserved:' .. waiter)
      table.insert(woken, waiter)
    end
  end
end
return woken
"""


@dataclass(frozen=True)
class Pool:
    """One pool of slots: its Redis key and how many holders it admits at once."""

    key: str
    cap: int


def pool(kind: str, owner: str, cap: int) -> Pool:
    """Return the pool of `kind` (e.g. "webhooks:tenant") for `owner`, admitting `cap` holders."""
    return Pool(f"{PREFIX}{kind}:{owner}", cap)


class Slots:
    """Take, renew and give back one holder's slot in several pools at once."""

    def __init__(self, client: redis.Redis | None = None) -> None:
        self._client = client

    @property
    def client(self) -> redis.Redis:
        """Return the Redis client (the process's shared one unless given)."""
        return self._client or get_redis()

    def take(
        self, pools: Sequence[Pool], member: str, lease_s: float, waiter: str = "", queue: bool = True
    ) -> Pool | None:
        """Take a slot in every pool for `member` for `lease_s`; return None, or the first full pool.

        With `waiter`, a slot reserved for it is used, and (with `queue`) a full pool keeps it in
        its waiting list to be handed a slot by a `give_back`.
        """
        keys = [p.key for p in pools]
        caps = [p.cap for p in pools]
        args = (member, _ms(lease_s), waiter, "1" if queue else "0", *caps)
        full = int(self.client.eval(_TAKE, len(keys), *keys, *args))  # type: ignore[arg-type]
        return pools[full - 1] if full else None

    def renew(self, pools: Sequence[Pool], member: str, lease_s: float) -> None:
        """Extend `member`'s lease in every pool to `lease_s` from now."""
        keys = [p.key for p in pools]
        self.client.eval(_RENEW, len(keys), *keys, member, _ms(lease_s))  # type: ignore[arg-type]

    def give_back(self, pools: Sequence[Pool], member: str, reserve_s: float = 30.0) -> list[str]:
        """Free `member`'s slot in every pool; return the waiters it is now reserved for (one per pool).

        A waiter that does not come back within `reserve_s` loses its reservation to anyone.
        """
        keys = [p.key for p in pools]
        woken = self.client.eval(_GIVE_BACK, len(keys), *keys, member, _ms(reserve_s))  # type: ignore[arg-type]
        return [w.decode() if isinstance(w, bytes) else str(w) for w in woken or []]  # type: ignore[union-attr]

    def holders(self, p: Pool) -> int:
        """Return how many leases in the pool have not ended (for operators and tests)."""
        now_s, now_us = self.client.time()  # type: ignore[misc]
        count = self.client.zcount(p.key, now_s * 1000 + now_us // 1000 + 1, "+inf")
        return int(count)  # type: ignore[arg-type]


def reservation(waiter: str) -> str:
    """Return the member name of a slot reserved for `waiter` (give it back to pass it on)."""
    return f"reserved:{waiter}"


def _ms(seconds: float) -> int:
    """Return a lease length in whole milliseconds (at least one)."""
    return max(1, int(seconds * 1000))
