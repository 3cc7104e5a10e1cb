"""Limits at run time, on real tiny training runs: time limit, disk quota, train.log cap, running jobs.

Each limit is set on the tenant's row (what `trainforge tenant set` writes), so these runs also show
that the supervisor reads the tenant's limits, not only the operator's settings.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid

import pytest
import redis
from shared_helpers import TINY_CLASSIFY
from sqlalchemy import select

from trainforge.auth import get_or_create_tenant
from trainforge.db.models import Job
from trainforge.db.session import session_scope
from trainforge.rundir import RunDir
from trainforge.tenant_limits import set_limits
from worker.launcher import set_zygote
from worker.supervisor import Supervisor
from worker.usage import UsageWatch, cut_log, marker
from worker.zygote import ZygoteClient

SLOW = "tests.integration.trainers:SlowTrainer"
CHATTY = "tests.integration.trainers:ChattyTrainer"
TICK = "tests.worker.trainers:TickTrainer"


@pytest.fixture(scope="module")
def fork_server(service_env):
    """Yield a fork server started with this module's environment (torch preloaded, as a worker has it).

    Training children then start in milliseconds, so a time limit of seconds is spent training,
    not importing torch on a loaded machine.
    """
    with pytest.MonkeyPatch.context() as env:
        for key, value in {**service_env, "TRAINFORGE_HEARTBEAT_INTERVAL_S": "0.3"}.items():
            env.setenv(key, value)
        server = ZygoteClient()
        server.start()
        ready = server.wait_ready(300)
    assert ready, "the fork server did not start"
    yield server
    server.stop()


@pytest.fixture
def warm(env, fork_server):
    """The worker tests' settings, with children forked by the module's fork server."""
    set_zygote(fork_server)
    yield env
    set_zygote(None)


def limited_tenant(**limits) -> str:
    """Create a tenant whose row holds `limits`; return its name."""
    name = f"run-limits-{uuid.uuid4().hex[:8]}"
    with session_scope() as s:
        set_limits(s, get_or_create_tenant(s, name).id, limits)
    return name


def job_row(job_id: str) -> Job:
    with session_scope() as s:
        return s.execute(select(Job).where(Job.id == job_id)).scalar_one()


def test_time_limit_stops_a_real_run_at_a_batch_with_last_pt(warm, make_job):
    tenant = limited_tenant(job_time_limit_s=20)
    job_id = make_job(tenant=tenant, trainer_ref=SLOW, overrides={**TINY_CLASSIFY, "epochs": 1000})
    started = time.monotonic()
    assert Supervisor(job_id).run() == "failed"
    assert time.monotonic() - started < 60  # the limit, the child's start and a batch, not 1000 epochs
    job = job_row(job_id)
    assert (job.status, job.stop_reason) == ("failed", "time limit")
    assert job.error == "the job ran past its time limit of 20 s and was stopped"
    assert RunDir.of(warm.artifacts_dir, job_id).last.is_file()


def test_disk_quota_stops_a_real_run_with_last_pt(warm, make_job):
    tenant = limited_tenant(job_disk_quota_bytes=3 * 1024 * 1024)
    job_id = make_job(
        tenant=tenant, trainer_ref=SLOW, overrides={**TINY_CLASSIFY, "epochs": 1000, "save_period": 1}
    )
    assert Supervisor(job_id).run() == "failed"
    job = job_row(job_id)
    assert (job.status, job.stop_reason) == ("failed", "disk quota")
    assert "over its disk quota of 3145728 bytes (job_disk_quota_bytes)" in job.error
    assert job.error.endswith("it was stopped at a batch boundary with last.pt saved")
    assert RunDir.of(warm.artifacts_dir, job_id).last.is_file()
    assert job.epoch is not None and job.epoch < 1000


def test_log_cap_cuts_train_log_with_a_marker_and_the_run_goes_on(warm, make_job):
    cap = 16 * 1024
    tenant = limited_tenant(job_log_max_bytes=cap)
    job_id = make_job(tenant=tenant, trainer_ref=CHATTY, overrides={**TINY_CLASSIFY, "epochs": 30})
    assert Supervisor(job_id).run() == "succeeded"
    text = RunDir.of(warm.artifacts_dir, job_id).log.read_text()
    assert len(text.encode()) <= cap
    assert "bytes of train.log cut here; the log is capped at 16384 bytes (job_log_max_bytes)" in text
    assert f"job {job_id}: {CHATTY}" in text[: cap // 4]  # the head (the run's setup) stays
    assert "chatty batch 60 " in text  # 30 epochs of 2 batches: the last line is kept
    assert job_row(job_id).epoch == 30


def test_cut_log_keeps_head_marker_and_tail(tmp_path):
    path = tmp_path / "train.log"
    path.write_bytes(b"H" * 500 + b"M" * 5000 + b"T" * 500)
    cut = cut_log(path, 2000)
    data = path.read_bytes()
    assert data == b"H" * 500 + marker(cut, 2000) + b"M" * 500 + b"T" * 500
    assert cut == 6000 - 500 - 1000
    assert cut_log(path, 4000) == 0  # under the cap: untouched
    assert UsageWatch(RunDir(tmp_path), disk_quota_bytes=10).check() is not None


def test_max_running_jobs_keeps_the_next_job_queued_until_a_run_ends(env, make_job, redis_url):
    tenant = limited_tenant(max_running_jobs=1)
    first = make_job(tenant=tenant, trainer_ref=TICK, overrides={"epochs": 3, "batches": 5, "batch_s": 0.1})
    second = make_job(tenant=tenant, trainer_ref=TICK, overrides={"epochs": 1, "batches": 1})
    other = make_job(trainer_ref=TICK, overrides={"epochs": 1, "batches": 1})  # another tenant
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(Supervisor(first).run()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while job_row(first).status != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    broker = redis.Redis.from_url(redis_url)
    broker.delete("jobs")
    held = Supervisor(second)
    assert held.run() == "held"
    assert held.held == "tenant limit: 1 jobs running (max 1)"
    assert job_row(second).status == "queued"
    assert Supervisor(other).run() == "succeeded"  # the limit is the tenant's alone
    thread.join(30)
    assert result == ["succeeded"]
    sent = [json.loads(base64.b64decode(json.loads(m)["body"]))[0] for m in broker.lrange("jobs", 0, -1)]
    assert sent == [[second]]  # the end of the first run sent the held job again
    assert Supervisor(second).run() == "succeeded"


@pytest.mark.parametrize("name", ["synthetic:classify", "synthetic:shapes"])
def test_synthetic_defaults_match_the_engines(name):
    from trainer_engine.data.classify.synthetic import SyntheticSpec
    from trainer_engine.data.detect.synthetic import ShapesSpec
    from trainforge.jobs.limits import SYNTHETIC_DEFAULTS

    spec = {"synthetic:classify": SyntheticSpec, "synthetic:shapes": ShapesSpec}[name]()
    assert SYNTHETIC_DEFAULTS[name] == {"train": spec.train, "val": spec.val, "size": spec.size}
