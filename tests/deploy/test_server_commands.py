"""`trainforge api | worker | migrate | up`: argument handling and the commands they turn into."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trainforge.cli import build_parser
from trainforge.cli.server import dev_environment, migrations_dir, redis_binary, worker_argv

ROOT = Path(__file__).resolve().parents[2]


def argv_for(*args: str) -> list[str]:
    """Return the celery command line `trainforge worker ARGS` would exec."""
    return worker_argv(build_parser().parse_args(["worker", *args]))


def test_worker_defaults_to_one_training_job_at_a_time():
    argv = argv_for()
    assert argv[1:6] == ["-m", "celery", "-A", "worker.celery_app", "worker"]
    assert argv[argv.index("--queues") + 1] == "jobs"
    assert argv[argv.index("--concurrency") + 1] == "1"
    assert argv[argv.index("--prefetch-multiplier") + 1] == "1"
    assert "--beat" not in argv


def test_worker_with_beat_and_schedule():
    argv = argv_for("--queues", "webhooks, default", "--beat", "--schedule", "/tmp/s", "--hostname", "svc@%h")
    assert argv[argv.index("--queues") + 1] == "webhooks,default"
    assert argv[argv.index("--schedule") + 1] == "/tmp/s"
    assert argv[argv.index("--hostname") + 1] == "svc@%h"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["worker", "--concurrency", "0"], "--concurrency must be 1 or more"),
        (["api", "--port", "http"], "invalid int value: 'http'"),
        (["serve"], "invalid choice: 'serve'"),
        (
            ["worker", "--queues", "jobs,webhooks"],
            "a worker runs either job queues or the service queues, not both: a training run would hold a "
            "slot that webhook deliveries and the reaper need; start one worker with --queues jobs and "
            "another with --queues webhooks,default",
        ),
        (
            ["worker", "--queues", "gpu-a100"],
            "queue 'gpu-a100' is neither a job queue (TRAINFORGE_JOB_QUEUES: jobs) nor a service queue "
            "(default, webhooks)",
        ),
    ],
)
def test_bad_arguments_say_what_is_wrong(args, message):
    result = subprocess.run(
        [sys.executable, "-m", "trainforge.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_dev_environment_defaults_and_overrides(tmp_path):
    env = dev_environment(tmp_path, {"TRAINFORGE_ARTIFACTS_DIR": "/elsewhere"})
    assert env["TRAINFORGE_DATABASE_URL"] == f"sqlite:///{tmp_path / 'trainforge.db'}"
    assert env["TRAINFORGE_ARTIFACTS_DIR"] == "/elsewhere"
    assert env["TRAINFORGE_ENV"] == "development"
    assert env["TRAINFORGE_DATA_ROOTS"] == str(tmp_path / "data")
    assert (env["TRAINFORGE_STORAGE_DIR"], env["TRAINFORGE_CACHE_DIR"]) == (
        str(tmp_path / "storage"),
        str(tmp_path / "cache"),
    )
    assert "127.0.0.0/8" in env["TRAINFORGE_WEBHOOK_ALLOW"]


def test_migrations_and_redis_are_found():
    assert (migrations_dir() / "env.py").is_file()
    assert Path(redis_binary()).is_file()


def test_migrate_command_upgrades_a_fresh_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    result = subprocess.run(
        [sys.executable, "-m", "trainforge.cli", "migrate"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "TRAINFORGE_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "database migrated to head" in result.stdout
    import sqlite3

    tables = {r[0] for r in sqlite3.connect(tmp_path / "db.sqlite").execute("select name from sqlite_master")}
    assert {"jobs", "job_events", "alembic_version"} <= tables
