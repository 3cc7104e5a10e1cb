"""Static checks of docker-compose.yml: valid per the Compose specification, and runnable commands."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

import pytest
import yaml

from trainforge.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "trainforge:latest"


@pytest.fixture(scope="module")
def compose() -> dict:
    """Return docker-compose.yml parsed."""
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def compose_schema() -> dict:
    """Return the Compose specification JSON schema (vendored by check-jsonschema; no network)."""
    pytest.importorskip("check_jsonschema")
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text())


def test_compose_file_matches_the_compose_specification(compose, compose_schema):
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(compose_schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_schema_check_catches_a_broken_file(compose, compose_schema):
    from jsonschema import Draft202012Validator

    broken = json.loads(json.dumps(compose))
    broken["services"]["redis"]["healthcheck"]["interval"] = ["5s"]
    broken["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_done"
    assert len(list(Draft202012Validator(compose_schema).iter_errors(broken))) >= 2


def test_every_service_has_a_healthcheck(compose):
    missing = [name for name, svc in compose["services"].items() if "test" not in svc.get("healthcheck", {})]
    assert missing == []


def test_the_services_production_needs_are_there(compose):
    assert {"postgres", "redis", "migrate", "api", "worker"} <= set(compose["services"])


def test_image_commands_are_trainforge_subcommands(compose):
    parser = build_parser()
    image_services = {n: s for n, s in compose["services"].items() if s.get("image") == IMAGE}
    assert set(image_services) >= {"migrate", "api", "worker", "service-worker"}
    for name, svc in image_services.items():
        args = parser.parse_args(svc["command"])  # exits (fails the test) on an unknown option
        assert callable(args.func), name


def test_redis_keeps_an_append_only_file(compose):
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"


def test_gpu_worker_reserves_a_gpu_and_enough_shared_memory(compose):
    worker = compose["services"]["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert worker["shm_size"].endswith("gb")
    command = worker["command"]
    assert command[command.index("--queues") + 1] == "jobs"
    assert command[command.index("--concurrency") + 1] == "1"


def test_services_wait_for_migrations_and_healthy_dependencies(compose):
    for name in ("api", "worker", "service-worker"):
        depends = compose["services"][name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert compose["services"]["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_only_one_service_runs_the_schedule(compose):
    with_beat = [name for name, svc in compose["services"].items() if "--beat" in svc.get("command", [])]
    assert with_beat == ["service-worker"]
