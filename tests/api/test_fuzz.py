"""Fuzz every operation of /openapi.json with a valid token: no input gets a 500, each answer fits its schema.

Each operation gets valid (positive) and invalid (negative) inputs generated from its own declaration,
sent in-process to an app on the real test database (PostgreSQL and SQLite) and Redis. The examples
per operation are bounded and the generation is derandomized, so a run of the suite is quick and
repeatable; `make fuzz` raises TRAINFORGE_FUZZ_EXAMPLES for a longer search.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy import select

from trainforge.db.models import WebhookDelivery
from trainforge.db.session import session_scope
from trainforge.settings import Settings
from trainforge.webhooks import service as webhooks

EXAMPLES = int(os.environ.get("TRAINFORGE_FUZZ_EXAMPLES", "6"))
CHECKS = [not_a_server_error, response_schema_conformance]
HOOK = "http://127.0.0.1:9/hook"


def _operation_labels() -> list[str]:
    """Return 'METHOD /path' of every operation the app declares (read once, at collection)."""
    from api.main import create_app

    document = schemathesis.openapi.from_dict(create_app().openapi())
    return [result.ok().label for result in document.get_all_operations()]


@pytest.fixture(scope="module")
def target(service_env: dict[str, str]) -> Iterator[tuple[schemathesis.BaseSchema, dict[str, str], Real]]:
    """One app on this module's database and Redis, its OpenAPI document, a valid token, and real ids.

    Built once per database: every operation is fuzzed against the same app, as a server would be.
    """
    from api.main import create_app
    from trainforge.auth import create_token, token_cache
    from trainforge.settings import get_settings

    with pytest.MonkeyPatch.context() as env:
        for key, value in service_env.items():
            env.setenv(key, value)
        get_settings.cache_clear()
        settings = get_settings()
        with session_scope() as session:
            token = create_token(session, "fuzzer")
        real = Real.make(settings)
        schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
        yield schema, {"Authorization": f"Bearer {token}"}, real
    get_settings.cache_clear()
    token_cache.clear()


@dataclass
class Real:
    """Ids of the fuzzer tenant's own rows, so valid inputs reach past the 404 into each route's work.

    The job has ended (so its event stream and followed log end too) and has a log and a file.
    """

    tenant_id: str
    job_id: str
    webhook_id: str
    delivery_id: str

    @classmethod
    def make(cls, settings: Settings) -> Real:
        """Create the fuzzer tenant's endpoint, then a job (which gives the endpoint a delivery), ended."""
        from trainforge.auth import get_or_create_tenant
        from trainforge.jobs import service as jobs
        from trainforge.rundir import RunDir
        from trainforge.schemas import JobCreate

        with session_scope() as session:
            tenant_id = get_or_create_tenant(session, "fuzzer").id
            endpoint = webhooks.create_endpoint(session, tenant_id, HOOK, settings=settings)
            body = JobCreate(trainer="classify", overrides={"epochs": 1})
            job_id = jobs.create_job(session, tenant_id, body, settings).job.id
        with session_scope() as session:
            jobs.cancel_job(session, job_id)
            query = select(WebhookDelivery.id).where(WebhookDelivery.job_id == job_id)
            delivery_id = session.scalars(query.order_by(WebhookDelivery.created_at)).first()
            assert delivery_id is not None
        run = RunDir.of(settings.artifacts_dir, job_id)
        run.log.parent.mkdir(parents=True, exist_ok=True)
        run.log.write_text("epoch 1/1\n")
        (run.path / "results.csv").write_text("epoch,loss\n1,0.5\n")
        return cls(tenant_id, job_id, endpoint.id, delivery_id)

    def ids_for(self, label: str) -> dict[str, str]:
        """Return the real path parameters for an operation (DELETE gets an endpoint of its own)."""
        webhook_id = self.webhook_id
        if label.startswith("DELETE "):
            with session_scope() as session:
                webhook_id = webhooks.create_endpoint(session, self.tenant_id, HOOK).id
        return {"job_id": self.job_id, "webhook_id": webhook_id, "delivery_id": self.delivery_id}


def _takes_input(operation: schemathesis.APIOperation) -> bool:
    """Return whether an operation has any parameter or body that invalid data could be put in."""
    parts = (operation.path_parameters, operation.headers, operation.cookies, operation.query, operation.body)
    return any(len(part) for part in parts)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("label", _operation_labels())
def test_no_input_gets_a_server_error(target, label: str, mode: GenerationMode) -> None:
    schema, headers, real = target
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
        if mode is GenerationMode.POSITIVE and case.path_parameters:
            # Random valid ids only ever meet a 404: valid inputs get the tenant's real rows instead.
            ids = real.ids_for(label)
            case.path_parameters = {k: ids.get(k, v) for k, v in case.path_parameters.items()}
        case.call_and_validate(headers=headers, checks=CHECKS)

    fuzz()
