"""The command line itself: parsing, exit codes, and no torch in the CLI or client process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trainforge.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def test_submit_parses_trainer_overrides_and_options() -> None:
    args = build_parser().parse_args(
        ["submit", "classify", "data=synthetic:classify", "epochs=3", "--tag", "a", "--tag", "b",
         "--webhook", "https://h/x", "--name", "run1", "--follow", "--url", "http://h:1", "--token", "tf_t"]
    )  # fmt: skip
    assert args.trainer == "classify"
    assert args.overrides == ["data=synthetic:classify", "epochs=3"]
    assert (args.tags, args.webhooks, args.name, args.follow) == (["a", "b"], ["https://h/x"], "run1", True)
    assert (args.url, args.token) == ("http://h:1", "tf_t")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["submit", "classify", "epochs"], "override 'epochs' has no '=': write key=value, e.g. epochs=3"),
        (["submit", "classify", "=3"], "override '=3' has no key before '='"),
        (["submit", "classify", "epochs=3", "epochs=4"], "override 'epochs' is given twice"),
        (["submit", "classify", "lr0="], "override 'lr0' has an empty value"),
    ],
)
def test_malformed_override_exits_2_with_a_clear_message(argv: list[str], message: str, capsys) -> None:
    # Nothing listens on this URL: a bad override must be refused before any request is made.
    assert main([*argv, "--url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("trainforge submit: error: ")
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["jobs", "--status", "finished"],
        ["jobs", "--limit", "0"],
        ["status"],
        ["submit"],
        ["token", "create"],
        ["events", "j1", "--after", "x"],
    ],
)
def test_bad_usage_exits_2(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_unreachable_api_is_one_line_and_exit_1(capsys) -> None:
    assert main(["status", "j1", "--url", "http://127.0.0.1:9", "--token", "tf_x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the trainforge API at http://127.0.0.1:9")
    assert "Traceback" not in err


def test_cli_and_client_never_import_torch() -> None:
    code = (
        "import sys\n"
        "import trainforge.client, trainforge.cli.jobs, trainforge.cli.tokens\n"
        "from trainforge.cli import build_parser\n"
        "build_parser().parse_args(['submit', 'classify', 'epochs=3'])\n"
        "heavy = sorted(m for m in ('torch', 'torchvision') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_entry_point_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trainforge.cli", "submit", "classify", "epochs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "has no '='" in result.stderr
    assert "Traceback" not in result.stderr
