"""API tests get a redis-server of their own, so "nothing was queued" is about our requests alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from shared_helpers import private_redis


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory, redis_server_binary: str) -> Iterator[str]:
    """Yield the URL of a redis-server started for this session's API tests only."""
    with private_redis(redis_server_binary, tmp_path_factory.mktemp("api-redis")) as url:
        yield url
