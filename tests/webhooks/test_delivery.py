"""One HTTP attempt against real receivers on loopback: outcomes, limits, redirects, pinned addresses."""

from __future__ import annotations

import json
import time

import pytest
from standardwebhooks.webhooks import Webhook

from tests.webhooks.receiver import Receiver, Reply
from trainforge.webhooks import signing
from trainforge.webhooks.delivery import AttemptOutcome, attempt
from trainforge.webhooks.ssrf import Policy

LOOPBACK = Policy.from_allow("127.0.0.0/8")
BODY = json.dumps(
    {"type": "on_fit_epoch_end", "timestamp": "now", "data": {"job_id": "j", "seq": 1}}
).encode()


def send(url: str, policy: Policy = LOOPBACK, **kwargs) -> tuple:
    secret = signing.generate_secret()
    return attempt(url, BODY, signing.build_headers([secret], "msg_1", BODY), policy, **kwargs), secret


def test_success_is_signed_and_verifiable_by_the_receiver() -> None:
    with Receiver() as rx:
        result, secret = send(rx.url + "/hook")
        (req,) = rx.wait_for(1)
    assert result.outcome is AttemptOutcome.SUCCESS and result.status_code == 200 and result.error is None
    assert result.address == "127.0.0.1" and result.latency_ms > 0
    assert Webhook(secret).verify(req.body, req.headers)["data"]["seq"] == 1
    assert req.headers["webhook-id"] == "msg_1" and req.path == "/hook"
    assert req.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("reply", "outcome", "error"),
    [
        (Reply(204, body=b""), AttemptOutcome.SUCCESS, None),
        (Reply(410), AttemptOutcome.DISABLE, "410 Gone"),
        (Reply(500), AttemptOutcome.RETRY, "HTTP 500"),
        (Reply(400), AttemptOutcome.RETRY, "HTTP 400"),
        (Reply(429, {"retry-after": "7"}), AttemptOutcome.RETRY, "Retry-After: 7"),
        (Reply(503, {"retry-after": "30"}), AttemptOutcome.RETRY, "Retry-After: 30"),
        (Reply(302, {"location": "/elsewhere"}), AttemptOutcome.RETRY, "redirect to http://127.0.0.1"),
    ],
)
def test_status_codes_are_classified(reply: Reply, outcome: AttemptOutcome, error: str | None) -> None:
    with Receiver(lambda _r, _n: reply) as rx:
        result, _ = send(rx.url)
    assert result.outcome is outcome
    assert result.status_code == reply.status
    assert (result.error is None) if error is None else (error in result.error)
    if reply.status in (429, 503):
        assert result.retry_after == reply.headers["retry-after"]


def test_redirects_are_not_followed_and_a_redirect_to_a_private_address_is_named() -> None:
    policy = Policy.from_allow("localhost")  # the receiver is reachable by name only
    target = "http://169.254.169.254/latest/meta-data/"
    with Receiver(lambda _r, _n: Reply(307, {"location": target})) as rx:
        result, _ = send(f"http://localhost:{rx.port}/hook", policy)
        assert len(rx.requests) == 1
    assert result.outcome is AttemptOutcome.RETRY
    assert "not followed" in result.error and "cloud metadata address" in result.error


def test_slow_receiver_times_out_within_the_total_limit() -> None:
    with Receiver(lambda _r, _n: Reply(delay_s=3)) as rx:
        start = time.monotonic()
        result, _ = send(rx.url, total_timeout_s=0.5)
    assert time.monotonic() - start < 2
    assert result.outcome is AttemptOutcome.RETRY and "timed out" in result.error


def test_dripping_body_cannot_outlast_the_total_limit() -> None:
    # Each chunk arrives well inside a per-read timeout; only an overall deadline stops this.
    with Receiver(lambda _r, _n: Reply(body=b"x", chunks=100, drip_s=0.05)) as rx:
        start = time.monotonic()
        result, _ = send(rx.url, total_timeout_s=0.6)
    assert time.monotonic() - start < 2
    assert result.outcome is AttemptOutcome.RETRY and "timed out" in result.error


def test_response_body_read_is_capped() -> None:
    chunk = b"y" * 65536
    with Receiver(lambda _r, _n: Reply(body=chunk, chunks=2000)) as rx:  # 128 MiB offered
        result, _ = send(rx.url)
        time.sleep(0.2)
        sent = rx.bytes_sent
    assert result.outcome is AttemptOutcome.SUCCESS
    assert len(result.response_excerpt) <= 2048
    assert sent < 32 * 2**20, "the client kept reading far past the cap"


def test_connection_refused_is_a_retry_with_the_reason() -> None:
    with Receiver() as rx:
        url = rx.url
    result, _ = send(url)
    assert result.outcome is AttemptOutcome.RETRY and "ConnectError" in result.error


def test_connect_time_check_refuses_a_rebound_name() -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])

    def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    from trainforge.webhooks.ssrf import check_url

    with Receiver() as rx:
        check_url(f"http://rebind.example:{rx.port}/", Policy(), rebinding)  # passes at submit
        result, _ = send(f"http://rebind.example:{rx.port}/", Policy(), resolver=rebinding)
        assert rx.requests == []
    assert result.outcome is AttemptOutcome.RETRY and "resolves to 127.0.0.1" in result.error


def test_connects_to_the_checked_address_but_keeps_the_host_header() -> None:
    with Receiver() as rx:
        result, _ = send(
            f"http://hooks.example:{rx.port}/in",
            Policy.from_allow("127.0.0.0/8"),
            resolver=lambda h, p: ["127.0.0.1"],
        )
        (req,) = rx.wait_for(1)
    assert result.outcome is AttemptOutcome.SUCCESS and result.address == "127.0.0.1"
    assert req.headers["host"] == f"hooks.example:{rx.port}"


def test_refused_literal_address_is_never_contacted() -> None:
    with Receiver() as rx:
        result, _ = send(rx.url, Policy())
        assert rx.requests == []
    assert result.outcome is AttemptOutcome.RETRY and "loopback" in result.error
