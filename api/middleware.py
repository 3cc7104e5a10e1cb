"""ASGI middleware: cap request bodies, and read POSTed bodies as JSON whatever curl says they are."""

from __future__ import annotations

import json

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# `curl -d '{...}'` sends application/x-www-form-urlencoded; the API has no form endpoints, so such
# bodies (and bodies with no content type) are read as the JSON they are.
_JSON_FALLBACK = {b"", b"application/x-www-form-urlencoded"}


class BodyTooLarge(HTTPException):
    """The request body exceeded the limit while streaming in (an HTTPException, so handlers answer 413)."""

    def __init__(self, max_bytes: int, setting: str = "TRAINFORGE_MAX_BODY_BYTES") -> None:
        super().__init__(status_code=413, detail=too_large_message(max_bytes, setting))


def too_large_message(max_bytes: int, setting: str = "TRAINFORGE_MAX_BODY_BYTES") -> str:
    """Return the 413 message."""
    return f"request body too large; the limit is {max_bytes} bytes ({setting})"


class BodyLimitMiddleware:
    """Refuse bodies over `max_bytes` with 413, by Content-Length or while reading a chunked body.

    POSTs to `upload_paths` (raw file bodies, streamed to disk) have their own `upload_max_bytes`.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        upload_max_bytes: int | None = None,
        upload_paths: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_max_bytes = upload_max_bytes or max_bytes
        self.upload_paths = upload_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count streamed bytes."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["method"] == "POST" and scope["path"].rstrip("/") in self.upload_paths
        limit, setting = (
            (self.upload_max_bytes, "TRAINFORGE_UPLOAD_MAX_BYTES")
            if upload
            else (self.max_bytes, "TRAINFORGE_MAX_BODY_BYTES")
        )
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        # At most 20 digits before int(): a longer string is over any limit, and int() refuses very long ones.
        if length is not None and (not length.isdigit() or len(length) > 20 or int(length) > limit):
            await self._too_large(send, limit, setting)
            return
        if scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)  # no route reads a GET body: nothing to count
            return
        if (
            not upload
            and scope["method"] in ("POST", "PUT", "PATCH")
            and headers.get(b"content-type", b"").split(b";")[0].strip() in (_JSON_FALLBACK)
        ):
            scope = dict(scope)
            scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"content-type"] + [
                (b"content-type", b"application/json")
            ]
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, setting)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._too_large(send, limit, setting)

    async def _too_large(self, send: Send, limit: int, setting: str) -> None:
        """Send the 413 answer."""
        body = json.dumps({"detail": too_large_message(limit, setting)}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
