"""GET /v1/jobs/{id}/events as JSON pages: the seq cursor, the ?type= filter, and its bad values."""

from __future__ import annotations

import pytest

from trainforge import events
from trainforge.db.session import session_scope


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def token(make_token) -> str:
    return make_token("reader")


@pytest.fixture
def job_with_epochs(make_job) -> str:
    """A job with 5 epochs of events, three types per epoch, then its end."""
    job_id = make_job(tenant="reader", status="succeeded")
    with session_scope() as s:
        for epoch in range(1, 6):
            for kind in ("on_train_epoch_start", "on_model_save", "on_fit_epoch_end"):
                events.emit(s, job_id, kind, {"epoch": epoch}, f"{kind}:{epoch}")
        events.emit(s, job_id, "job.succeeded", {}, "job.succeeded")
    return job_id


def test_type_filter_pages_by_seq(api_client, token, job_with_epochs) -> None:
    url = f"/v1/jobs/{job_with_epochs}/events"
    params: dict[str, object] = {"type": ["on_fit_epoch_end", "job.succeeded"], "limit": 4}
    first = api_client.get(url, params=params, headers=auth(token)).json()
    assert [(e["type"], e["data"].get("epoch")) for e in first["data"]] == [
        ("on_fit_epoch_end", epoch) for epoch in range(1, 5)
    ]
    assert first["next_cursor"] == first["data"][-1]["seq"]
    rest = api_client.get(url, params={**params, "after": first["next_cursor"]}, headers=auth(token)).json()
    assert [e["type"] for e in rest["data"]] == ["on_fit_epoch_end", "job.succeeded"]
    assert rest["next_cursor"] is None
    everything = api_client.get(url, params={"limit": 1000}, headers=auth(token)).json()["data"]
    assert [e["seq"] for e in everything] == list(range(1, 17))


@pytest.mark.parametrize(
    ("types", "detail"),
    [
        (["on fit"], "invalid ?type= value 'on fit': an event type such as 'on_fit_epoch_end'"),
        (["a\x00b"], "invalid ?type= value 'a\\x00b': an event type such as 'on_fit_epoch_end'"),
        (["x" * 65], f"invalid ?type= value '{'x' * 65}': an event type such as 'on_fit_epoch_end'"),
        ([f"t{i}" for i in range(33)], "too many ?type= values (33): ask for at most 32"),
    ],
)
def test_bad_type_filters_are_422(api_client, token, job_with_epochs, types, detail) -> None:
    r = api_client.get(f"/v1/jobs/{job_with_epochs}/events", params={"type": types}, headers=auth(token))
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == detail
