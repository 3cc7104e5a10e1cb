"""The database goes away mid-run (a PostgreSQL of this module's own, stopped and started again).

A short outage: training goes on, its events wait in the spool and are written once, in order,
when the database is back. An outage past half the lease: the supervisor stops its child before
the lease can pass on, the next attempt writes what the first one spooled and resumes from last.pt.
"""

from __future__ import annotations

import threading
import time

import pytest
from private_postgres import Postgres, running_postgres
from shared_helpers import alembic_upgrade
from sqlalchemy import select

from trainforge.db.models import Job, JobEvent
from trainforge.db.session import dispose_engines, session_scope
from trainforge.rundir import RunDir
from worker import reaper
from worker.emitter import read_spool
from worker.supervisor import FENCED, Supervisor

TICK = "tests.worker.trainers:TickTrainer"


@pytest.fixture(scope="module")
def private_pg():
    """Yield a migrated PostgreSQL server that tests may stop and start."""
    with running_postgres() as pg:
        try:
            alembic_upgrade(pg.url)
            yield pg
        finally:
            dispose_engines()


@pytest.fixture(scope="module")
def database_url(private_pg: Postgres) -> str:
    """Run this module's tests on the private server."""
    return private_pg.url


@pytest.fixture
def lease_env(env, monkeypatch):
    """The worker test settings with a lease short enough to outlast in a test."""
    from trainforge.settings import get_settings

    def use(lease_timeout_s: float):
        monkeypatch.setenv("TRAINFORGE_LEASE_TIMEOUT_S", str(lease_timeout_s))
        get_settings.cache_clear()
        return get_settings()

    return use


def _events(job_id: str) -> list[JobEvent]:
    with session_scope() as s:
        return list(s.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq)))


def _fit_epochs(job_id: str) -> list[int]:
    return [e.data["epoch"] for e in _events(job_id) if e.type == "on_fit_epoch_end"]


def _wait(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _supervise(job_id: str) -> tuple[threading.Thread, list[str]]:
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(Supervisor(job_id).run()), daemon=True)
    thread.start()
    return thread, result


def test_a_short_outage_loses_no_event_and_training_goes_on(lease_env, make_job, private_pg):
    settings = lease_env(10.0)  # fenced after 5 s without a heartbeat: this outage is shorter
    job_id = make_job(trainer_ref=TICK, overrides={"epochs": 10, "batches": 2, "batch_s": 0.1})
    spool = RunDir.of(settings.artifacts_dir, job_id).spool(1)
    thread, result = _supervise(job_id)
    _wait(lambda: 2 in _fit_epochs(job_id))
    private_pg.stop("immediate")
    try:
        # Epochs keep ending while the database is away; their events wait in order in the spool.
        _wait(
            lambda: len({i.data.get("epoch") for i in read_spool(spool) if i.type == "on_fit_epoch_end"}) >= 2
        )
        spooled = [i.data["epoch"] for i in read_spool(spool) if i.type == "on_fit_epoch_end"]
        assert spooled == sorted(spooled) and spooled[0] >= 3
    finally:
        private_pg.start()
    thread.join(60)
    assert result == ["succeeded"]
    assert _fit_epochs(job_id) == list(range(1, 11))
    seqs = [e.seq for e in _events(job_id)]
    assert seqs == list(range(1, len(seqs) + 1))
    with session_scope() as s:
        assert s.get(Job, job_id).attempt == 1
    assert not spool.exists()


def test_an_outage_past_half_the_lease_stops_the_child_and_the_next_attempt_writes_its_spool(
    lease_env, make_job, private_pg
):
    settings = lease_env(3.0)  # fenced after 1.5 s, killed by 2.25 s
    job_id = make_job(trainer_ref=TICK, overrides={"epochs": 20, "batches": 2, "batch_s": 0.1})
    run = RunDir.of(settings.artifacts_dir, job_id)
    thread, result = _supervise(job_id)
    _wait(lambda: 2 in _fit_epochs(job_id))
    private_pg.stop("immediate")
    try:
        thread.join(20)
        # The child is gone and nothing was recorded: the database never came back for this run.
        assert result == [FENCED]
        left = [i.data["epoch"] for i in read_spool(run.spool(1)) if i.type == "on_fit_epoch_end"]
        assert left and left == sorted(left)
    finally:
        private_pg.start()
    _wait(lambda: any(r.job_id == job_id for r in reaper.reap(settings)), timeout=30)
    assert Supervisor(job_id).run() == "succeeded"
    with session_scope() as s:
        assert s.get(Job, job_id).attempt == 2
    assert _fit_epochs(job_id) == list(range(1, 21))
    assert max(left) in _fit_epochs(job_id)
    # The second attempt resumed after the checkpoint: the spooled epochs were not trained again.
    starts = {e.dedupe_key: e.data["first_epoch"] for e in _events(job_id) if e.type == "on_train_start"}
    assert starts["on_train_start:attempt-1"] == 1
    assert starts["on_train_start:attempt-2"] >= max(left) + 1
    assert run.spools() == {}
