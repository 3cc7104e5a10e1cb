"""A minimal Server-Sent Events reader for tests (id / event / data fields, blank line ends a message)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

TERMINAL = {"job.succeeded", "job.failed", "job.cancelled"}


def stream_events(
    base_url: str, token: str, job_id: str, last_event_id: int | None = None, stop_after: int | None = None
) -> Iterator[dict[str, Any]]:
    """Yield the job's events from its SSE stream until the terminal one (or `stop_after` events)."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    count = 0
    with httpx.stream("GET", f"{base_url}/v1/jobs/{job_id}/events", headers=headers, timeout=60) as response:
        response.raise_for_status()
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line.startswith(":"):
                continue  # keep-alive comment
            if line:
                key, _, value = line.partition(":")
                fields[key] = value[1:] if value.startswith(" ") else value
                continue
            if "data" not in fields:
                fields = {}
                continue
            event = json.loads(fields["data"])
            assert fields.get("id") == str(event["seq"]) and fields.get("event") == event["type"]
            fields = {}
            yield event
            count += 1
            if event["type"] in TERMINAL or (stop_after is not None and count >= stop_after):
                return
