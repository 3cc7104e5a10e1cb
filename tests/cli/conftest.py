"""Fixtures for the CLI tests: a live API, a Redis database of our own, a fresh tenant's token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from trainforge.client import TrainforgeClient


# A Redis database of our own: jobs submitted here wait in its "jobs" queue, where no other
# area's worker picks them up, and it is emptied when the session ends.
@pytest.fixture(scope="session")
def redis_url(redis_url: str, redis_databases: tuple[int, int]) -> Iterator[str]:
    """Use the shared Redis server, on the spare database number of this test process."""
    url = redis_url.rsplit("/", 1)[0] + f"/{redis_databases[1]}"
    yield url
    redis.Redis.from_url(url).flushdb()


@pytest.fixture
def token(make_token) -> str:
    """Return a token of a fresh tenant."""
    return make_token()


@pytest.fixture
def client(live_api: str, token: str) -> Iterator[TrainforgeClient]:
    """Yield a client of the live API, authenticated as a fresh tenant."""
    with TrainforgeClient(live_api, token, timeout=20) as c:
        yield c
