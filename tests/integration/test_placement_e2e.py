"""Placement with real workers: declared devices, priorities across a backlog, the reason a job waits.

Two CPU workers declare different devices (one "2 x FakeGPU 16 GB", one CPU only) on queue
`place`, and a third, with one slot, serves `solo`. The API runs in this process, the workers as
`trainforge worker` processes on this module's database and a private Redis. Training is the
torch-free TickTrainer, in fresh interpreters (no fork server to preload).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from trainforge.db.models import Job, JobEvent
from trainforge.db.session import session_scope

from .conftest import FAST_INTERVALS
from .workers import WorkerProcess, WorkerSet

pytestmark = pytest.mark.integration

TICK = "tests.worker.trainers:TickTrainer"
QUEUE = "place"
SOLO = "solo"  # one worker with one slot: the order of its backlog is the placement order
FRESH_CHILDREN = {"TRAINFORGE_FORK_SERVER": "0"}


@pytest.fixture(scope="module")
def service_env(service_env: dict[str, str]) -> dict[str, str]:
    """The module's environment with the workers' short lease timeout, so the API drops dead workers soon."""
    return {**service_env, **FAST_INTERVALS, "TRAINFORGE_JOB_QUEUES": f"jobs,{QUEUE},{SOLO}"}


@pytest.fixture(scope="module")
def pool(worker_env: dict[str, str], tmp_path_factory) -> Iterator[dict[str, WorkerProcess]]:
    """Start the GPU-declaring and the CPU worker on `place`, and one worker on `solo`; yield them by role."""
    workers = WorkerSet(worker_env, tmp_path_factory.mktemp("placement-logs"))
    try:
        started = {
            "gpu": workers.start_jobs_worker(
                QUEUE, {**FRESH_CHILDREN, "TRAINFORGE_WORKER_DEVICES": "2xFakeGPU:16"}
            ),
            "cpu": workers.start_jobs_worker(QUEUE, {**FRESH_CHILDREN, "TRAINFORGE_WORKER_DEVICES": "cpu"}),
            "solo": workers.start_jobs_worker(SOLO, FRESH_CHILDREN),
        }
        for worker in started.values():
            worker.wait_ready()
        yield started
    finally:
        workers.stop()


@pytest.fixture
def client(api_client, make_token):
    """The in-process API with a fresh tenant's token."""
    api_client.headers["Authorization"] = f"Bearer {make_token()}"
    return api_client


