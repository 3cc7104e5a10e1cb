"""POST rate limits per API token, kept in Redis so every API process counts against the same budget.

A generic cell rate algorithm: a token may send `per_minute` requests at once, then one every
60/per_minute seconds. Redis keeps one key per token (the time its budget is next fully spent) and
its own clock decides, so API processes on several hosts agree without synchronised clocks.
"""

from __future__ import annotations

import logging
import math

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

KEY = "trainforge:rate:post:{token_id}"

# KEYS[1]: the token's key. ARGV[1]: ms between requests; ARGV[2]: burst (requests at once).
# Returns 0 when the request may go, else how many ms until it may.
GCRA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local after = tat + interval
local wait = after - now - burst * interval
if wait > 0 then return math.ceil(wait) end
redis.call('SET', KEYS[1], after, 'PX', math.max(1, math.ceil(after - now)))
return 0
"""


async def retry_after_s(client: aioredis.Redis, token_id: str, per_minute: int) -> int | None:
    """Spend one request of the token's budget; return the seconds to wait when it is spent, else None.

    Redis being away lets the request through (logged): the limit protects the service, and refusing
    every POST while Redis restarts would hurt more than a minute without it.
    """
    interval_ms = 60_000 / per_minute
    try:
        key = KEY.format(token_id=token_id)
        wait_ms = await client.eval(GCRA, 1, key, str(interval_ms), str(per_minute))  # type: ignore[misc]
    except (RedisError, OSError) as exc:
        log.warning("POST rate limit not checked (Redis: %s)", exc)
        return None
    return max(1, math.ceil(float(wait_ms) / 1000)) if float(wait_ms) > 0 else None
