"""The trainer registry and the settings object (no database needed)."""

from __future__ import annotations

import re

import pytest

from trainforge.registry import TrainerError, resolve_trainer
from trainforge.settings import Settings


def test_builtin_trainers_resolve() -> None:
    spec = resolve_trainer("classify", [])
    assert spec.ref == "trainer_engine.models.classify:ClassificationTrainer" and spec.task == "classify"


@pytest.mark.parametrize(
    ("name", "allowed", "message"),
    [
        ("clasify", [], "did you mean 'classify'"),
        ("os:system", ["mypkg"], "not under an allowed prefix (mypkg)"),
        ("mypkgevil.mod:T", ["mypkg"], "not under an allowed prefix"),
        ("mypkg.mod:T", [], "none are allowed"),
        ("mypkg..mod:T", ["mypkg"], "not a valid 'package.module:Class' path"),
        ("mypkg.mod:", ["mypkg"], "not a valid"),
        ("mypkg/mod:T", ["mypkg"], "not a valid"),
    ],
)
def test_bad_trainer_names(name: str, allowed: list[str], message: str) -> None:
    with pytest.raises(TrainerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_trainer(name, allowed)


@pytest.mark.parametrize("prefix", ["mypkg", "mypkg."])
def test_allowed_module_paths(prefix: str) -> None:
    assert resolve_trainer("mypkg.trainers:MyTrainer", [prefix]).ref == "mypkg.trainers:MyTrainer"
    assert resolve_trainer("mypkg:MyTrainer", [prefix]).task is None


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINFORGE_TRAINER_MODULES", "a.b, c")
    monkeypatch.setenv("TRAINFORGE_WEBHOOK_ALLOW", '["127.0.0.0/8"]')
    monkeypatch.setenv("TRAINFORGE_WEBHOOK_RETRY_SCHEDULE_S", "0,5,30")
    settings = Settings()
    assert settings.trainer_modules == ["a.b", "c"]
    assert settings.webhook_allow == ["127.0.0.0/8"]
    assert settings.webhook_retry_schedule_s == [0.0, 5.0, 30.0]


def test_data_roots_are_empty_by_default_and_resolved(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("TRAINFORGE_DATA_ROOTS", raising=False)
    assert Settings().data_roots == []
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.setenv("TRAINFORGE_DATA_ROOTS", f"{tmp_path}/link, {tmp_path}/real/../real")
    assert Settings().data_roots == [(tmp_path / "real").resolve()] * 2


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "TRAINFORGE_DATABASE_URL"),
        ({"TRAINFORGE_DATABASE_URL": "postgresql+psycopg://db/x"}, "TRAINFORGE_REDIS_URL"),
        (
            {"TRAINFORGE_DATABASE_URL": "postgresql+psycopg://db/x", "TRAINFORGE_REDIS_URL": "redis://r:6379",
             "TRAINFORGE_WEBHOOK_ALLOW": "0.0.0.0/0"},
            "opens every address",
        ),
        (
            {"TRAINFORGE_DATABASE_URL": "postgresql+psycopg://db/x", "TRAINFORGE_REDIS_URL": "redis://r:6379",
             "TRAINFORGE_DATA_ROOTS": "/srv/sets,/"},
            "TRAINFORGE_DATA_ROOTS entry '/' opens the whole filesystem",
        ),
    ],
)  # fmt: skip
def test_production_refuses_insecure_defaults(monkeypatch: pytest.MonkeyPatch, env, message) -> None:
    for key in (
        "TRAINFORGE_DATABASE_URL",
        "TRAINFORGE_REDIS_URL",
        "TRAINFORGE_WEBHOOK_ALLOW",
        "TRAINFORGE_DATA_ROOTS",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("TRAINFORGE_ENV", "production")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=message):
        Settings()


def test_production_accepts_explicit_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINFORGE_ENV", "production")
    monkeypatch.setenv("TRAINFORGE_DATABASE_URL", "postgresql+psycopg://db/x")
    monkeypatch.setenv("TRAINFORGE_REDIS_URL", "redis://:pw@redis:6379/0")
    assert Settings().env == "production"


def test_webhook_allow_entries_are_checked_when_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINFORGE_WEBHOOK_ALLOW", "127.0.0.0/8, not a/host")
    with pytest.raises(ValueError) as caught:
        Settings()
    assert (
        "webhook allow entry 'not a/host' is neither a CIDR (e.g. 127.0.0.0/8), a host name nor '*'"
        in str(caught.value)
    )


def test_webhook_allow_star_is_for_development_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRAINFORGE_WEBHOOK_ALLOW", "*")
    assert Settings().webhook_allow == ["*"]
    monkeypatch.setenv("TRAINFORGE_ENV", "production")
    monkeypatch.setenv("TRAINFORGE_DATABASE_URL", "postgresql+psycopg://db/x")
    monkeypatch.setenv("TRAINFORGE_REDIS_URL", "redis://:pw@redis:6379/0")
    with pytest.raises(ValueError, match="TRAINFORGE_WEBHOOK_ALLOW entry '\\*' opens every address"):
        Settings()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("jobs,default", "queue 'default' belongs to the service worker"),
        ("webhooks", "queue 'webhooks' belongs to the service worker"),
        ("", "list one or more queues for jobs"),
        ("jobs,bad name", "queue name 'bad name': use 1-64 letters, digits and _ . -"),
    ],
)
def test_job_queues_refuse_the_service_queues_and_bad_names(value, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Settings(job_queues=value)


def test_limit_sizes_take_units():
    settings = Settings(job_disk_quota_bytes="10G", job_log_max_bytes="64k", job_queues="jobs, gpu-a100")
    assert (settings.job_disk_quota_bytes, settings.job_log_max_bytes) == (10 * 1024**3, 64 * 1024)
    assert settings.job_queues == ["jobs", "gpu-a100"]
    with pytest.raises(ValueError, match="'3X' is not a size"):
        Settings(job_log_max_bytes="3X")
