"""`submit --follow` rendering: epoch lines, the end line and exit code, and the live bar on a terminal."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.client.bodies import event, job
from trainforge.cli.follow import CLEAR_LINE, artifact_link, follow_job, live_line
from trainforge.client import TrainforgeClient


def sse_body(events: list[dict], pause_s: float = 0.0) -> httpx.SyncByteStream:
    class Body(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            for seq, item in enumerate(events, 1):
                time.sleep(pause_s)
                body = event(seq, item["type"], item.get("data", {}))
                yield f"id: {seq}\ndata: {json.dumps(body)}\n\n".encode()

    return Body()


def epoch(k: int, n: int, acc: float) -> dict:
    data = {
        "epoch": k,
        "epochs": n,
        "losses": {"train/loss": 1 / k},
        "metrics": {"metrics/accuracy_top1": acc},
    }
    return {"type": "on_fit_epoch_end", "data": {**data, "fitness": acc, "best_fitness": acc}}


def make_client(events: list[dict], final: str, pause_s: float = 0.0) -> TrainforgeClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, stream=sse_body(events, pause_s)
            )
        if pause_s:  # while the stream runs, the job is mid-epoch
            progress = {"epoch": 2, "batch": 3, "batches": 10}
            return httpx.Response(
                200, json={**job("J", "running"), "epoch": 1, "epochs": 2, "progress": progress}
            )
        return httpx.Response(200, json=job("J", final))

    return TrainforgeClient("http://api", "t", transport=httpx.MockTransport(handler))


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_follow_prints_each_epoch_and_exits_0_on_success() -> None:
    events = [
        {"type": "job.queued", "data": {}},
        {"type": "job.started", "data": {}},
        {"type": "on_train_epoch_end", "data": {"epoch": 1}},
        epoch(1, 2, 0.5),
        {"type": "on_model_save", "data": {}},
        epoch(2, 2, 0.75),
        {"type": "job.succeeded", "data": {"best": "/v1/jobs/J/artifacts/best.pt"}},
    ]
    out = io.StringIO()
    assert follow_job(make_client(events, "succeeded"), "J", out=out) == 0
    assert out.getvalue().splitlines() == [
        "job J started",
        "epoch 1/2 [############............]  50%  loss 1  accuracy_top1 0.5  *best",
        "epoch 2/2 [########################] 100%  loss 0.5  accuracy_top1 0.75  *best",
        "job J succeeded  best: /v1/jobs/J/artifacts/best.pt",
    ]


def test_follow_a_failed_job_prints_its_error_and_exits_1() -> None:
    events = [
        {"type": "job.started", "data": {}},
        {"type": "job.failed", "data": {"error": "ValueError: bad"}},
    ]
    out = io.StringIO()
    assert follow_job(make_client(events, "failed"), "J", out=out) == 1
    assert out.getvalue().splitlines()[-1] == "job J failed: ValueError: bad"


def test_follow_json_prints_every_event() -> None:
    events = [{"type": "job.started", "data": {}}, {"type": "job.cancelled", "data": {}}]
    out = io.StringIO()
    assert follow_job(make_client(events, "cancelled"), "J", json_lines=True, out=out) == 1
    assert [json.loads(line)["type"] for line in out.getvalue().splitlines()] == [
        "job.started",
        "job.cancelled",
    ]


def test_on_a_terminal_a_live_bar_shows_the_batch_within_the_epoch() -> None:
    events = [{"type": "job.started", "data": {}}, epoch(1, 2, 0.5), {"type": "job.succeeded", "data": {}}]
    out = Terminal()
    follow_job(make_client(events, "succeeded", pause_s=0.15), "J", out=out, poll_s=0.02)
    text = out.getvalue()
    assert f"{CLEAR_LINE}epoch 2/2 batch 3/10 [" in text
    assert "epoch 1/2 [############............]  50%" in text
    assert text.endswith(CLEAR_LINE)  # the live line is wiped at the end


def test_live_line() -> None:
    job = {"status": "running", "epoch": 1, "epochs": 4, "progress": {"batch": 5, "batches": 10}}
    assert live_line(job) == "epoch 2/4 batch 5/10 [#########...............]  38%"
    job["progress"]["losses"] = {"train/loss": 0.123456}
    assert live_line(job) == "epoch 2/4 batch 5/10 [#########...............]  38%  loss 0.1235"
    assert live_line({**job, "status": "queued"}) is None
    assert live_line({"status": "running", "epoch": None, "epochs": None}) is None


@pytest.mark.parametrize(
    ("name", "path", "link"),
    [
        ("best", "weights/best.pt", "/v1/jobs/J/artifacts/best.pt"),
        ("last", "weights/last.pt", "/v1/jobs/J/artifacts/last.pt"),
        ("best", "ckpt/epoch3.pt", "/v1/jobs/J/artifacts/ckpt/epoch3.pt"),
        ("best", "/v1/jobs/J/artifacts/best.pt", "/v1/jobs/J/artifacts/best.pt"),
        ("last", "/abs/path/last.pt", "/v1/jobs/J/artifacts/last.pt"),
    ],
)
def test_checkpoint_paths_are_shown_as_download_links(name: str, path: str, link: str) -> None:
    assert artifact_link("J", name, path) == link
