"""Delivery slots: how many attempts one receiver and one tenant may have running at once.

Every attempt holds a webhooks worker process until its receiver answers or the attempt times out,
so a tarpit (a receiver that accepts and never answers) would otherwise take every process and
stall every tenant's deliveries. Before claiming a delivery, a worker takes a slot in two pools
shared by all workers: its receiver's (`webhook_endpoint_in_flight`) and its tenant's
(`webhook_tenant_in_flight`, the tenant's share of the slots). A delivery that finds either full
is not attempted: it waits in that pool's waiting list, and the attempt that gives a slot of the
pool back reserves the slot for it and delivers it next, in the same task (a bounded number in a
row, then by a message), so a slow receiver delays only its own
tenant, newcomers cannot jump the line, and a waiting delivery costs nothing until its turn.
Slots are leases as long as a claim: a worker killed mid-attempt frees its slots when its claim
would have ended (the deliveries waiting on them are then found by the sweep).
"""

from __future__ import annotations

import hashlib
import logging
import uuid

import redis

from trainforge.settings import Settings
from trainforge.slots import Pool, Slots, pool, reservation

log = logging.getLogger(__name__)

# How long a slot handed to a waiting delivery stays reserved for it: its wake-up message only has
# to cross the queue.
RESERVE_S = 30.0

_slots = Slots()


def pools_for(tenant_id: str, endpoint_id: str | None, url: str | None, settings: Settings) -> list[Pool]:
    """Return the receiver's pool and the tenant's pool a delivery needs a slot in."""
    # A job webhook is one receiver per URL for the whole tenant: many jobs naming one URL share it.
    receiver = endpoint_id or "url-" + hashlib.sha256(f"{tenant_id}\n{url}".encode()).hexdigest()[:32]
    return [
        pool("webhooks:receiver", receiver, settings.webhook_endpoint_in_flight),
        pool("webhooks:tenant", tenant_id, settings.webhook_tenant_in_flight),
    ]


def new_holder(delivery_id: str) -> str:
    """Return a holder name for one try at a delivery (two messages for it hold two names)."""
    return f"{delivery_id}:{uuid.uuid4().hex[:8]}"


def take(pools: list[Pool], holder: str, lease_s: float, waiter: str = "", queue: bool = True) -> Pool | None:
    """Take a slot in every pool; return the full pool that refused (`waiter` now waits there unless
    not `queue`), or None.

    Without Redis the attempt goes ahead: Redis is also the broker, so deliveries already in hand
    are few, and holding them back would lose nothing but time.
    """
    try:
        return _slots.take(pools, holder, lease_s, waiter, queue)
    except (redis.RedisError, OSError) as exc:
        log.warning("delivery slots unavailable (%s); attempting without the fairness caps", exc)
        return None


def give_back(pools: list[Pool], holder: str) -> list[str]:
    """Free the holder's slots; return the waiting deliveries to send now (one per pool freed).

    A Redis error only leaves the slots to end with their lease.
    """
    if not pools:
        return []
    try:
        return _slots.give_back(pools, holder, RESERVE_S)
    except (redis.RedisError, OSError) as exc:
        log.warning("could not free delivery slots of %s (%s); their lease ends them", holder, exc)
        return []


def pass_on(pools: list[Pool], delivery_id: str) -> list[str]:
    """Hand a slot reserved for a delivery that no longer needs it (done already) to the next waiter."""
    return give_back(pools, reservation(delivery_id))
