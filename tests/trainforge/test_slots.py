"""Counted slots in real Redis: atomic under contention, all pools or none, leases that end."""

from __future__ import annotations

import threading
import time
import uuid

import redis

from trainforge.slots import Slots, pool


def fresh(kind: str, cap: int):
    """Return a pool no other test uses."""
    return pool(f"test:{kind}", uuid.uuid4().hex, cap)


def test_twenty_takers_at_once_get_exactly_the_cap(redis_url) -> None:
    slots = Slots(redis.Redis.from_url(redis_url))
    target = fresh("race", 3)
    won: list[str] = []
    barrier = threading.Barrier(20)

    def take(n: int) -> None:
        barrier.wait()
        if slots.take([target], f"holder-{n}", 30) is None:
            won.append(f"holder-{n}")

    threads = [threading.Thread(target=take, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 3 and slots.holders(target) == 3


def test_a_full_pool_takes_nothing_from_the_others(redis_url) -> None:
    slots = Slots(redis.Redis.from_url(redis_url))
    roomy, tight = fresh("roomy", 5), fresh("tight", 1)
    assert slots.take([roomy, tight], "a", 30) is None
    assert slots.take([roomy, tight], "b", 30) == tight
    assert slots.holders(roomy) == 1 and slots.holders(tight) == 1
    slots.give_back([roomy, tight], "a")
    assert slots.take([roomy, tight], "b", 30) is None


def test_a_lease_ends_unless_renewed_and_the_key_expires(redis_url) -> None:
    client = redis.Redis.from_url(redis_url)
    slots = Slots(client)
    target = fresh("lease", 1)
    assert slots.take([target], "kept", 0.4) is None
    time.sleep(0.25)
    slots.renew([target], "kept", 0.4)
    time.sleep(0.25)
    assert slots.take([target], "late", 0.4) == target  # renewed: still held
    time.sleep(0.45)
    assert slots.take([target], "late", 0.3) is None  # the holder stopped renewing: its slot is free
    time.sleep(0.5)
    assert not client.exists(target.key)  # nothing is left behind in Redis either


def test_a_refused_taker_waits_in_line_and_a_release_hands_it_the_slot(redis_url) -> None:
    slots = Slots(redis.Redis.from_url(redis_url))
    target = fresh("line", 1)
    assert slots.take([target], "holder", 30) is None
    assert slots.take([target], "first-try", 30, waiter="first") == target
    assert slots.take([target], "second-try", 30, waiter="second") == target
    assert slots.give_back([target], "somebody-else") == []  # held nothing: frees nothing, wakes nobody
    assert slots.give_back([target], "holder") == ["first"]  # first come, first served
    assert slots.take([target], "newcomer", 30) == target  # the freed slot is reserved for "first"
    assert slots.take([target], "first-try", 30, waiter="first") is None
    assert slots.give_back([target], "first-try") == ["second"]
    assert slots.take([target], "second-try", 30, waiter="second") is None
    assert slots.give_back([target], "second-try") == []
    assert slots.holders(target) == 0


def test_a_reservation_nobody_claims_ends_with_its_lease(redis_url) -> None:
    slots = Slots(redis.Redis.from_url(redis_url))
    target = fresh("reserve", 1)
    assert slots.take([target], "holder", 30) is None
    assert slots.take([target], "try", 30, waiter="gone") == target
    assert slots.give_back([target], "holder", reserve_s=0.3) == ["gone"]
    assert slots.take([target], "newcomer", 30) == target
    time.sleep(0.4)
    assert slots.take([target], "newcomer", 30) is None
