"""A lost database: every route that needs it answers 503 with Retry-After, and the API recovers by itself.

The database is a PostgreSQL server of this test's own, stopped at once (as a crash would) under a
running app, then started again.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from private_postgres import Postgres, running_postgres

UNAVAILABLE = "the database is unavailable right now; retry in a few seconds"


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    """Yield a started PostgreSQL of this test's own."""
    with running_postgres() as server:
        yield server


def test_lost_database_is_503_with_retry_after_then_recovers(postgres, redis_url, tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from trainforge.auth import create_token, token_cache
    from trainforge.cli.server import migrate
    from trainforge.db.session import dispose_engines, session_scope
    from trainforge.settings import get_settings

    for key, value in {
        "TRAINFORGE_DATABASE_URL": postgres.url,
        "TRAINFORGE_REDIS_URL": redis_url,
        "TRAINFORGE_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        "TRAINFORGE_AUTH_CACHE_S": "0",  # every request reads its token: the lookup must 503 too
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    token_cache.clear()
    migrate("head")
    with session_scope() as session:
        headers = {"Authorization": f"Bearer {create_token(session, 'acme')}"}
    body = {"trainer": "classify", "overrides": {"epochs": 1}}
    try:
        with TestClient(create_app(get_settings()), raise_server_exceptions=False) as client:
            job = client.post("/v1/jobs", json=body, headers=headers)
            assert job.status_code == 202, job.text
            requests = [
                ("GET", "/v1/jobs", None),
                ("GET", f"/v1/jobs/{job.json()['id']}", None),
                ("POST", "/v1/jobs", body),
                ("GET", "/v1/webhooks", None),
            ]
            postgres.stop("immediate")
            for method, path, json in requests:
                lost = client.request(method, path, json=json, headers=headers)
                assert (lost.status_code, lost.json(), lost.headers.get("Retry-After")) == (
                    503,
                    {"detail": UNAVAILABLE},
                    "2",
                ), (method, path)
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("error")
            postgres.start()
            for method, path, json in requests:
                back = client.request(method, path, json=json, headers=headers)
                assert back.status_code in (200, 202), (method, path, back.text)
            listed = client.get("/v1/jobs", headers=headers).json()["data"]
            assert (
                len(listed) == 2
            )  # the job from before, and the POST after the return; none from the outage
    finally:
        dispose_engines()
        get_settings.cache_clear()
        token_cache.clear()
