"""Stream caps against a real uvicorn server: a tenant's SSE and followed logs share one cap (429 over it),
a closed stream gives its slot back, and ?tail= / ?offset= are bounded and checked."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from api.streams import RETRY_AFTER_S
from trainforge.auth import resolve_token
from trainforge.db.session import session_scope
from trainforge.slots import Slots, pool

CAP = 2
TAIL_MAX = 100


@pytest.fixture(scope="module")
def service_env(service_env):
    """Two streams per tenant; tails of at most 100 bytes."""
    return {
        **service_env,
        "TRAINFORGE_STREAM_MAX_PER_TENANT": str(CAP),
        "TRAINFORGE_LOG_TAIL_MAX_BYTES": str(TAIL_MAX),
        "TRAINFORGE_SSE_POLL_S": "0.3",
    }


@pytest.fixture
def job(make_token, make_job):
    """Return (token, tenant id, running job id)."""
    token = make_token()
    with session_scope() as s:
        principal = resolve_token(s, token)
    return token, principal.tenant_id, make_job(tenant=principal.tenant_name, status="running")


def open_stream(live_api: str, token: str, job_id: str, kind: str) -> httpx.Response:
    """Open an SSE ("events") or followed-log ("logs") stream; the caller closes it."""
    client = httpx.Client(base_url=live_api, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    if kind == "events":
        request = client.build_request(
            "GET", f"/v1/jobs/{job_id}/events", headers={"Accept": "text/event-stream"}
        )
    else:
        request = client.build_request("GET", f"/v1/jobs/{job_id}/logs", params={"follow": "true"})
    return client.send(request, stream=True)


def streams_held(tenant_id: str) -> int:
    """Return how many stream slots the tenant holds now (in Redis)."""
    return Slots().holders(pool("streams:tenant", tenant_id, CAP))


def test_events_and_followed_logs_share_the_tenants_cap(
    live_api, settings_env, job, make_token, make_job
) -> None:
    token, tenant_id, job_id = job
    first, second = (
        open_stream(live_api, token, job_id, "events"),
        open_stream(live_api, token, job_id, "logs"),
    )
    try:
        assert first.status_code == 200 and second.status_code == 200
        assert streams_held(tenant_id) == CAP
        for kind in ("events", "logs"):
            refused = open_stream(live_api, token, job_id, kind)
            refused.read()
            assert refused.status_code == 429 and refused.headers["retry-after"] == str(RETRY_AFTER_S)
            assert refused.json()["detail"] == (
                f"this tenant already has {CAP} streams open (stream_max_per_tenant); close one "
                f"(an SSE event stream or a followed log) or retry after {RETRY_AFTER_S} s"
            )
        # Another tenant's streams are counted apart.
        other = make_token()
        with session_scope() as s:
            other_job = make_job(tenant=resolve_token(s, other).tenant_name, status="running")
        theirs = open_stream(live_api, other, other_job, "events")
        assert theirs.status_code == 200
        theirs.close()
    finally:
        first.close()
    deadline = time.monotonic() + 5
    while streams_held(tenant_id) >= CAP:  # the server sees the disconnect and gives the slot back
        assert time.monotonic() < deadline, "a closed stream kept its slot"
        time.sleep(0.1)
    again = open_stream(live_api, token, job_id, "events")
    assert again.status_code == 200
    again.close()
    second.close()


def test_tail_seeks_to_the_end_of_a_big_log(live_api, settings_env, job) -> None:
    token, _, job_id = job
    log = Path(settings_env.artifacts_dir) / job_id / "train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_bytes(b"x" * 5_000_000 + "end: \u00e9t\u00e9 done\n".encode())
    headers = {"Authorization": f"Bearer {token}"}
    got = httpx.get(f"{live_api}/v1/jobs/{job_id}/logs", params={"tail": 10}, headers=headers).text
    assert got == "t\u00e9 done\n"  # 10 bytes end inside "é": the broken character is dropped
    tailed = httpx.get(f"{live_api}/v1/jobs/{job_id}/logs", params={"tail": 16}, headers=headers).text
    assert tailed == "end: \u00e9t\u00e9 done\n"


BAD = [
    ("tail zero", {"tail": "0"}, "tail: Input should be greater than or equal to 1"),
    ("tail not a number", {"tail": "ten"},
     "tail: Input should be a valid integer, unable to parse string as an integer"),
    ("tail over the bound", {"tail": str(TAIL_MAX + 1)},
     f"tail={TAIL_MAX + 1} is more than the {TAIL_MAX} bytes a tail may be (log_tail_max_bytes); "
     "ask for less, or download the whole log without ?tail="),
    ("followed tail over the bound", {"tail": str(TAIL_MAX + 1), "follow": "true"},
     f"tail={TAIL_MAX + 1} is more than the {TAIL_MAX} bytes a tail may be (log_tail_max_bytes); "
     "ask for less, or download the whole log without ?tail="),
    ("offset without follow", {"offset": "3"},
     "offset resumes a followed log: use it with follow=true and without tail"),
    ("offset with tail", {"offset": "3", "tail": "5", "follow": "true"},
     "offset resumes a followed log: use it with follow=true and without tail"),
    ("negative offset", {"offset": "-1", "follow": "true"},
     "offset: Input should be greater than or equal to 0"),
    ("huge offset", {"offset": str(2**63), "follow": "true"},
     "offset: Input should be less than or equal to 4611686018427387904"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "params", "message"), BAD, ids=[c[0] for c in BAD])
def test_bad_log_parameters_are_422_and_hold_no_stream(live_api, job, name, params, message) -> None:
    token, tenant_id, job_id = job
    response = httpx.get(
        f"{live_api}/v1/jobs/{job_id}/logs", params=params, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == message
    assert streams_held(tenant_id) == 0
