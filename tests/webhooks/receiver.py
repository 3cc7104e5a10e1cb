"""A real HTTP webhook receiver on loopback whose answers a test scripts, recording every request."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Reply:
    """What the receiver answers: a status, headers, a body, and optional slowness."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay_s: float = 0.0  # before sending anything
    drip_s: float = 0.0  # between body chunks
    chunks: int = 1  # the body is sent this many times (big or slow bodies)


Script = Callable[[Received, int], Reply]


class Receiver:
    """A threaded HTTP server; `script(request, n)` decides the reply to the n-th request (0-based)."""

    def __init__(self, script: Script | None = None, port: int = 0) -> None:
        # A fixed `port` lets a test point a webhook at a receiver that is not up yet.
        self.script: Script = script or (lambda _req, _n: Reply())
        self.requests: list[Received] = []
        self.bytes_sent = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """Return the base URL of the receiver."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def port(self) -> int:
        """Return the receiver's port."""
        return int(self.server.server_address[1])

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until at least `count` requests arrived; return them all."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"receiver got {len(self.requests)} requests, expected {count}")
                self._arrived.wait(left)
            return list(self.requests)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                req = Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                    time.time(),
                )
                with receiver._arrived:
                    n = len(receiver.requests)
                    receiver.requests.append(req)
                    receiver._arrived.notify_all()
                reply = receiver.script(req, n)
                time.sleep(reply.delay_s)
                try:
                    self.send_response(reply.status)
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.send_header("content-length", str(len(reply.body) * reply.chunks))
                    self.end_headers()
                    for _ in range(reply.chunks):
                        self.wfile.write(reply.body)
                        receiver.bytes_sent += len(reply.body)
                        time.sleep(reply.drip_s)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        return Handler
