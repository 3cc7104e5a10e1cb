"""One webhook HTTP attempt: POST the signed body to a checked address and classify what came back."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import urljoin

import httpcore
import httpx

from trainforge.webhooks.ssrf import Policy, Resolver, UnsafeURLError, check_url, system_resolver
from trainforge.webhooks.transport import PinnedTransport

CONNECT_TIMEOUT_S = 5.0
TOTAL_TIMEOUT_S = 15.0
MAX_RESPONSE_BYTES = 64 * 1024
# How much of the response body is kept on the attempt row for people debugging their receiver.
EXCERPT_CHARS = 2048
USER_AGENT = "trainforge-webhooks/1"


class AttemptOutcome(StrEnum):
    """What one HTTP attempt means for its delivery (not a run's outcome: that is worker.outcome)."""

    SUCCESS = "success"  # 2xx: delivered
    RETRY = "retry"  # anything else: try again on the schedule (or after Retry-After)
    DISABLE = "disable"  # 410 Gone: the receiver asks never to be called again


@dataclass(frozen=True)
class AttemptResult:
    """The result of one attempt, as it is recorded on the attempt row."""

    outcome: AttemptOutcome
    status_code: int | None
    latency_ms: float
    error: str | None = None
    response_excerpt: str | None = None
    retry_after: str | None = None  # the raw Retry-After header of a 429/503
    address: str | None = None  # the address actually connected to


def attempt(
    url: str,
    body: bytes,
    headers: dict[str, str],
    policy: Policy,
    *,
    resolver: Resolver = system_resolver,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    total_timeout_s: float = TOTAL_TIMEOUT_S,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
) -> AttemptResult:
    """POST one signed body to url (no redirects, bounded time and response size) and classify the answer."""
    start = time.monotonic()
    transport = PinnedTransport(policy, resolver, deadline=start + total_timeout_s)
    timeout = httpx.Timeout(total_timeout_s, connect=connect_timeout_s)
    # trust_env=False: proxy variables must not route webhooks around the address checks.
    sent_headers = {"user-agent": USER_AGENT, "accept-encoding": "identity", **headers}
    try:
        with (
            httpx.Client(
                transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
            ) as client,
            client.stream("POST", url, content=body, headers=sent_headers) as response,
        ):
            excerpt = _read_capped(response, max_response_bytes)
            return _classify(response, excerpt, _ms(start), transport.backend.connected_to, policy, resolver)
    except UnsafeURLError as exc:
        return AttemptResult(AttemptOutcome.RETRY, None, _ms(start), error=str(exc))
    except (httpx.TimeoutException, httpcore.TimeoutException) as exc:
        what = "connecting" if isinstance(exc, httpx.ConnectTimeout | httpcore.ConnectTimeout) else "waiting"
        limit = connect_timeout_s if what == "connecting" else total_timeout_s
        return AttemptResult(
            AttemptOutcome.RETRY, None, _ms(start), error=f"timed out {what} (limit {limit:g} s)"
        )
    except (httpx.HTTPError, httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
        return AttemptResult(
            AttemptOutcome.RETRY, None, _ms(start), error=f"{type(exc).__name__}: {exc or 'no detail'}"
        )


def _read_capped(response: httpx.Response, limit: int) -> str:
    """Read at most `limit` bytes of the body (a receiver must not make us buffer megabytes)."""
    data = bytearray()
    for chunk in response.iter_raw():
        data += chunk
        if len(data) >= limit:
            break
    return bytes(data[:limit]).decode("utf-8", errors="replace")[:EXCERPT_CHARS]


def _classify(
    response: httpx.Response,
    excerpt: str,
    latency_ms: float,
    address: str | None,
    policy: Policy,
    resolver: Resolver,
) -> AttemptResult:
    """Turn a status code into an outcome, with an error message for everything but success."""
    code = response.status_code
    if 200 <= code < 300:
        return AttemptResult(AttemptOutcome.SUCCESS, code, latency_ms, None, excerpt, address=address)
    if code == 410:
        error = "410 Gone: the receiver asked to stop; the endpoint is disabled"
        return AttemptResult(AttemptOutcome.DISABLE, code, latency_ms, error, excerpt, address=address)
    if 300 <= code < 400:
        error = _redirect_error(code, response.headers.get("location"), str(response.url), policy, resolver)
        return AttemptResult(AttemptOutcome.RETRY, code, latency_ms, error, excerpt, address=address)
    retry_after = response.headers.get("retry-after") if code in (429, 503) else None
    error = f"HTTP {code}" + (f" (Retry-After: {retry_after})" if retry_after else "")
    return AttemptResult(AttemptOutcome.RETRY, code, latency_ms, error, excerpt, retry_after, address)


def _redirect_error(code: int, location: str | None, url: str, policy: Policy, resolver: Resolver) -> str:
    """Explain a refused redirect, and say so when its target would not pass the address policy either."""
    if not location:
        return f"HTTP {code} redirect without a Location; redirects are not followed: answer 2xx directly"
    target = urljoin(url, location)
    message = f"HTTP {code} redirect to {target} not followed; point the webhook at the final URL"
    try:
        check_url(target, policy, resolver)
    except UnsafeURLError as exc:
        message += f" ({exc})"
    return message


def _ms(start: float) -> float:
    """Return milliseconds since a monotonic start."""
    return round((time.monotonic() - start) * 1000.0, 2)


def utcnow() -> datetime:
    """Return the current aware UTC time."""
    return datetime.now(UTC)
