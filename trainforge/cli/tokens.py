"""`trainforge token create|list|revoke`: manage API tokens straight in the database (operators only)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime, timedelta
from typing import Any

from trainforge.cli import output
from trainforge.cli.database import add_database_url, in_database

DURATION_RE = re.compile(r"^(\d+)\s*([mhdw])$")
DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """Return the timedelta of "90m", "12h", "30d" or "8w"; argparse.ArgumentTypeError otherwise."""
    match = DURATION_RE.match(text.strip().lower())
    if match is None or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; write a positive number with m, h, d or w, e.g. 30d"
        )
    return timedelta(**{DURATION_UNITS[match.group(2)]: int(match.group(1))})


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `token create|list|revoke` to the `trainforge` parser."""
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
        "--expires",
        type=parse_duration,
        metavar="DURATION",
        help="the token stops working after this, e.g. 30d",
    )
    add_database_url(create)
    create.add_argument("--json", action="store_true", help="print {token, tenant, name, expires_at} as JSON")
    create.set_defaults(func=cmd_token_create)

    listing = actions.add_parser("list", help="list tokens (never their secret): id, prefix, tenant, expiry")
    listing.add_argument("--tenant", help="only this tenant's tokens")
    listing.add_argument("--all", action="store_true", help="also revoked and expired tokens")
    add_database_url(listing)
    listing.add_argument("--json", action="store_true", help="print the tokens as JSON")
    listing.set_defaults(func=cmd_token_list)

    revoke = actions.add_parser(
        "revoke",
        help="revoke a token by its id or prefix",
        description="Revoke a token. API processes refuse it within TRAINFORGE_AUTH_CACHE_S seconds.",
    )
    revoke.add_argument("token", metavar="ID_OR_PREFIX", help="the id or prefix `token list` shows")
    add_database_url(revoke)
    revoke.set_defaults(func=cmd_token_revoke)


def cmd_token_create(args: argparse.Namespace) -> int:
    """Create the token in one transaction and print it; exit 1 with a reason when that fails."""
    from trainforge.auth import create_token
    from trainforge.db.types import utcnow

    tenant = args.tenant.strip()
    if not tenant:
        print("trainforge token create: error: --tenant must not be empty", file=sys.stderr)
        return 2
    expires_at = utcnow() + args.expires if args.expires else None
    ok, token = in_database(
        args, "create a token", lambda s: create_token(s, tenant, name=args.name, expires_at=expires_at)
    )
    if not ok:
        return 1
    if args.json:
        print(
            json.dumps({"token": token, "tenant": tenant, "name": args.name, "expires_at": _iso(expires_at)})
        )
    else:
        print(token)
        until = f", valid until {_iso(expires_at)}" if expires_at else ""
        print(
            f"token for tenant {tenant!r} created{until}; it is shown only this once, store it now "
            "(e.g. export TRAINFORGE_TOKEN=...)",
            file=sys.stderr,
        )
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    """Print the tokens as a table (or JSON)."""
    from trainforge.auth import list_tokens

    ok, rows = in_database(
        args, "list tokens", lambda s: [_public(t, name) for t, name in list_tokens(s, args.tenant, args.all)]
    )
    if not ok:
        return 1
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no tokens" + ("" if args.all else " in use (--all shows revoked and expired ones)"))
    else:
        headers = ("id", "prefix", "tenant", "name", "created", "expires", "state")
        cells = [
            [
                r["id"],
                r["prefix"],
                r["tenant"],
                r["name"],
                r["created_at"],
                r["expires_at"] or "never",
                r["state"],
            ]
            for r in rows
        ]
        print(output.table(cells, headers))
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    """Revoke one token; exit 1 when no single token matches."""
    from trainforge.auth import TokenNotFound, revoke_token

    def revoke(session: Any) -> str:
        row = revoke_token(session, args.token)
        return f"token {row.prefix}… ({row.id}) revoked"

    try:
        ok, said = in_database(args, "revoke a token", revoke)
    except TokenNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not ok:
        return 1
    print(said + "; API processes refuse it within TRAINFORGE_AUTH_CACHE_S seconds (default 5)")
    return 0


def _public(token: Any, tenant: str) -> dict[str, Any]:
    """Return what `token list` shows of a token row: never its hash."""
    from trainforge.db.types import utcnow

    if token.revoked_at is not None:
        state = "revoked"
    elif token.expires_at is not None and token.expires_at <= utcnow():
        state = "expired"
    else:
        state = "active"
    return {
        "id": token.id,
        "prefix": token.prefix,
        "tenant": tenant,
        "name": token.name,
        "created_at": _iso(token.created_at),
        "expires_at": _iso(token.expires_at),
        "revoked_at": _iso(token.revoked_at),
        "state": state,
    }


def _iso(when: datetime | None) -> str | None:
    """Return a timestamp as ISO 8601 seconds, or None."""
    return when.isoformat(timespec="seconds") if when is not None else None
