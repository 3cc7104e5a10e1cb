"""Chaos trials that hurt a jobs worker: SIGKILL mid-epoch, SIGSTOP past the lease, a clock 5 minutes off."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from integration.workers import WorkerProcess

from tests.webhooks.receiver import Receiver
from trainforge.settings import Settings

from .checks import (
    assert_every_job_consistent,
    assert_trial,
    deliveries_of,
    events_of,
    job_row,
    new_hook,
    submit,
)
from .cluster import Cluster, wait_for

# Generous bounds: the trials share two cores with whatever else runs.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

EPOCHS = 6
# The settings hook that shifts a host's clock (plays a host whose clock is off).
CLOCK_OFFSET_FIELD = "clock_skew_s"
CLOCK_OFFSET_ENV = "TRAINFORGE_CLOCK_SKEW_S"
# The job columns a run writes (progress, outcome, lease).
ROW_WRITES = (
    "status", "attempt", "epoch", "epochs", "metrics", "progress", "best_path", "last_path",
    "lease_owner", "error", "stop_reason", "finished_at",
)  # fmt: skip


def owner_worker(cluster: Cluster, job_id: str) -> WorkerProcess:
    """Return the jobs worker whose supervisor holds the job's lease now."""
    owner = wait_for(lambda: job_row(cluster.db, job_id).lease_owner, 60, "a worker to take the job")
    return cluster.workers.worker_of_pid(int(owner.split(":")[1]))


def wait_epoch_started(cluster: Cluster, job_id: str, epoch: int) -> None:
    """Wait until `epoch` (1-based) is training: its start event is stored as its first batches run."""

    def started() -> bool:
        events = events_of(cluster.db, job_id)
        return any(e.type == "on_train_epoch_start" and e.data["epoch"] == epoch for e in events)

    wait_for(started, 120, f"epoch {epoch} to start")
    time.sleep(0.1)  # one batch into it


def resumed_from(cluster: Cluster, job_id: str) -> list[int]:
    """Return the epoch (1-based) each resumed attempt started at, from the engine's line in train.log."""
    log = (cluster.artifacts / job_id / "train.log").read_text(errors="replace")
    return [int(m) for m in re.findall(r"Resuming .* from epoch (\d+) to", log)]


def assert_resumed_after_first_attempt(cluster: Cluster, job_id: str) -> None:
    """Assert the second attempt resumed from last.pt instead of training from epoch 1 again."""
    events = events_of(cluster.db, job_id)
    retry = next(i for i, e in enumerate(events) if e.type == "job.retrying")
    done_before = max(e.data["epoch"] for e in events[:retry] if e.type == "on_fit_epoch_end")
    # It starts after the last epoch the first attempt finished, or one later when the fault fell
    # between writing last.pt and storing that epoch's events.
    (start,) = resumed_from(cluster, job_id)
    assert start in (done_before + 1, done_before + 2), (start, done_before)


def test_worker_sigkill_mid_epoch(takeover_cluster: Cluster, receiver: Receiver) -> None:
    cluster = takeover_cluster
    hook = new_hook(receiver.url + "/hook")
    job_id = submit(cluster, EPOCHS, hook)
    victim = owner_worker(cluster, job_id)
    wait_epoch_started(cluster, job_id, 3)
    cluster.kill_worker(victim)  # the machine is gone: main process, pool, fork server, child
    assert_trial(cluster, job_id, epochs=EPOCHS, hook=hook, receiver=receiver)
    assert job_row(cluster.db, job_id).attempt == 2
    assert_resumed_after_first_attempt(cluster, job_id)
    assert_every_job_consistent(cluster)


# --- SIGSTOP past the lease ----------------------------------------------------------------------


def training_child_pid(worker: WorkerProcess, job_id: str) -> int:
    """Return the pid of the job's training child, from the supervisor's log line."""
    pattern = rf"job {job_id}: attempt \d+, training child pid (\d+)"
    found = wait_for(lambda: re.findall(pattern, worker.log()), 30, "the training child to start")
    return int(found[-1])


