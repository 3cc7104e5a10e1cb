"""GET /v1/workers and the placement fields of jobs: live workers, your jobs only, bad resources refused."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from trainforge.db.models import Job, Worker
from trainforge.db.session import session_scope
from trainforge.db.types import utcnow
from trainforge.jobs.lease import take_lease
from trainforge.scheduling import registry
from trainforge.scheduling.inventory import parse_declared

GOOD = {"trainer": "classify", "overrides": {"epochs": 1}}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register(queues: list[str], devices: str) -> str:
    worker_id = f"api-{uuid.uuid4().hex[:6]}@test"
    with session_scope() as s:
        registry.register(s, registry.WorkerInfo(worker_id, "test", 7, queues, 2, parse_declared(devices)))
    return worker_id


def test_workers_show_live_ones_with_devices_and_only_the_callers_jobs(
    api_client, make_token, make_job
) -> None:
    gpu = register(["gpu-q"], "2xA100:80")
    dead = register(["gpu-q"], "cpu")
    with session_scope() as s:
        s.execute(update(Worker).where(Worker.id == dead).values(heartbeat_at=utcnow() - timedelta(hours=1)))
    mine, theirs = make_job(tenant="owner-a"), make_job(tenant="owner-b")
    with session_scope() as s:
        for job_id in (mine, theirs):
            assert take_lease(s, job_id, "owner")
            s.execute(update(Job).where(Job.id == job_id).values(worker_id=gpu))
    body = api_client.get("/v1/workers", headers=auth(make_token("owner-a"))).json()["data"]
    shown = {w["id"]: w for w in body}
    assert dead not in shown
    assert shown[gpu]["devices"] == {
        "kind": "cuda", "count": 2, "name": "A100", "memory_gb": 80.0, "source": "declared"
    }  # fmt: skip
    assert (shown[gpu]["queues"], shown[gpu]["slots"], shown[gpu]["running"]) == (["gpu-q"], 2, 2)
    assert shown[gpu]["jobs"] == [mine]
    job = api_client.get(f"/v1/jobs/{mine}", headers=auth(make_token("owner-a"))).json()
    assert (job["worker"], job["position"], job["pending_reason"]) == (gpu, None, None)


def test_workers_need_a_token(api_client) -> None:
    assert api_client.get("/v1/workers").status_code == 401


BAD_RESOURCES = [
    ({"gpus": 1, "gpu_memory_gb": 0}, "gpu_memory_gb"),
    ({"gpus": 1, "gpu_memory_gb": -4}, "gpu_memory_gb"),
    ({"gpus": 1, "gpu_memory_gb": 5000}, "gpu_memory_gb"),
    ({"gpus": 1, "gpu_memory_gb": "lots"}, "gpu_memory_gb"),
    ({"gpu_memory_gb": 16}, "needs gpus >= 1"),
    ({"gpus": 65}, "resources.gpus"),
    ({"gpus": 1.5}, "resources.gpus"),
    ({"queue": "no spaces"}, "resources.queue"),
    ({"queue": "x" * 65}, "resources.queue"),
    ({"gpu": 1}, "resources.gpu"),
]


@pytest.mark.parametrize(("resources", "text"), BAD_RESOURCES, ids=[str(r) for r, _ in BAD_RESOURCES])
def test_bad_resources_are_refused_and_create_nothing(api_client, make_token, resources, text) -> None:
    tenant = f"bad-{uuid.uuid4().hex[:6]}"
    r = api_client.post("/v1/jobs", json={**GOOD, "resources": resources}, headers=auth(make_token(tenant)))
    assert r.status_code == 422, r.text
    assert text in str(r.json()["detail"]), r.json()
    assert api_client.get("/v1/jobs", headers=auth(make_token(tenant))).json()["data"] == []


@pytest.mark.parametrize(
    ("priority", "ok"), [(0, True), (9, True), (-1, False), (10, False), ("high", False)]
)
def test_priority_bounds(api_client, make_token, priority, ok) -> None:
    token = make_token()
    r = api_client.post("/v1/jobs", json={**GOOD, "priority": priority}, headers=auth(token))
    assert (r.status_code == 202) is ok, r.text
    assert len(api_client.get("/v1/jobs", headers=auth(token)).json()["data"]) == (1 if ok else 0)
