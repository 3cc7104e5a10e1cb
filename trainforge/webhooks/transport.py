"""An httpx transport that checks the address policy at connect time and connects to the checked address."""

from __future__ import annotations

import functools
import ssl
import time
import typing

import httpcore
import httpx

from trainforge.webhooks.ssrf import Policy, Resolver, UnsafeURLError, resolve_checked, system_resolver


def time_left(deadline: float | None, timeout: float | None, exc: type[Exception]) -> float | None:
    """Return the timeout cut to what is left before the deadline; raise exc once it has passed."""
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise exc("total time limit for the webhook attempt reached")
    return left if timeout is None else min(timeout, left)


@functools.lru_cache(maxsize=1)
def default_ssl_context() -> ssl.SSLContext:
    """Return this process's TLS context for webhooks (certificate checks on, proxies' CA variables off)."""
    # Loading the CA bundle costs ~20 ms of CPU: once per process, not once per attempt.
    return httpx.create_ssl_context(trust_env=False)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read and write is cut to what is left of one overall deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float | None) -> None:
        self._inner = inner
        self._deadline = deadline

    def _left(self, timeout: float | None, exc: type[Exception]) -> float | None:
        return time_left(self._deadline, timeout, exc)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        # server_hostname is the URL's host, so certificate checks and SNI use the name, not the pinned IP.
        tls = self._inner.start_tls(
            ssl_context, server_hostname, self._left(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(tls, self._deadline)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """Resolve and check the host when connecting, then connect to a checked address, never re-resolving."""

    def __init__(
        self, policy: Policy, resolver: Resolver = system_resolver, deadline: float | None = None
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._deadline = deadline
        self._inner = httpcore.SyncBackend()
        self.connected_to: str | None = None

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = resolve_checked(host, port, self._policy, self._resolver)
        error: Exception | None = None
        for address in addresses:
            left = time_left(self._deadline, timeout, httpcore.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(address, port, left, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
                continue
            self.connected_to = address
            return _DeadlineStream(stream, self._deadline)
        assert error is not None
        raise error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise UnsafeURLError("webhooks do not connect to unix sockets")


class PinnedTransport(httpx.BaseTransport):
    """An httpx transport whose connections pass the webhook address policy at connect time."""

    def __init__(
        self,
        policy: Policy,
        resolver: Resolver = system_resolver,
        deadline: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.backend = PinnedBackend(policy, resolver, deadline)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or default_ssl_context(),
            network_backend=self.backend,
            max_connections=1,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send one request through the pinned connection pool."""
        assert isinstance(request.stream, httpx.SyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        response = self._pool.handle_request(core_request)
        assert isinstance(response.stream, typing.Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


class _ResponseStream(httpx.SyncByteStream):
    """Adapt an httpcore response body to httpx."""

    def __init__(self, stream: typing.Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> typing.Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()
