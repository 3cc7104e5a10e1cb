"""`trainforge submit classify ... --follow` to the end against a real API, Redis, worker and engine.

The module has its own redis-server: the shared test Redis database of tests/cli is also used by other
test runs, whose workers could otherwise take this module's run_job message.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from integration.workers import WorkerSet
from shared_helpers import ROOT, private_redis

from trainforge.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.slow]

_classify = pytest.importorskip("trainer_engine.models.classify")
if not hasattr(_classify, "ClassificationTrainer"):
    pytest.skip("the engine has no ClassificationTrainer yet", allow_module_level=True)

TINY = [
    "data=synthetic:classify?classes=2&train=16&val=8&size=16",
    "imgsz=16",
    "batch=8",
    "workers=0",
    "plots=false",
]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory, redis_server_binary: str) -> Iterator[str]:
    """Yield the URL of a redis-server of this module only."""
    with private_redis(redis_server_binary, tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="module")
def worker(service_env: dict[str, str], tmp_path_factory) -> Iterator[WorkerSet]:
    """Yield one running jobs worker on this module's database and Redis."""
    env = {**os.environ, **service_env, "PYTHONPATH": str(ROOT)}
    workers = WorkerSet(env, tmp_path_factory.mktemp("logs"))
    try:
        workers.start_jobs_worker().wait_ready()
        yield workers
    finally:
        workers.stop()


def test_submit_follow_prints_each_epoch_and_exits_0_when_the_job_succeeds(
    live_api: str, token: str, worker: WorkerSet, capsys, monkeypatch
) -> None:
    monkeypatch.delenv("TRAINFORGE_URL", raising=False)
    monkeypatch.delenv("TRAINFORGE_TOKEN", raising=False)
    capsys.readouterr()
    code = main(["submit", "classify", *TINY, "epochs=2", "--follow", "--url", live_api, "--token", token])
    out, err = capsys.readouterr()
    assert code == 0, out + err + worker.jobs_workers[0].log()[-3000:]
    lines = out.splitlines()
    job_id = lines[0].split()[2]
    assert lines[0] == f"submitted job {job_id} (classify, queued)"
    assert any(line.startswith(f"job {job_id} started") for line in lines)
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/2", "2/2"], out
    assert "100%" in epochs[-1]
    assert lines[-1].startswith(f"job {job_id} succeeded")
    assert lines[-1].endswith(
        f"best: /v1/jobs/{job_id}/artifacts/best.pt  last: /v1/jobs/{job_id}/artifacts/last.pt"
    )


def test_submit_follow_of_a_failing_trainer_exits_1_with_its_error(
    live_api: str, token: str, worker: WorkerSet, capsys, monkeypatch
) -> None:
    monkeypatch.delenv("TRAINFORGE_URL", raising=False)
    monkeypatch.delenv("TRAINFORGE_TOKEN", raising=False)
    capsys.readouterr()
    trainer = "tests.integration.trainers:ExplodingTrainer"
    argv = ["submit", trainer, *TINY, "epochs=2", "--follow"]
    code = main([*argv, "--url", live_api, "--token", token])
    out, _ = capsys.readouterr()
    assert code == 1
    assert out.splitlines()[-1].endswith("failed: ValueError: exploding on purpose at epoch 1")
