"""Datasets end to end: the CLI uploads a folder, a real service worker validates it, a real jobs
worker trains on `dataset:NAME`, and a second job fine-tunes from the first one's checkpoint
(uploaded as a model) on the set it finds in the worker's cache."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from dataset_helpers import yolo_set

from .workers import ROOT

pytestmark = pytest.mark.integration

TINY_DETECT = {"imgsz": 32, "epochs": 1, "batch": 4, "workers": 0, "plots": False, "device": "cpu"}


@pytest.fixture
def token(make_token) -> str:
    return make_token()


@pytest.fixture
def api(live_api: str, token: str, workers):
    with httpx.Client(base_url=live_api, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        yield client


def cli(live_api: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real `trainforge` command against the live API."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "trainforge.cli", *args, "--url", live_api, "--token", token],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def wait_job(api: httpx.Client, job_id: str, timeout: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = api.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}"
        time.sleep(0.2)


def submit(api: httpx.Client, **overrides: object) -> str:
    r = api.post("/v1/jobs", json={"trainer": "detect", "overrides": {**TINY_DETECT, **overrides}})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_upload_a_folder_train_on_it_and_fine_tune_from_the_cache(
    api: httpx.Client, live_api: str, token: str, tmp_path: Path, service_env: dict[str, str]
) -> None:
    folder = yolo_set(tmp_path / "shapes", images=8)
    done = cli(live_api, token, "dataset", "upload", str(folder), "--name", "shapes-v1")
    assert done.returncode == 0, done.stderr
    assert "dataset:shapes-v1@1  (ready)" in done.stdout
    assert "task      detect (yolo)" in done.stdout
    listed = cli(live_api, token, "datasets")
    assert "shapes-v1@1" in listed.stdout and "train 8, val 8" in listed.stdout

    first = submit(api, data="dataset:shapes-v1")
    job = wait_job(api, first)
    assert job["status"] == "succeeded", job.get("error")
    log = api.get(f"/v1/jobs/{first}/logs").text
    assert "data: dataset shapes-v1@1" in log and "cache miss, unpacked in" in log

    cache = Path(service_env["TRAINFORGE_CACHE_DIR"])
    assert not list((cache / "sets").rglob("*.cache.json")), "the label cache stays out of the dataset"
    assert list((cache / "labels").glob("*.cache.json"))

    # The second job fine-tunes from the first one's best.pt, uploaded as a model, on the cached set.
    best = tmp_path / "best.pt"
    best.write_bytes(api.get(f"/v1/jobs/{first}/artifacts/best.pt").content)
    model = cli(live_api, token, "model", "upload", str(best), "--name", "start")
    assert model.returncode == 0, model.stderr
    assert "model:start@1  (ready)" in model.stdout
    tuned = submit(api, data="dataset:shapes-v1@1", model="model:start")
    job = wait_job(api, tuned)
    assert job["status"] == "succeeded", job.get("error")
    log = api.get(f"/v1/jobs/{tuned}/logs").text
    assert "data: dataset shapes-v1@1" in log and ": cache hit" in log
    assert "model: model start@1" in log

    deleted = cli(live_api, token, "dataset", "delete", "shapes-v1@1")
    assert deleted.returncode == 0, deleted.stderr  # every job using it has ended
    assert cli(live_api, token, "dataset", "show", "shapes-v1").returncode == 1


def test_an_invalid_upload_fails_the_cli_with_its_problems(
    live_api: str, token: str, tmp_path: Path, workers
) -> None:
    folder = yolo_set(tmp_path / "bad", images=4)
    (folder / "labels" / "train" / "img3.txt").write_text("1 0.5 0.5 0.2 0.2\n" * 3 + "7 0.5 0.5 0.2 0.2\n")
    done = cli(live_api, token, "dataset", "upload", str(folder), "--name", "bad")
    assert done.returncode == 1
    assert "dataset:bad@1  (invalid)" in done.stdout
    assert (
        "bad/labels/train/img3.txt:4: class 7 is not an integer in 0..1" not in done.stdout
    )  # relative to the set
    assert "labels/train/img3.txt:4: class 7 is not an integer in 0..1" in done.stdout
    missing = cli(live_api, token, "dataset", "upload", str(tmp_path / "nope"), "--name", "x")
    assert missing.returncode == 1 and "no such file or folder" in missing.stderr
