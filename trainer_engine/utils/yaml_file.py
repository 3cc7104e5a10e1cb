"""Read a user's YAML file with errors that say where it is broken without quoting what it holds.

PyYAML's own messages print the offending lines, and the engine's errors end up in logs and job
records that other people read: a file named by mistake must not have its contents shown there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: str | Path, error: type[Exception] = ValueError) -> Any:
    """Return the parsed contents of `path`; raise `error` naming the line and column of a syntax error."""
    try:
        return yaml.safe_load(Path(path).read_bytes())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise error(f"{path}: not valid YAML{where}; fix the syntax there") from None
    except yaml.YAMLError:
        # Undecodable bytes and the like: not a text file at all.
        raise error(f"{path}: not a YAML text file; give a UTF-8 .yaml file") from None
