"""Placement in the database: priority then submission order, queues, free GPUs and memory, races."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from trainforge.db.models import Job, Worker
from trainforge.db.session import session_scope
from trainforge.db.types import utcnow
from trainforge.jobs.lease import release_lease
from trainforge.scheduling import placement, registry
from trainforge.scheduling.inventory import Inventory, parse_declared


def finish(job_id: str, worker_id: str) -> None:
    with session_scope() as s:
        assert release_lease(s, job_id, f"{worker_id}:owner", "succeeded")


def test_higher_priority_first_then_oldest_across_the_workers_queues(
    make_job, queue_name, add_worker, take
) -> None:
    other = f"{queue_name}-b"
    low = make_job(queue=queue_name, priority=0)
    high_b = make_job(queue=other, priority=5)
    mid_1 = make_job(queue=queue_name, priority=3)
    mid_2 = make_job(queue=other, priority=3)
    unserved = make_job(queue=f"{queue_name}-none", priority=9)
    worker = add_worker([queue_name, other], slots=5)
    taken = [take(worker) for _ in range(5)]
    assert taken == [high_b, mid_1, mid_2, low, None]
    with session_scope() as s:
        assert s.get(Job, unserved).status == "queued"
        assert {s.get(Job, j).worker_id for j in taken if j} == {worker}


def test_gpus_in_use_and_memory_decide_what_fits(make_job, queue_name, add_worker, take) -> None:
    worker = add_worker([queue_name], "2xFakeGPU:16", slots=3)
    big = make_job(queue=queue_name, gpus=2, priority=5)
    too_much_memory = make_job(queue=queue_name, gpus=1, gpu_memory_gb=40.0, priority=9)
    small = make_job(queue=queue_name, gpus=1, gpu_memory_gb=16.0)
    assert take(worker) == big
    assert take(worker) is None  # both GPUs are held: the 1-GPU job waits although a slot is free
    finish(big, worker)
    assert take(worker) == small
    with session_scope() as s:
        assert s.get(Job, too_much_memory).status == "queued"


def test_a_cpu_worker_takes_no_gpu_job(make_job, queue_name, add_worker, take) -> None:
    worker = add_worker([queue_name])
    make_job(queue=queue_name, gpus=1, priority=9)
    cpu_job = make_job(queue=queue_name)
    assert take(worker) == cpu_job
    assert take(worker) is None


def test_pool_processes_of_one_worker_never_hand_out_a_gpu_twice(
    make_job, queue_name, add_worker, take
) -> None:
    worker = add_worker([queue_name], "2xFakeGPU:16", slots=4)
    jobs = {make_job(queue=queue_name, gpus=2) for _ in range(4)}
    results: list[str | None] = []
    barrier = threading.Barrier(4)

    def racer() -> None:
        barrier.wait()
        results.append(take(worker))

    threads = [threading.Thread(target=racer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    won = [r for r in results if r is not None]
    assert len(won) == 1 and won[0] in jobs


def test_workers_racing_for_one_backlog_take_each_job_once(make_job, queue_name, add_worker, take) -> None:
    jobs = {make_job(queue=queue_name, priority=i % 3) for i in range(12)}
    workers = [add_worker([queue_name], slots=12) for _ in range(3)]
    taken: list[str] = []
    lock = threading.Lock()

    def drain(worker_id: str) -> None:
        while (job_id := take(worker_id)) is not None:
            with lock:
                taken.append(job_id)

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(taken) == sorted(jobs)
    with session_scope() as s:
        attempts = s.execute(select(Job.attempt).where(Job.id.in_(jobs))).scalars().all()
    assert set(attempts) == {1}


def test_runnable_count_is_bounded_by_free_slots_and_an_unregistered_worker_takes_nothing(
    make_job, queue_name, add_worker, take
) -> None:
    worker = add_worker([queue_name], slots=2)
    for _ in range(3):
        make_job(queue=queue_name)
    with session_scope() as s:
        assert placement.runnable_count(s, worker) == 2
    take(worker)
    with session_scope() as s:
        assert placement.runnable_count(s, worker) == 1
        assert placement.runnable_count(s, "nobody@test") == 0
        assert placement.take_next(s, "nobody@test", "owner") is None


def test_live_lists_only_fresh_heartbeats_and_registration_forgets_old_rows(
    queue_name, add_worker, take
) -> None:
    fresh = add_worker([queue_name])
    stale = add_worker([queue_name])
    ancient = add_worker([queue_name])
    with session_scope() as s:
        s.execute(
            update(Worker).where(Worker.id == stale).values(heartbeat_at=utcnow() - timedelta(seconds=90))
        )
        s.execute(
            update(Worker).where(Worker.id == ancient).values(heartbeat_at=utcnow() - timedelta(days=2))
        )
    with session_scope() as s:
        ids = {w.id for w in registry.live(s, timeout_s=60)}
    assert fresh in ids and stale not in ids
    add_worker([queue_name])  # a registration sweeps out rows a day old
    with session_scope() as s:
        assert s.get(Worker, ancient) is None and s.get(Worker, stale) is not None
        assert registry.heartbeat(s, stale) and not registry.heartbeat(s, ancient)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cpu", Inventory("cpu", 0, None, None, "declared")),
        ("CPU", Inventory("cpu", 0, None, None, "declared")),
        ("2xA100:80", Inventory("cuda", 2, "A100", 80.0, "declared")),
        ("1xfake-gpu:0.5", Inventory("cuda", 1, "fake-gpu", 0.5, "declared")),
    ],
)
def test_declared_inventory_parses(text: str, expected: Inventory) -> None:
    assert parse_declared(text) == expected


@pytest.mark.parametrize(
    "text", ["gpu", "0xA100:80", "2xA100", "2xA100:-1", "2xA100:0", "x:1", "100xA:1", "2x:8"]
)
def test_declared_inventory_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="cpu"):
        parse_declared(text)


def test_settings_refuse_unreadable_worker_devices(monkeypatch) -> None:
    from pydantic import ValidationError

    from trainforge.settings import Settings

    monkeypatch.setenv("TRAINFORGE_WORKER_DEVICES", "two gpus")
    with pytest.raises(ValidationError, match="2xA100:80"):
        Settings()


def test_detect_asks_torch_in_a_subprocess_and_never_here() -> None:
    import sys

    from trainforge.scheduling.inventory import detect

    had_torch = "torch" in sys.modules
    found = detect()
    assert found.source == "detected"
    if found.kind == "cpu":
        assert (found.gpus, found.name, found.memory_gb) == (0, None, None)
    else:
        assert found.kind == "cuda" and found.gpus >= 1 and (found.memory_gb or 0) > 0
    assert ("torch" in sys.modules) == had_torch


def test_a_refused_candidate_is_passed_over_for_the_next(make_job, queue_name, add_worker) -> None:
    worker = add_worker([queue_name])
    limited = [make_job(tenant="at-its-limit", queue=queue_name, priority=9) for _ in range(10)]
    other = make_job(queue=queue_name, priority=0)
    refused: list[str] = []

    def admit(session, job_id: str) -> bool:
        if job_id in limited:
            refused.append(job_id)
            return False
        return True

    with session_scope() as s:
        assert placement.take_next(s, worker, "owner", admit=admit) == other
    assert sorted(refused) == sorted(limited)  # every one was asked once, past the first batch of 8