def submit(client, queue: str = QUEUE, priority: int = 0, gpus: int = 0, epochs: int = 1) -> str:
    """POST a TickTrainer job (3 batches of 10 ms per epoch); return its id."""
    body = {
        "trainer": TICK,
        "task": "classify",
        "overrides": {"epochs": epochs},
        "resources": {"queue": queue, "gpus": gpus},
        "priority": priority,
    }
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def wait_for(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def status(client, job_id: str) -> dict:
    return client.get(f"/v1/jobs/{job_id}").json()


def ended(client, *job_ids: str) -> bool:
    return all(status(client, j)["status"] in ("succeeded", "failed", "cancelled") for j in job_ids)


def live_ids(client) -> set[str]:
    return {w["id"] for w in client.get("/v1/workers").json()["data"]}


def test_workers_list_their_declared_devices_and_queues(settings_env, pool, client) -> None:
    listed = {w["id"]: w for w in client.get("/v1/workers").json()["data"]}
    gpu, cpu = listed[pool["gpu"].name], listed[pool["cpu"].name]
    assert gpu["queues"] == [QUEUE] and gpu["slots"] == 1 and gpu["running"] == 0
    assert gpu["devices"] == {
        "kind": "cuda",
        "count": 2,
        "name": "FakeGPU",
        "memory_gb": 16.0,
        "source": "declared",
    }
    assert cpu["devices"] == {
        "kind": "cpu",
        "count": 0,
        "name": None,
        "memory_gb": None,
        "source": "declared",
    }


def test_a_gpu_job_runs_on_the_worker_that_offers_gpus_and_a_too_large_one_waits_saying_why(
    settings_env, pool, client
) -> None:
    too_large = submit(client, gpus=4)
    fits = submit(client, gpus=1)
    wait_for(lambda: ended(client, fits), what="the 1-GPU job")
    assert status(client, fits)["worker"] == pool["gpu"].name
    job = status(client, too_large)
    assert (job["status"], job["position"]) == ("queued", 1)
    assert job["pending_reason"] == "no worker offers 4 GPUs (the largest offers 2)"
    assert job["worker"] is None
    assert client.post(f"/v1/jobs/{too_large}/cancel").status_code == 202


def test_priorities_reorder_waiting_jobs_and_no_job_runs_twice(settings_env, pool, client) -> None:
    blocker = submit(client, SOLO, priority=0, epochs=400)
    wait_for(lambda: status(client, blocker)["status"] == "running", what="the blocker to start")
    low_1 = submit(client, SOLO, priority=0)
    low_2 = submit(client, SOLO, priority=0)
    high = submit(client, SOLO, priority=7)
    mid = submit(client, SOLO, priority=3)
    job = status(client, low_1)
    assert (job["position"], job["pending_reason"]) == (
        3,
        f"2 jobs of higher priority are ahead in queue {SOLO}",
    )
    assert status(client, high)["pending_reason"] == f"all 1 worker(s) of queue {SOLO} that fit it are busy"
    assert status(client, low_2)["position"] == 4
    client.post(f"/v1/jobs/{blocker}/cancel")
    order = [high, mid, low_1, low_2]
    wait_for(lambda: ended(client, *order), timeout=90, what="the backlog")
    with session_scope() as s:
        started = dict(s.execute(select(Job.id, Job.started_at).where(Job.id.in_(order))).all())
        runs = dict(
            s.execute(
                select(JobEvent.job_id, func.count())
                .where(JobEvent.job_id.in_([*order, blocker]), JobEvent.type == "job.started")
                .group_by(JobEvent.job_id)
            ).all()
        )
    assert sorted(order, key=lambda j: started[j]) == order
    assert runs == {j: 1 for j in [*order, blocker]}
    assert {status(client, j)["status"] for j in order} == {"succeeded"}
    assert {status(client, j)["worker"] for j in order} == {pool["solo"].name}


def test_a_job_whose_message_was_lost_is_found_again_by_a_heartbeat(settings_env, pool, make_job) -> None:
    # Inserted with no run_job message at all, as if Redis had lost it.
    job_id = make_job(queue=SOLO, trainer_ref=TICK, overrides={"epochs": 1})

    def done() -> bool:
        with session_scope() as s:
            return s.get_one(Job, job_id).status == "succeeded"

    wait_for(done, what="the job without a message")
    with session_scope() as s:
        assert s.get_one(Job, job_id).worker_id == pool["solo"].name


def test_a_burst_across_both_workers_runs_each_job_exactly_once(settings_env, pool, client) -> None:
    jobs = [submit(client, priority=i % 3) for i in range(6)]
    wait_for(lambda: ended(client, *jobs), timeout=120, what="the burst")
    with session_scope() as s:
        rows = s.execute(select(Job.status, Job.attempt, Job.worker_id).where(Job.id.in_(jobs))).all()
        started = s.execute(
            select(func.count()).where(JobEvent.job_id.in_(jobs), JobEvent.type == "job.started")
        ).scalar_one()
    assert {(st, attempt) for st, attempt, _ in rows} == {("succeeded", 1)}
    assert started == len(jobs)
    assert {w for _, _, w in rows} <= {pool["gpu"].name, pool["cpu"].name}


def test_a_worker_that_stops_heartbeating_drops_out(settings_env, pool, client) -> None:
    solo = pool["solo"]
    assert solo.name in live_ids(client)
    solo.kill()  # no clean shutdown: its row stays, and ages out after the lease timeout
    wait_for(lambda: solo.name not in live_ids(client), what="the killed worker to drop out")
    assert {pool["gpu"].name, pool["cpu"].name} <= live_ids(client)


def test_a_workers_list_shows_only_your_jobs_by_id(settings_env, pool, client, make_token) -> None:
    job_id = submit(client, epochs=400)
    wait_for(lambda: status(client, job_id)["status"] == "running", what="the job to start")
    mine = [w for w in client.get("/v1/workers").json()["data"] if job_id in w["jobs"]]
    other = client.get("/v1/workers", headers={"Authorization": f"Bearer {make_token()}"}).json()["data"]
    assert len(mine) == 1 and mine[0]["running"] == 1
    running_elsewhere = [w for w in other if w["id"] == mine[0]["id"]]
    assert running_elsewhere[0]["running"] == 1 and running_elsewhere[0]["jobs"] == []
    client.post(f"/v1/jobs/{job_id}/cancel")
    wait_for(lambda: ended(client, job_id), what="the cancel")
