"""Run an operator command against the database directly, turning database errors into one line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session


def add_database_url(parser: argparse.ArgumentParser) -> None:
    """Add `--database-url` to an operator command."""
    parser.add_argument(
        "--database-url",
        help="database to use (default: $TRAINFORGE_DATABASE_URL or the settings' default)",
    )


def in_database(args: argparse.Namespace, doing: str, work: Callable[[Session], Any]) -> tuple[bool, Any]:
    """Run `work(session)` in one transaction; return (True, its result), or print why and (False, None).

    `doing` completes "error: cannot <doing> in <database>: ..." when the database refuses.
    """
    # Imported here so that `trainforge --help` and the API-only commands never load the DB layer.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError

    from trainforge.db.session import session_scope
    from trainforge.settings import get_settings

    url = args.database_url or get_settings().database_url
    where = make_url(url).render_as_string(hide_password=True)
    try:
        with session_scope(url) as session:
            return True, work(session)
    except (OperationalError, ProgrammingError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        missing = "no such table" in reason or "no such column" in reason or "does not exist" in reason
        hint = "; run `trainforge migrate` first" if missing else ""
        print(f"error: cannot {doing} in {where}: {reason}{hint}", file=sys.stderr)
    except SQLAlchemyError as exc:
        print(f"error: cannot {doing} in {where}: {exc}", file=sys.stderr)
    return False, None
