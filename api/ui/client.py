"""The dashboard's way to the data: the public v1 API, called in-process with the session's token.

Pages render what GET /v1/... answers, and forms submit what POST /v1/... accepts, so the dashboard
sees exactly what the token's tenant sees through the API and validates input the same way. The
calls go through the whole app (auth, middleware, error handlers) without a socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import Request


@dataclass
class ApiAnswer:
    """The status and decoded JSON body of one API call."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        """Return whether the call succeeded (2xx)."""
        return 200 <= self.status < 300

    @property
    def detail(self) -> str:
        """Return the API's error message."""
        if isinstance(self.body, dict) and self.body.get("detail"):
            return str(self.body["detail"])
        return f"the API answered {self.status}"


class ApiClient:
    """Call the v1 API of the app serving `request`, as the holder of `token`."""

    def __init__(self, request: Request, token: str) -> None:
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=request.app),
            base_url="http://trainforge.internal",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30.0,
        )

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def call(self, method: str, path: str, **kwargs: Any) -> ApiAnswer:
        """Send one request to the API and return its answer."""
        response = await self._client.request(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return ApiAnswer(response.status_code, body)
