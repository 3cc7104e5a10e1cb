"""`trainforge token create --tenant NAME`: mint an API token straight in the database (operators only)."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `token create` to the `trainforge` parser."""
    token = subparsers.add_parser("token", help="manage API tokens (talks to the database directly)")
    actions = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = actions.add_parser(
        "create",
        help="create an API token for a tenant (the tenant is created if new)",
        description="Create an API token and print it once; only its hash is stored.",
    )
    create.add_argument("--tenant", required=True, help="tenant name; its jobs are all this token can see")
    create.add_argument("--name", help="a label for the token, e.g. who holds it")
    create.add_argument(
        "--database-url",
        help="database to write to (default: $TRAINFORGE_DATABASE_URL or the settings' default)",
    )
    create.add_argument("--json", action="store_true", help="print {token, tenant, name} as JSON")
    create.set_defaults(func=cmd_token_create)


def cmd_token_create(args: argparse.Namespace) -> int:
    """Create the token in one transaction and print it; exit 1 with a reason when that fails."""
    # Imported here so that `trainforge --help` and the API-only commands never load the DB layer.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError, ProgrammingError, SQLAlchemyError

    from trainforge.auth import create_token
    from trainforge.db.session import session_scope
    from trainforge.settings import get_settings

    tenant = args.tenant.strip()
    if not tenant:
        print("trainforge token create: error: --tenant must not be empty", file=sys.stderr)
        return 2
    url = args.database_url or get_settings().database_url
    where = make_url(url).render_as_string(hide_password=True)
    try:
        with session_scope(url) as session:
            token = create_token(session, tenant, name=args.name)
    except (OperationalError, ProgrammingError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        missing_table = "no such table" in reason or ("relation" in reason and "does not exist" in reason)
        hint = "run `trainforge migrate` first" if missing_table else ""
        print(
            f"error: cannot create a token in {where}: {reason}" + (f"; {hint}" if hint else ""),
            file=sys.stderr,
        )
        return 1
    except (SQLAlchemyError, ValueError) as exc:
        print(f"error: cannot create a token in {where}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"token": token, "tenant": tenant, "name": args.name}))
    else:
        print(token)
        print(
            f"token for tenant {tenant!r} created; it is shown only this once, store it now "
            "(e.g. export TRAINFORGE_TOKEN=...)",
            file=sys.stderr,
        )
    return 0
