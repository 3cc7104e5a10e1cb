"""The product API plus a bare upload endpoint, served by one uvicorn process for bench/dataset_upload.py.

`PUT /bench/static-upload` writes the request body to a file and nothing else (no hashing, no database,
no thread hops), like a static file server's upload: the baseline `POST /v1/datasets` is compared with.
It sits in front of the product app, so the product's body limit and routes are untouched; it exists
only in this benchmark.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from api.main import create_app

BASELINE_PATH = "/bench/static-upload"
_product = create_app()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Serve the baseline upload on BASELINE_PATH and everything else with the product API."""
    if scope["type"] == "http" and scope["path"] == BASELINE_PATH and scope["method"] == "PUT":
        await _static_upload(receive, send)
    else:
        await _product(scope, receive, send)


async def _static_upload(receive: Any, send: Any) -> None:
    """Write the body to a new file in BENCH_STATIC_UPLOAD_DIR; answer 201 with its size."""
    folder = Path(os.environ["BENCH_STATIC_UPLOAD_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    size = 0
    with open(folder / uuid.uuid4().hex, "xb") as out:
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            out.write(body)
            size += len(body)
            more = message.get("more_body", False)
    payload = f'{{"size": {size}}}'.encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
