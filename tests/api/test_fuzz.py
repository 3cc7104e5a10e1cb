"""Fuzz every operation of /openapi.json with a valid token: no input gets a 500, each answer fits its schema.

Each operation gets valid (positive) and invalid (negative) inputs generated from its own declaration,
sent in-process to an app on the real test database (PostgreSQL and SQLite) and Redis. The examples
per operation are bounded and the generation is derandomized, so a run of the suite is quick and
repeatable; `make fuzz` raises TRAINFORGE_FUZZ_EXAMPLES for a longer search.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

EXAMPLES = int(os.environ.get("TRAINFORGE_FUZZ_EXAMPLES", "6"))
CHECKS = [not_a_server_error, response_schema_conformance]


def _operation_labels() -> list[str]:
    """Return 'METHOD /path' of every operation the app declares (read once, at collection)."""
    from api.main import create_app

    document = schemathesis.openapi.from_dict(create_app().openapi())
    return [result.ok().label for result in document.get_all_operations()]


@pytest.fixture(scope="module")
def target(service_env: dict[str, str]) -> Iterator[tuple[schemathesis.BaseSchema, dict[str, str]]]:
    """One app on this module's database and Redis, its OpenAPI document, and a valid token's header.

    Built once per database: every operation is fuzzed against the same app, as a server would be.
    """
    from api.main import create_app
    from trainforge.auth import create_token, token_cache
    from trainforge.db.session import session_scope
    from trainforge.settings import get_settings

    with pytest.MonkeyPatch.context() as env:
        for key, value in service_env.items():
            env.setenv(key, value)
        get_settings.cache_clear()
        with session_scope() as session:
            token = create_token(session, "fuzzer")
        schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(get_settings()))
        yield schema, {"Authorization": f"Bearer {token}"}
    get_settings.cache_clear()
    token_cache.clear()


def _takes_input(operation: schemathesis.APIOperation) -> bool:
    """Return whether an operation has any parameter or body that invalid data could be put in."""
    parts = (operation.path_parameters, operation.headers, operation.cookies, operation.query, operation.body)
    return any(len(part) for part in parts)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("label", _operation_labels())
def test_no_input_gets_a_server_error(target, label: str, mode: GenerationMode) -> None:
    schema, headers = target
    operation = next(r.ok() for r in schema.get_all_operations() if r.ok().label == label)
    if mode is GenerationMode.NEGATIVE and not _takes_input(operation):
        pytest.skip(f"{label} takes no input that could be invalid")

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    fuzz()
