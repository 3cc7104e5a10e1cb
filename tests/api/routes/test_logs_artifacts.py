"""Logs (whole and followed) and artifacts (list and download) of a job."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from trainforge.auth import resolve_token
from trainforge.db.session import session_scope
from trainforge.db.types import utcnow
from trainforge.jobs.state import transition


@pytest.fixture
def job(make_token, make_job, settings_env):
    token = make_token()
    with session_scope() as s:
        tenant = resolve_token(s, token).tenant_name
    job_id = make_job(tenant=tenant, status="running", started_at=utcnow())
    folder = Path(settings_env.artifacts_dir) / job_id
    return {"Authorization": f"Bearer {token}"}, job_id, folder


def _write_run(folder: Path) -> None:
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "best.pt").write_bytes(b"best-weights")
    (folder / "weights" / "last.pt").write_bytes(b"last-weights")
    (folder / "results.csv").write_text("epoch,loss\n1,0.5\n")
    (folder / "train.log").write_text("epoch 1/1\n")


def test_list_and_download(api_client, job) -> None:
    headers, job_id, folder = job
    assert api_client.get(f"/v1/jobs/{job_id}/artifacts", headers=headers).json() == {"data": []}
    assert api_client.get(f"/v1/jobs/{job_id}", headers=headers).json()["links"]["best"] is None
    _write_run(folder)
    (folder.parent / "secret.txt").write_text("not yours")
    (folder / "link.txt").symlink_to(folder.parent / "secret.txt")
    (folder / ".runspec.json").write_text('{"lease_owner": "host:1:abc"}')  # the service's own files
    (folder / ".outcome.json").write_text("{}")
    (folder / "weights" / ".last.pt.tmp-7").write_bytes(b"half-written")
    listed = api_client.get(f"/v1/jobs/{job_id}/artifacts", headers=headers).json()["data"]
    assert {a["name"] for a in listed} == {"best.pt", "last.pt", "results.csv", "train.log"}
    best = api_client.get(f"/v1/jobs/{job_id}/artifacts/best.pt", headers=headers)
    assert best.status_code == 200 and best.content == b"best-weights"
    assert "best.pt" in best.headers["content-disposition"]
    csv = api_client.get(f"/v1/jobs/{job_id}/artifacts/results.csv", headers=headers)
    assert csv.text.startswith("epoch,loss") and csv.headers["content-type"].startswith("text/csv")
    assert (
        api_client.get(f"/v1/jobs/{job_id}/artifacts/weights/last.pt", headers=headers).content
        == b"last-weights"
    )
    links = api_client.get(f"/v1/jobs/{job_id}", headers=headers).json()["links"]
    assert links["best"] == f"/v1/jobs/{job_id}/artifacts/best.pt"
    hidden = (".runspec.json", ".outcome.json", "weights/.last.pt.tmp-7")
    for bad in ("link.txt", "..%2Fsecret.txt", "weights%2F..%2F..%2Fsecret.txt", "nope.pt", *hidden):
        r = api_client.get(f"/v1/jobs/{job_id}/artifacts/{bad}", headers=headers)
        assert r.status_code == 404, bad
        assert "available: " in r.json()["detail"] and "best.pt" in r.json()["detail"]


def test_logs_whole_and_tail(api_client, job) -> None:
    headers, job_id, folder = job
    r = api_client.get(f"/v1/jobs/{job_id}/logs", headers=headers)
    assert r.status_code == 404 and "no log yet" in r.json()["detail"]
    folder.mkdir(parents=True)
    (folder / "train.log").write_text("line 1\nline 2\n")
    assert api_client.get(f"/v1/jobs/{job_id}/logs", headers=headers).text == "line 1\nline 2\n"
    assert api_client.get(f"/v1/jobs/{job_id}/logs?tail=7", headers=headers).text == "line 2\n"


def test_logs_follow_until_the_job_ends(api_client, job) -> None:
    headers, job_id, folder = job
    folder.mkdir(parents=True)
    log = folder / "train.log"
    log.write_text("start\n")

    def train() -> None:
        for i in range(3):
            time.sleep(0.3)
            with log.open("a") as fh:
                fh.write(f"epoch {i + 1}\n")
        with session_scope() as s:
            transition(s, job_id, "succeeded")

    writer = threading.Thread(target=train)
    writer.start()
    start = time.monotonic()
    with api_client.stream("GET", f"/v1/jobs/{job_id}/logs?follow=true", headers=headers) as r:
        body = b"".join(r.iter_bytes()).decode()
    writer.join()
    assert body == "start\nepoch 1\nepoch 2\nepoch 3\n"
    assert time.monotonic() - start < 10
