"""The `trainforge` command against a real API (uvicorn subprocess), PostgreSQL or SQLite, and Redis.

The commands run in this process through `main(argv)`, as the console script calls it; one test runs
the real executable module to check the environment variables. No worker runs here: jobs stay queued.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from trainforge.cli import main

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
OVERRIDES = ["data=synthetic:classify", "epochs=2", "imgsz=32", "amp=false", "device=cpu"]


@pytest.fixture
def cli(live_api: str, token: str, capsys, monkeypatch):
    """Return run(*argv) -> (exit code, stdout, stderr) talking to the live API as a fresh tenant."""
    monkeypatch.delenv("TRAINFORGE_URL", raising=False)
    monkeypatch.delenv("TRAINFORGE_TOKEN", raising=False)

    def run(*argv: str, token_: str | None = token) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*argv, "--url", live_api, *(["--token", token_] if token_ else [])])
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err

    return run


def submit(cli, *argv: str) -> str:
    code, out, _ = cli("submit", "classify", *OVERRIDES, *argv)
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith("submitted job ") and first.endswith("(classify, queued)")
    return first.split()[2]


def test_submit_status_jobs(cli) -> None:
    tag = f"t-{uuid.uuid4().hex[:6]}"
    job_id = submit(cli, "--name", "run-1", "--tag", tag)

    code, out, _ = cli("status", job_id)
    assert code == 0
    lines = out.splitlines()
    fields = dict(line.split(None, 1) for line in lines)
    assert lines[0].split() == ["id", job_id]
    assert (fields["status"], fields["name"], fields["tags"]) == ("queued", "run-1", tag)
    # Values line up in one column after the longest key.
    assert len({len(line) - len(value) for line, value in zip(lines, fields.values(), strict=True)}) == 1

    code, out, _ = cli("status", job_id, "--json")
    job = json.loads(out)
    # The overrides arrived typed: ints, a bool, strings.
    assert job["overrides"] == {
        "data": "synthetic:classify",
        "epochs": 2,
        "imgsz": 32,
        "amp": False,
        "device": "cpu",
    }

    other = submit(cli)
    code, out, _ = cli("jobs")
    rows = out.splitlines()
    assert rows[0].split() == ["ID", "NAME", "TRAINER", "STATUS", "EPOCH", "CREATED", "TAGS"]
    assert [row.split()[0] for row in rows[1:]] == [other, job_id]
    code, out, _ = cli("jobs", "--tag", tag, "--json")
    assert [j["id"] for j in json.loads(out)] == [job_id]
    code, out, _ = cli("jobs", "--status", "running")
    assert (code, out) == (0, "no jobs match\n")


def test_cancel_then_events(cli) -> None:
    job_id = submit(cli)
    code, out, _ = cli("cancel", job_id)
    assert (code, out) == (0, f"job {job_id} cancelled\n")

    code, out, _ = cli("events", job_id)
    assert code == 0
    assert out.splitlines()[-1].split()[3] == "job.cancelled"
    code, followed, _ = cli("events", job_id, "--follow")  # ends at the terminal event
    assert (code, followed) == (0, out)
    code, out, _ = cli("events", job_id, "--json", "--after", "1")
    seqs = [json.loads(line)["seq"] for line in out.splitlines()]
    assert seqs and seqs[0] == 2

    code, _, err = cli("cancel", job_id)
    assert code == 1
    assert err == f"error: job {job_id} already ended (cancelled); there is nothing to cancel\n"
    code, _, err = cli("logs", job_id)
    assert code == 1
    assert f"use trainforge logs {job_id} --follow to wait for it" in err


def test_trainers(cli) -> None:
    code, out, _ = cli("trainers")
    assert code == 0
    assert any(line.split()[0] == "classify" for line in out.splitlines()[1:])
    code, out, _ = cli("trainers", "classify")
    assert any(line.split()[0] == "epochs" for line in out.splitlines()[1:])
    code, _, err = cli("trainers", "nope")
    assert code == 1
    assert "no trainer named 'nope'; this server has: classify" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["submit", "classify", "epoch=3"], "unknown override 'epoch'; did you mean 'epochs'?"),
        (["submit", "nope", "epochs=1"], "nope"),
        (["status", "0" * 32], "not found"),
        (["cancel", "0" * 32], "not found"),
        (["events", "0" * 32], "not found"),
    ],
)
def test_api_errors_print_the_message_and_exit_1(cli, argv: list[str], message: str) -> None:
    code, out, err = cli(*argv)
    assert code == 1
    assert out == ""
    assert err.startswith("error: ")
    assert message in err
    assert len(err.splitlines()) == 1


def test_bad_or_missing_token_says_how_to_get_one(cli) -> None:
    for token in ("tf_not-a-real-token-at-all", None):
        code, _, err = cli("jobs", token_=token)
        assert code == 1
        assert err.startswith("error: ")
        assert "trainforge token create --tenant NAME" in err


def test_token_create_then_use_it_from_the_environment(database_url: str, live_api: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRAINFORGE_DATABASE_URL": database_url}
    made = subprocess.run(
        [sys.executable, "-m", "trainforge.cli", "token", "create", "--tenant", "acme", "--name", "ci"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("tf_") and "\n" not in token
    assert "shown only this once" in made.stderr

    env.update(TRAINFORGE_URL=live_api, TRAINFORGE_TOKEN=token)
    listed = subprocess.run(
        [sys.executable, "-m", "trainforge.cli", "jobs", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []


def test_token_create_on_an_unmigrated_database_says_to_migrate(tmp_path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert main(["token", "create", "--tenant", "acme", "--database-url", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot create a token in {url}: no such table")
    assert err.rstrip().endswith("run `trainforge migrate` first")
