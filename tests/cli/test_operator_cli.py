"""Operator commands on the real database: `token create|list|revoke` and `tenant set|show`.

A revoked token is refused by the API within auth_cache_s (1 s here); an expired one at once, even
while cached. Bad values exit 2 with a message and store nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from trainforge.auth import create_token
from trainforge.cli import main
from trainforge.db.models import ApiToken, Tenant, TenantLimits
from trainforge.db.session import session_scope
from trainforge.db.types import utcnow


@pytest.fixture
def short_auth_cache(monkeypatch):
    """Trust a resolved token for 1 s (set before the settings are read)."""
    monkeypatch.setenv("TRAINFORGE_AUTH_CACHE_S", "1")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def count(model) -> int:
    with session_scope() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def fresh() -> str:
    return f"ops-{uuid.uuid4().hex[:8]}"


def test_create_with_expiry_list_and_revoke(settings_env, capsys) -> None:
    tenant = fresh()
    code, out, _ = run(
        capsys, "token", "create", "--tenant", tenant, "--name", "ci", "--expires", "30d", "--json"
    )
    assert code == 0
    made = json.loads(out)
    expires = datetime.fromisoformat(made["expires_at"])
    assert abs(expires - (utcnow() + timedelta(days=30))) < timedelta(minutes=1)

    code, out, _ = run(capsys, "token", "list", "--tenant", tenant, "--json")
    (listed,) = json.loads(out)
    assert (listed["prefix"], listed["name"], listed["state"]) == (made["token"][:12], "ci", "active")
    assert made["token"] not in out and "hash" not in out  # the secret is never shown again

    code, out, _ = run(capsys, "token", "revoke", listed["prefix"])
    assert code == 0 and f"token {listed['prefix']}… ({listed['id']}) revoked" in out
    assert json.loads(run(capsys, "token", "list", "--tenant", tenant, "--json")[1]) == []
    (shown,) = json.loads(run(capsys, "token", "list", "--tenant", tenant, "--all", "--json")[1])
    assert shown["state"] == "revoked" and shown["revoked_at"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["token", "create", "--tenant", "x", "--expires", "30"], "'30' is not a duration"),
        (["token", "create", "--tenant", "x", "--expires", "0d"], "'0d' is not a duration"),
        (["token", "create", "--tenant", "x", "--expires=-1d"], "'-1d' is not a duration"),
        (["token", "create", "--tenant", "x", "--expires", "3y"], "'3y' is not a duration"),
    ],
)
def test_a_bad_expiry_exits_2_and_creates_nothing(settings_env, capsys, argv, message) -> None:
    before = count(ApiToken)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert count(ApiToken) == before


def test_revoking_an_unknown_token_exits_1(settings_env, capsys) -> None:
    code, _, err = run(capsys, "token", "revoke", "tf_nosuchone")
    assert code == 1
    assert "no token has the id or prefix 'tf_nosuchone'; see `trainforge token list --all`" in err


def test_a_revoked_token_is_refused_within_the_auth_cache_time(short_auth_cache, api_client, capsys) -> None:
    code, out, _ = run(capsys, "token", "create", "--tenant", fresh(), "--json")
    assert code == 0
    token = json.loads(out)["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert api_client.get("/v1/jobs", headers=headers).status_code == 200
    assert run(capsys, "token", "revoke", token[:12])[0] == 0
    revoked_at = time.monotonic()
    while api_client.get("/v1/jobs", headers=headers).status_code == 200:
        assert time.monotonic() - revoked_at < 1.5, "still accepted past auth_cache_s"
        time.sleep(0.05)
    r = api_client.get("/v1/jobs", headers=headers)
    assert r.status_code == 401 and "invalid or revoked API token" in r.json()["detail"]


def test_an_expired_token_is_refused_even_while_cached(api_client) -> None:
    with session_scope() as s:
        past = create_token(s, fresh(), expires_at=utcnow() - timedelta(seconds=1))
        soon = create_token(s, fresh(), expires_at=utcnow() + timedelta(seconds=1.5))
    assert api_client.get("/v1/jobs", headers={"Authorization": f"Bearer {past}"}).status_code == 401
    assert api_client.get("/v1/jobs", headers={"Authorization": f"Bearer {soon}"}).status_code == 200
    time.sleep(1.6)  # the auth cache (5 s here) still holds it; its expiry does not wait for the cache
    assert api_client.get("/v1/jobs", headers={"Authorization": f"Bearer {soon}"}).status_code == 401


# --- tenant set / show ------------------------------------------------------------------------------


def test_tenant_set_then_show(settings_env, capsys) -> None:
    tenant = fresh()
    code, out, _ = run(
        capsys, "tenant", "set", tenant, "max_running_jobs=2", "queues=jobs", "job_disk_quota_bytes=1G",
        "max_epochs=none",
    )  # fmt: skip
    assert code == 0
    assert out.strip() == (
        f"tenant {tenant!r}: job_disk_quota_bytes=1073741824, max_epochs=none, max_running_jobs=2, "
        "queues=jobs"
    )
    shown = json.loads(run(capsys, "tenant", "show", tenant, "--json")[1])
    assert shown["max_running_jobs"] == {"value": 2, "from": "tenant"}
    assert shown["max_epochs"] == {"value": None, "from": "tenant"}
    assert shown["max_imgsz"] == {"value": 2048, "from": "operator"}
    assert shown["queues"] == {"value": ["jobs"], "from": "tenant"}
    run(capsys, "tenant", "set", tenant, "max_running_jobs=default")
    shown = json.loads(run(capsys, "tenant", "show", tenant, "--json")[1])
    assert shown["max_running_jobs"] == {"value": None, "from": "operator"}
    everyone = json.loads(run(capsys, "tenant", "show", "--json")[1])
    assert everyone[tenant] == {"job_disk_quota_bytes": 1073741824, "max_epochs": None, "queues": ["jobs"]}
    table = run(capsys, "tenant", "show", tenant)[1]
    assert "max_epochs" in table and "tenant" in table and "operator" in table


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("max_epoch=3", "unknown limit 'max_epoch'; did you mean 'max_epochs'?"),
        ("max_running_jobs", "'max_running_jobs': write key=value, e.g. max_running_jobs=2"),
        ("max_running_jobs=-1", "max_running_jobs='-1': Input should be greater than or equal to 0"),
        ("max_time_h=0", "max_time_h='0': Input should be greater than 0"),
        ("max_batch=lots", "max_batch='lots': Input should be a valid integer"),
        ("job_log_max_bytes=3X", "job_log_max_bytes='3X': '3X' is not a size"),
        ("job_log_max_bytes=1k", "job_log_max_bytes='1k': Input should be greater than or equal to 4096"),
        (
            "queues=gpu-a100",
            "queues='gpu-a100': give queues from the operator's list (TRAINFORGE_JOB_QUEUES: jobs)",
        ),
        ("queues=", "queues='': give queues from the operator's list"),
    ],
)
def test_tenant_set_refuses_a_bad_value_and_stores_nothing(settings_env, capsys, pair, message) -> None:
    tenant, rows_before = fresh(), count(TenantLimits)
    code, _, err = run(capsys, "tenant", "set", tenant, "max_epochs=5", pair)
    assert code == 2
    assert f"trainforge tenant set: error: {message}" in err
    with session_scope() as s:
        assert s.execute(select(Tenant).where(Tenant.name == tenant)).scalar() is None
    assert count(TenantLimits) == rows_before  # not even the valid max_epochs=5 was stored


def test_tenant_show_of_an_unknown_tenant_exits_1(settings_env, capsys) -> None:
    code, _, err = run(capsys, "tenant", "show", "nobody-" + uuid.uuid4().hex[:6])
    assert code == 1 and "error: no tenant 'nobody-" in err
