"""Static checks of the Dockerfile and .dockerignore: stages, what is copied, how the image starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainforge.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def instructions(text: str) -> list[tuple[str, str]]:
    """Parse a Dockerfile into (INSTRUCTION, arguments), joining continued lines and dropping comments."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """Return the Dockerfile's instructions."""
    return instructions((ROOT / "Dockerfile").read_text())


def of(dockerfile: list[tuple[str, str]], keyword: str) -> list[str]:
    """Return the arguments of every `keyword` instruction."""
    return [args for kw, args in dockerfile if kw == keyword]


def test_parser_joins_continued_lines():
    parsed = instructions('# c\nFROM a AS b\nRUN x \\\n  && y\n\nCMD ["z"]\n')
    assert parsed == [("FROM", "a AS b"), ("RUN", "x  && y"), ("CMD", '["z"]')]


def test_build_and_runtime_stages(dockerfile):
    stages = [args.split()[-1] for args in of(dockerfile, "FROM") if " AS " in args.upper()]
    assert stages == ["base", "build", "runtime"]
    assert dockerfile[-1][0] == "CMD"  # the runtime stage is the last, so it is what `docker build` makes


def test_runtime_copies_the_venv_and_the_migrations(dockerfile):
    copies = of(dockerfile, "COPY")
    assert "--from=build /opt/venv /opt/venv" in copies
    assert "migrations migrations" in copies
    assert "alembic.ini ./" in copies


def test_source_packages_are_installed(dockerfile):
    copies = of(dockerfile, "COPY")
    for package in ("trainer_engine", "trainforge", "api", "worker"):
        assert f"{package} {package}" in copies
    assert any("pip install --no-deps ." in run for run in of(dockerfile, "RUN"))


def test_image_runs_trainforge_as_a_non_root_user(dockerfile):
    assert json.loads(of(dockerfile, "ENTRYPOINT")[-1]) == ["trainforge"]
    assert of(dockerfile, "USER")[-1] not in ("root", "0")
    assert "8000" in of(dockerfile, "EXPOSE")


def test_default_command_is_a_trainforge_subcommand(dockerfile):
    command = json.loads(of(dockerfile, "CMD")[-1])
    assert command[0] == "api"
    assert callable(build_parser().parse_args(command).func)


def test_dockerignore_keeps_local_state_out():
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", ".trainforge"} <= ignored
