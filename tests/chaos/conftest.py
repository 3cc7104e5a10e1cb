"""Fixtures of the chaos suite: a migrated PostgreSQL template (once per session), a cluster per trial.

- `pg_template`: initdb + `trainforge migrate` once; each trial copies the folder (a fresh server in
  well under a second instead of an initdb and a migration).
- `cluster`: the trial's own PostgreSQL, Redis, API, a jobs worker and the service worker, started
  and killed with the trial; its logs are printed when the trial fails. `takeover_cluster` has two
  jobs workers; `cluster_factory` is one not started yet, for a trial that configures it.
- `receiver`: a real HTTP webhook receiver on loopback that answers 200.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from private_postgres import copy_template, find_bin, make_template

from tests.webhooks.receiver import Receiver

from .cluster import Cluster


@pytest.fixture(scope="session")
def chaos_dir() -> Iterator[Path]:
    """Yield a folder the PostgreSQL server user can reach (pytest's own temp folders are private)."""
    path = Path(tempfile.mkdtemp(prefix="trainforge-chaos-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_template(chaos_dir: Path) -> Path:
    """Return a migrated PostgreSQL data folder to copy per trial."""
    if find_bin("initdb") is None or find_bin("pg_ctl") is None:
        pytest.skip("the chaos suite needs PostgreSQL's initdb and pg_ctl (the postgresql server package)")
    return make_template(chaos_dir)


@pytest.fixture(scope="session")
def chaos_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the engine's data folder, shared by the trials (the synthetic set is generated once)."""
    return tmp_path_factory.mktemp("chaos-datasets")


@pytest.fixture
def cluster_factory(
    request: pytest.FixtureRequest,
    chaos_dir: Path,
    pg_template: Path,
    redis_server_binary: str,
    chaos_data_dir: Path,
) -> Iterator[Cluster]:
    """Yield the trial's cluster, not started: a trial may configure workers before `start()`."""
    workdir = Path(tempfile.mkdtemp(prefix="trial-", dir=chaos_dir))
    postgres = copy_template(pg_template, workdir / "pg")
    cluster = Cluster(workdir, postgres, redis_server_binary, chaos_data_dir)
    try:
        yield cluster
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            print(cluster.logs())
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def cluster(cluster_factory: Cluster) -> Cluster:
    """Return the trial's started cluster with one jobs worker."""
    cluster_factory.start()
    return cluster_factory


@pytest.fixture
def takeover_cluster(cluster_factory: Cluster) -> Cluster:
    """Return the trial's started cluster with two jobs workers (one can take the other's job over)."""
    cluster_factory.start(jobs_worker_env=[{}, {}])
    return cluster_factory


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """Yield a webhook receiver that accepts every request."""
    with Receiver() as rx:
        yield rx


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Keep each phase's report on the test item (the cluster prints its logs when the call failed)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
