"""`trainforge up` (what `make run` runs): starts everything, runs a job, stops cleanly on SIGINT.

Ctrl-C arrives while a second job trains: its worker stops the training child at a batch boundary
(last.pt saved), hands the job back to the queue, and every process of the run exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from shared_helpers import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def processes_mentioning(text: str) -> list[int]:
    """Return the pids whose command line, environment or working folder contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
                blob += os.readlink(entry / "cwd").encode()  # redis-server renames its command line
            except OSError:
                continue
            if text.encode() in blob:
                found.append(int(entry.name))
    return found


TICK = {"trainer": "tests.worker.trainers:TickTrainer", "task": "classify"}


def call(base: str, token: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Send one API request and return the decoded JSON answer."""
    request = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{method} {path}: {exc.code} {exc.read().decode()}") from None


def wait_status(base: str, token: str, job_id: str, statuses: set[str], timeout: float = 120.0) -> dict:
    """Poll the job until its status is one of `statuses`."""
    deadline = time.monotonic() + timeout
    while (job := call(base, token, "GET", f"/v1/jobs/{job_id}"))["status"] not in statuses:
        assert time.monotonic() < deadline, f"job {job_id} still {job['status']}"
        time.sleep(0.2)
    return job


def test_up_runs_a_job_and_stops_everything_on_ctrl_c(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINFORGE_")}
    env.update(
        PYTHONPATH=str(ROOT),
        TRAINER_ENGINE_DATA_DIR=str(tmp_path / "datasets"),
        TRAINFORGE_TRAINER_MODULES="tests.",
    )
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trainforge.cli", "up", "--port", str(port), "--state-dir",
             str(tmp_path / "state")],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 90
            while "Press Ctrl-C" not in log.read_text():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            base = f"http://127.0.0.1:{port}"
            with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
                assert response.status == 200
            token = (tmp_path / "state" / "token").read_text().strip()
            assert f"token:  {token}" in log.read_text()
            assert (tmp_path / "state" / "trainforge.db").is_file()
            sandbox = (tmp_path / "state" / "data").resolve()
            assert sandbox.is_dir() and f"data:   {sandbox}" in log.read_text()  # the one data root

            quick = call(base, token, "POST", "/v1/jobs", {**TICK, "overrides": {"epochs": 2}})
            assert wait_status(base, token, quick["id"], {"succeeded", "failed"})["status"] == "succeeded"
            long = {**TICK, "overrides": {"epochs": 1000}}  # ~0.1 s an epoch: still running at Ctrl-C
            running = call(base, token, "POST", "/v1/jobs", long)["id"]
            deadline = time.monotonic() + 120
            while not call(base, token, "GET", f"/v1/jobs/{running}")["epoch"]:  # in its second epoch
                assert time.monotonic() < deadline, "the long job never finished an epoch"
                time.sleep(0.2)
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
            assert proc.wait(90) == 0, log.read_text()
        finally:
            if proc.poll() is None:  # the test failed midway: stop it the way a person would
                os.killpg(proc.pid, signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(90)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            # Its children run in sessions of their own: never leave one behind, whatever happened.
            leftovers = processes_mentioning(str(tmp_path / "state"))
            for pid in leftovers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    # Nothing of it is left running: API, workers, fork servers, redis (they all carry the state dir).
    assert leftovers == []
    # The interrupted job went back to the queue with its checkpoint, for the next `trainforge up`.
    with contextlib.closing(sqlite3.connect(tmp_path / "state" / "trainforge.db")) as db:
        (status,) = db.execute("SELECT status FROM jobs WHERE id = ?", (running,)).fetchone()
        types = [
            t for (t,) in db.execute("SELECT type FROM job_events WHERE job_id = ? ORDER BY seq", (running,))
        ]
    assert status == "retrying" and types[-1] == "job.retrying", (status, types)
    assert (tmp_path / "state" / "artifacts" / running / "weights" / "last.pt").is_file()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
