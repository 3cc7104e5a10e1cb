"""Response bodies shaped as the API sends them (its schemas), for tests that stand in for a server."""

from __future__ import annotations

NOW = "2026-01-02T03:04:05Z"


def links(job_id: str) -> dict[str, str]:
    base = f"/v1/jobs/{job_id}"
    return {"self": base, "events": f"{base}/events", "logs": f"{base}/logs",
            "artifacts": f"{base}/artifacts", "cancel": f"{base}/cancel"}  # fmt: skip


def job(job_id: str, status: str = "queued") -> dict[str, object]:
    """A JobPublic body, as the API sends it."""
    return {
        "id": job_id, "name": None, "trainer": "classify", "trainer_ref": "m:C", "status": status,
        "overrides": {}, "resources": {}, "priority": 0, "tags": [], "task": "classify", "webhooks": [],
        "epoch": None, "epochs": None, "progress": None, "metrics": None, "error": None,
        "stop_reason": None, "attempt": 0, "created_at": NOW, "started_at": None, "finished_at": None,
        "links": {**links(job_id), "best": None, "last": None},
    }  # fmt: skip


def event(seq: int, kind: str, data: dict[str, object], job_id: str = "J") -> dict[str, object]:
    """An EventPublic body."""
    return {"id": f"e{seq}", "job_id": job_id, "seq": seq, "type": kind, "created_at": NOW, "data": data}