def signal_pids(pids: list[int], sig: signal.Signals) -> None:
    """Send `sig` to every pid still there."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def alive(pid: int) -> bool:
    """Return whether `pid` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def stored_state(cluster: Cluster, job_id: str) -> dict[str, Any]:
    """Return everything a run writes to the database about the job."""
    job = job_row(cluster.db, job_id)
    return {
        "row": {key: getattr(job, key) for key in ROW_WRITES},
        "events": [(e.seq, e.type, e.data) for e in events_of(cluster.db, job_id)],
        "deliveries": sorted(d.id for d in deliveries_of(cluster.db, job_id)),
    }


def digest(path: Path) -> str:
    """Return the SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_worker_sigstop_past_the_lease_then_sigcont(takeover_cluster: Cluster, receiver: Receiver) -> None:
    cluster = takeover_cluster
    hook = new_hook(receiver.url + "/hook")
    job_id = submit(cluster, EPOCHS, hook)
    frozen = owner_worker(cluster, job_id)
    child = training_child_pid(frozen, job_id)
    wait_epoch_started(cluster, job_id, 3)
    pids = [frozen.pid, *frozen.descendants()]
    signal_pids(pids, signal.SIGSTOP)  # the whole worker hangs (a swapped-out or paused machine)
    try:
        # The lease expires, the reaper re-queues the job, the other worker resumes and finishes it.
        assert_trial(cluster, job_id, epochs=EPOCHS, hook=hook, receiver=receiver)
        assert job_row(cluster.db, job_id).attempt == 2
        assert_resumed_after_first_attempt(cluster, job_id)
        before = stored_state(cluster, job_id)
        checkpoint = digest(cluster.artifacts / job_id / "weights" / "last.pt")
        # The stale child wakes first, while its supervisor (which would kill it) still sleeps: it
        # trains on with attempt 1's lease, and every write it tries must be refused.
        signal_pids([child], signal.SIGCONT)
        time.sleep(2.0)
    finally:
        signal_pids(pids, signal.SIGCONT)
    wait_for(lambda: not alive(child), 20, "the stale supervisor to stop its child")
    time.sleep(1.0)  # anything the child queued has had time to land
    after = stored_state(cluster, job_id)
    assert after == before, f"the stale run wrote to the job:\nbefore {before}\nafter  {after}"
    assert_every_job_consistent(cluster)
    # Files are not fenced by the database; report whether the stale child overwrote the checkpoint.
    overwritten = digest(cluster.artifacts / job_id / "weights" / "last.pt") != checkpoint
    print(f"last.pt overwritten by the stale child: {overwritten}")


# --- a worker clock 5 minutes off ----------------------------------------------------------------


def test_worker_clocks_five_minutes_off(cluster_factory: Cluster, receiver: Receiver) -> None:
    assert CLOCK_OFFSET_FIELD in Settings.model_fields, f"no {CLOCK_OFFSET_ENV} settings hook"
    # One jobs worker 5 minutes behind, the other 5 minutes ahead; the API and the reaper are right.
    cluster = cluster_factory
    cluster.start(jobs_worker_env=[{CLOCK_OFFSET_ENV: "-300"}, {CLOCK_OFFSET_ENV: "300"}])
    hook = new_hook(receiver.url + "/hook")
    job_id = submit(cluster, EPOCHS, hook)
    first = owner_worker(cluster, job_id)
    wait_epoch_started(cluster, job_id, 3)
    # Alive, its lease held (a worker behind must not be reaped); killed, it is taken over within a
    # lease or two (a worker ahead must not keep a dead job for 5 minutes).
    assert job_row(cluster.db, job_id).attempt == 1
    cluster.kill_worker(first)
    killed_at = time.monotonic()
    wait_for(lambda: job_row(cluster.db, job_id).attempt == 2, 90, "the other worker to take the job over")
    assert time.monotonic() - killed_at < 90
    assert_trial(cluster, job_id, epochs=EPOCHS, hook=hook, receiver=receiver)
    assert job_row(cluster.db, job_id).attempt == 2
    assert_every_job_consistent(cluster)
