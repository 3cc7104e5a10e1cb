"""Fixtures of the client tests: the same live API, Redis database and fresh tenant as the CLI tests."""

from cli.conftest import client, redis_url, token

__all__ = ["client", "redis_url", "token"]
