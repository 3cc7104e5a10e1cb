"""GET /v1/jobs/{id}, the hot polling path: same view as the list, fresh data, PostgreSQL reconnects.

It takes the job from the same dependency as every other job route, so it authenticates alike.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text, update

from trainforge.db.models import Job


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def token(make_token) -> str:
    return make_token("reader")


def test_show_matches_the_list_and_reads_committed_changes_at_once(
    api_client, token, make_job, database_url
) -> None:
    job_id = make_job(
        tenant="reader",
        status="running",
        tags=["a", "b"],
        overrides={"epochs": 3},
        epoch=1,
        epochs=3,
        metrics={"metrics/accuracy_top1": 0.5, "val/loss": 1.25},
        progress={"batch": 2, "batches": 4},
    )
    shown = api_client.get(f"/v1/jobs/{job_id}", headers=auth(token)).json()
    listed = api_client.get("/v1/jobs", headers=auth(token)).json()["data"]
    assert [shown] == [j for j in listed if j["id"] == job_id]
    assert (shown["status"], shown["epoch"], shown["tags"]) == ("running", 1, ["a", "b"])
    assert shown["created_at"].endswith("Z") and shown["started_at"] is None

    # No caching: a change committed by a worker is visible on the next poll.
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(update(Job).where(Job.id == job_id).values(epoch=2, metrics={"val/loss": 0.5}))
    engine.dispose()
    shown = api_client.get(f"/v1/jobs/{job_id}", headers=auth(token)).json()
    assert (shown["epoch"], shown["metrics"]) == (2, {"val/loss": 0.5})


def test_another_tenants_job_and_bad_ids(api_client, token, make_job) -> None:
    other = make_job(tenant="someone-else")
    r = api_client.get(f"/v1/jobs/{other}", headers=auth(token))
    assert r.status_code == 404 and "not found" in r.json()["detail"]
    r = api_client.get("/v1/jobs/nope", headers=auth(token))
    assert r.status_code == 422 and "UUID" in r.json()["detail"]
    assert api_client.get(f"/v1/jobs/{other}").status_code == 401


def test_postgresql_connections_dropped_by_the_server_are_replaced(
    api_client, token, make_job, database_url
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite reads have no server connection")
    job_id = make_job(tenant="reader")
    for _ in range(3):  # open a few pooled connections
        assert api_client.get(f"/v1/jobs/{job_id}", headers=auth(token)).status_code == 200
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # what a database restart does to every open connection
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    admin.dispose()
    r = api_client.get(f"/v1/jobs/{job_id}", headers=auth(token))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer ", "bearer {token}", "BEARER  {token}", "Basic {token}", "{token}",
     "Bearer tf_not-a-real-token-at-all", "Bearer {token} extra"],
)  # fmt: skip
def test_the_hot_route_reads_tokens_as_the_other_routes(api_client, token, make_job, header) -> None:
    job_id = make_job(tenant="reader")
    headers = {} if header is None else {"Authorization": header.format(token=token)}
    shown = api_client.get(f"/v1/jobs/{job_id}", headers=headers)
    listed = api_client.get("/v1/jobs", headers=headers)
    assert shown.status_code == listed.status_code
    if shown.status_code != 200:
        assert shown.status_code == 401
        assert shown.json() == listed.json()
        assert shown.headers["www-authenticate"] == listed.headers["www-authenticate"]
