"""Health, readiness, metrics, OpenAPI, and the API process never importing torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_healthz_readyz_metrics_docs(api_client, make_job) -> None:
    make_job(status="running")
    assert api_client.get("/healthz").json() == {"status": "ok"}
    ready = api_client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "redis": "ok"}
    metrics = api_client.get("/metrics").text
    assert 'trainforge_jobs{status="running"} 1' in metrics
    assert api_client.get("/docs").status_code == 200
    paths = api_client.get("/openapi.json").json()["paths"]
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/events", "/v1/trainers"} <= set(paths)


def test_readyz_reports_a_dead_redis(settings_env, monkeypatch) -> None:
    from fastapi.testclient import TestClient

    from api.main import create_app
    from trainforge.settings import get_settings

    monkeypatch.setenv("TRAINFORGE_REDIS_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["database"] == "ok" and r.json()["checks"]["redis"].startswith("error")


def test_api_never_imports_torch() -> None:
    # The service may take only the engine's torch-free cfg package.
    code = (
        "import sys, api.main; assert 'torch' not in sys.modules, 'api imported torch'\n"
        "engine = sorted(m for m in sys.modules if m.split('.')[0] == 'trainer_engine'\n"
        "                and m != 'trainer_engine' and not m.startswith('trainer_engine.cfg'))\n"
        "assert not engine, engine; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
