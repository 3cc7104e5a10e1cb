"""The client's own logic against an in-process transport: errors, pages, SSE parsing and resuming.

The end-to-end tests (tests/client/test_client_live.py) run it against the real API; these pin the
parts a real server cannot be made to do on cue, such as dropping a stream in the middle.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.client.bodies import NOW, job, links
from trainforge.client import SSEParser, TrainforgeClient, TrainforgeError, error_message


def sse(seq: int, kind: str = "on_fit_epoch_end", **data: object) -> bytes:
    event = {"id": f"e{seq}", "job_id": "j", "seq": seq, "type": kind, "created_at": NOW, "data": data}
    return f"id: {seq}\nevent: {kind}\ndata: {json.dumps(event)}\n\n".encode()


class CutStream(httpx.SyncByteStream):
    """A response body that sends some chunks, then fails like a dropped connection."""

    def __init__(self, chunks: list[bytes], cut: bool) -> None:
        self.chunks, self.cut = chunks, cut

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.cut:
            raise httpx.ReadError("connection reset by peer")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"detail": "job not found"}, "job not found"),
        ({"error": {"code": "unknown_override", "message": "unknown override 'epoch'"}},
         "unknown override 'epoch'"),
        ({"detail": [{"loc": ["body", "overrides", "epochs"], "msg": "must be an int"}]},
         "overrides.epochs: must be an int"),
        ({"detail": [{"loc": ["body"], "msg": "a"}, {"loc": ["query", "limit"], "msg": "b"}]}, "a; limit: b"),
        ({"message": "slow down"}, "slow down"),
        ("plain text\n", "plain text"),
        ({}, "Fallback"),
        (None, "Fallback"),
    ],
)  # fmt: skip
def test_error_message_finds_the_api_message(body: object, message: str) -> None:
    assert error_message(body, "Fallback") == message


def test_api_error_carries_status_and_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer tf_x"
        return httpx.Response(422, json={"detail": "unknown override 'epoch'; did you mean 'epochs'?"})

    client = TrainforgeClient("http://api", "tf_x", transport=httpx.MockTransport(handler))
    with pytest.raises(TrainforgeError) as info:
        client.submit("classify", {"epoch": 3})
    assert info.value.status == 422
    assert info.value.message == "unknown override 'epoch'; did you mean 'epochs'?"
    assert str(info.value) == "unknown override 'epoch'; did you mean 'epochs'? (HTTP 422)"


def test_submit_sends_the_documented_body_and_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json={"id": "j1", "status": "queued", "links": links("j1")})

    client = TrainforgeClient("http://api/", "t", transport=httpx.MockTransport(handler))
    job = client.submit(
        "classify", {"epochs": 3}, webhooks=["https://h/x"], tags=("a",), idempotency_key="k1"
    )
    assert job["id"] == "j1"
    assert seen[0].url == "http://api/v1/jobs"
    assert seen[0].headers["idempotency-key"] == "k1"
    assert json.loads(seen[0].content) == {
        "trainer": "classify",
        "overrides": {"epochs": 3},
        "webhooks": [{"url": "https://h/x"}],
        "tags": ["a"],
    }


def test_ids_are_quoted_into_one_path_segment() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        return httpx.Response(200, json=job("../trainers"))

    TrainforgeClient("http://api", "t", transport=httpx.MockTransport(handler)).status("../trainers")
    assert paths == ["/v1/jobs/..%2Ftrainers"]


def test_list_follows_the_cursor_until_the_limit() -> None:
    pages = {
        None: {"data": [job("3"), job("2")], "next_cursor": "c2"},
        "c2": {"data": [job("1")], "next_cursor": None},
    }
    queries: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        queries.append(dict(request.url.params))
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    client = TrainforgeClient("http://api", "t", transport=httpx.MockTransport(handler))
    assert [job["id"] for job in client.list(status="queued")] == ["3", "2", "1"]
    assert queries == [{"status": "queued"}, {"status": "queued", "cursor": "c2"}]
    assert [job["id"] for job in client.list(limit=2)] == ["3", "2"]


@pytest.mark.parametrize(
    "page",
    [{"items": [job("1")]}, {"data": [{"id": "1"}], "next_cursor": None}, {"data": [job("1")], "next": "c"}],
)
def test_a_page_of_another_shape_is_a_clear_error(page: dict[str, object]) -> None:
    client = TrainforgeClient(
        "http://api", "t", transport=httpx.MockTransport(lambda r: httpx.Response(200, json=page))
    )
    with pytest.raises(TrainforgeError, match="answered /v1/jobs with a body this client cannot read"):
        client.list()


def test_sse_parser_follows_the_whatwg_rules() -> None:
    parser = SSEParser()
    lines = [": keep-alive", "id: 4", "event: on_fit_epoch_end", 'data: {"a":', "data:1}", "retry: 3000", ""]
    results = [parser.feed(line) for line in lines]
    assert results[:-1] == [None] * 6
    assert results[-1] == {"event": "on_fit_epoch_end", "id": "4", "data": '{"a":\n1}'}
    assert parser.retry_ms == 3000
    assert parser.feed("") is None  # a blank line with no data dispatches nothing
    assert parser.feed("data: x") is None
    assert parser.feed("") == {"event": "message", "id": "4", "data": "x"}  # the id carries over


def test_stream_resumes_with_last_event_id_after_a_cut_and_stops_at_the_end(monkeypatch) -> None:
    monkeypatch.setattr("trainforge.client.time.sleep", lambda s: None)
    sent: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["accept"] == "text/event-stream"
        last = request.headers.get("last-event-id")
        sent.append(last)
        if last is None:  # first connection: two events, then the connection drops
            body = CutStream([sse(1, "job.started"), sse(2, epoch=1)], cut=True)
        else:  # the server replays what came after Last-Event-ID
            body = CutStream([sse(3, epoch=2), sse(4, "job.succeeded"), sse(5, "never.read")], cut=False)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    client = TrainforgeClient("http://api", "t", transport=httpx.MockTransport(handler))
    events = list(client.stream_events("j"))
    assert [event["seq"] for event in events] == [1, 2, 3, 4]
    assert sent == [None, "2"]


def test_stream_ends_when_the_server_closes_an_ended_job(monkeypatch) -> None:
    monkeypatch.setattr("trainforge.client.time.sleep", lambda s: None)
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path.endswith("/events"):
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, stream=CutStream([], False)
            )
        return httpx.Response(200, json=job("j", "failed"))

    client = TrainforgeClient("http://api", "t", transport=httpx.MockTransport(handler))
    assert list(client.stream_events("j", last_event_id=9)) == []
    assert calls == ["/v1/jobs/j/events", "/v1/jobs/j"]


def test_stream_raises_a_4xx_at_once() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": "job 'nope' not found"})

    client = TrainforgeClient("http://api", "t", transport=httpx.MockTransport(handler))
    with pytest.raises(TrainforgeError, match="job 'nope' not found") as info:
        next(client.stream_events("nope"))
    assert info.value.status == 404


def test_unreachable_server_is_a_clear_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    client = TrainforgeClient("http://127.0.0.1:9", "t", transport=httpx.MockTransport(handler))
    with pytest.raises(
        TrainforgeError, match=r"cannot reach the trainforge API at http://127.0.0.1:9"
    ) as info:
        client.trainers()
    assert info.value.status is None


def test_download_writes_atomically(tmp_path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("best.pt"):
            return httpx.Response(200, content=b"weights")
        if request.url.path.endswith("cut.pt"):
            return httpx.Response(200, stream=CutStream([b"half"], cut=True))
        return httpx.Response(404, json={"detail": "no artifact 'x.pt'"})

    client = TrainforgeClient("http://api", "t", transport=httpx.MockTransport(handler))
    assert client.download("j", "best.pt", tmp_path) == tmp_path / "best.pt"
    assert (tmp_path / "best.pt").read_bytes() == b"weights"
    assert client.download("j", "best.pt", tmp_path / "sub" / "model.pt").read_bytes() == b"weights"
    with pytest.raises(TrainforgeError, match="no artifact"):
        client.download("j", "x.pt", tmp_path)
    with pytest.raises(TrainforgeError, match="lost the connection"):
        client.download("j", "cut.pt", tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["best.pt", "sub"]
