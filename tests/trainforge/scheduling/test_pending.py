"""Why a waiting job waits and its position: each reason in its order, on both databases."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from trainforge.db.models import Job, TenantLimits, Worker
from trainforge.db.session import session_scope
from trainforge.db.types import utcnow
from trainforge.scheduling.pending import Pending, Waiting, explain

LEASE_TIMEOUT_S = 60.0


def why(job_id: str) -> Pending:
    with session_scope() as s:
        job = s.get_one(Job, job_id)
        waiting = Waiting(
            job.id, job.tenant_id, job.queue, job.gpus, job.gpu_memory_gb, job.priority, job.created_at
        )
        return explain(s, waiting, LEASE_TIMEOUT_S)


def test_no_live_worker_serves_the_queue(make_job, queue_name, add_worker) -> None:
    job = make_job(queue=queue_name)
    assert why(job) == Pending(1, f"no live worker serves queue {queue_name} (see GET /v1/workers)")
    stale = add_worker([queue_name])
    with session_scope() as s:
        s.execute(
            update(Worker).where(Worker.id == stale).values(heartbeat_at=utcnow() - timedelta(seconds=61))
        )
    assert why(job).reason.startswith("no live worker serves")


def test_no_worker_offers_the_gpus_or_the_memory(make_job, queue_name, add_worker) -> None:
    add_worker([queue_name], "2xFakeGPU:16")
    add_worker([queue_name], "cpu")
    four = make_job(queue=queue_name, gpus=4)
    assert why(four).reason == "no worker offers 4 GPUs (the largest offers 2)"
    memory = make_job(queue=queue_name, gpus=1, gpu_memory_gb=40.0)
    assert why(memory).reason == "no worker offers 1 GPU with 40 GB each (the most memory is 16 GB)"
    cpu_queue = f"{queue_name}-cpu"
    add_worker([cpu_queue], "cpu")
    assert (
        why(make_job(queue=cpu_queue, gpus=1)).reason
        == "no worker offers 1 GPU (the largest runs on CPU only)"
    )


def test_position_and_jobs_ahead_follow_placement_order(make_job, queue_name, add_worker, take) -> None:
    worker = add_worker([queue_name])
    make_job(queue=queue_name)  # runs: the worker's one slot is then busy
    assert take(worker) is not None
    low_1 = make_job(queue=queue_name, priority=0)
    low_2 = make_job(queue=queue_name, priority=0)
    high = make_job(queue=queue_name, priority=5)
    mid = make_job(queue=queue_name, priority=3)
    make_job(queue=f"{queue_name}-other", priority=9)  # another queue does not count
    assert why(high) == Pending(1, f"all 1 worker(s) of queue {queue_name} that fit it are busy")
    assert why(mid) == Pending(2, f"1 job of higher priority is ahead in queue {queue_name}")
    assert why(low_1) == Pending(3, f"2 jobs of higher priority are ahead in queue {queue_name}")
    assert why(low_2) == Pending(4, f"2 jobs of higher priority are ahead in queue {queue_name}")


def test_same_priority_earlier_and_a_worker_with_room(make_job, queue_name, add_worker) -> None:
    add_worker([queue_name], slots=2)
    first = make_job(queue=queue_name, priority=2)
    second = make_job(queue=queue_name, priority=2)
    assert why(first) == Pending(1, "a worker has room for it; it starts at the next placement")
    assert why(second) == Pending(
        2, f"1 job of the same priority submitted earlier is ahead in queue {queue_name}"
    )


def test_tenant_at_its_running_limit_comes_first(make_job, queue_name, add_worker) -> None:
    add_worker([queue_name], slots=4)
    tenant = f"tenant-{queue_name}"
    make_job(tenant=tenant, queue=queue_name, status="running")
    held = make_job(tenant=tenant, queue=queue_name)
    other = make_job(queue=queue_name)
    with session_scope() as s:
        tenant_id = s.get_one(Job, held).tenant_id
        s.add(TenantLimits(tenant_id=tenant_id, limits={"max_running_jobs": 1}))
    assert why(held).reason == "tenant limit: 1 job running (max 1)"
    # Another tenant's job behind it is not held back by that limit, nor counted behind it.
    assert why(other) == Pending(1, "a worker has room for it; it starts at the next placement")
    with session_scope() as s:
        s.get_one(TenantLimits, tenant_id).limits = {"max_running_jobs": 2}
    assert why(held) == Pending(1, "a worker has room for it; it starts at the next placement")


def test_jobs_of_a_tenant_at_its_limit_are_not_counted_ahead(make_job, queue_name, add_worker) -> None:
    worker = add_worker([queue_name], slots=1)
    tenant = f"tenant-{queue_name}"
    make_job(tenant=tenant, queue=queue_name, status="running", worker_id=worker)
    with session_scope() as s:
        tenant_id = s.get_one(Job, make_job(tenant=tenant, queue=queue_name, priority=9)).tenant_id
        s.add(TenantLimits(tenant_id=tenant_id, limits={"max_running_jobs": 1}))
    high = make_job(queue=queue_name, priority=5)
    low = make_job(queue=queue_name, priority=0)
    assert why(high) == Pending(1, f"all 1 worker(s) of queue {queue_name} that fit it are busy")
    assert why(low) == Pending(2, f"1 job of higher priority is ahead in queue {queue_name}")
