"""Fixtures for the worker tests that run whole jobs through the supervisor."""

from __future__ import annotations

import pytest

from worker.launcher import set_zygote


@pytest.fixture
def env(settings_env, monkeypatch):
    """Test settings with a fast heartbeat, children started as fresh interpreters."""
    from trainforge.settings import get_settings

    monkeypatch.setenv("TRAINFORGE_HEARTBEAT_INTERVAL_S", "0.3")
    get_settings.cache_clear()
    set_zygote(None)
    yield get_settings()
    get_settings.cache_clear()
