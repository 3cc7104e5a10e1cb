"""`trainforge tenant set|show`: a tenant's own limits, straight in the database (operators only)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from trainforge.cli import output
from trainforge.cli.database import add_database_url, in_database


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `tenant set|show` to the `trainforge` parser."""
    tenant = subparsers.add_parser("tenant", help="set and show a tenant's limits (talks to the database)")
    actions = tenant.add_subparsers(dest="tenant_command", required=True, metavar="ACTION")
    setter = actions.add_parser(
        "set",
        help="set limits of one tenant: key=value ... (value 'none': no limit; 'default': the setting)",
        description="Set limits of one tenant; each replaces the operator's setting of the same name. "
        "Sizes take K, M or G (job_disk_quota_bytes=10G); queues take a comma list (queues=jobs,gpu).",
    )
    setter.add_argument("tenant", help="tenant name (created if new)")
    setter.add_argument(
        "limits", nargs="+", metavar="KEY=VALUE", help="e.g. max_running_jobs=2 max_epochs=100"
    )
    add_database_url(setter)
    setter.set_defaults(func=cmd_tenant_set)

    show = actions.add_parser("show", help="show the limits in force for a tenant, or every tenant's own")
    show.add_argument("tenant", nargs="?", help="tenant name (default: every tenant with limits of its own)")
    add_database_url(show)
    show.add_argument("--json", action="store_true", help="print the limits as JSON")
    show.set_defaults(func=cmd_tenant_show)


def cmd_tenant_set(args: argparse.Namespace) -> int:
    """Check every key=value first, then store them in one transaction; print what is in force."""
    from trainforge.auth import get_or_create_tenant
    from trainforge.settings import get_settings
    from trainforge.tenant_limits import LimitError, parse_assignments, set_limits

    settings = get_settings()
    name = args.tenant.strip()
    if not name:
        print("trainforge tenant set: error: the tenant name must not be empty", file=sys.stderr)
        return 2
    try:
        changes = parse_assignments(args.limits, settings)
    except LimitError as exc:
        print(f"trainforge tenant set: error: {exc}", file=sys.stderr)
        return 2
    ok, own = in_database(
        args, "set tenant limits", lambda s: set_limits(s, get_or_create_tenant(s, name).id, changes)
    )
    if not ok:
        return 1
    print(
        f"tenant {name!r}: "
        + (", ".join(f"{k}={_text(v)}" for k, v in sorted(own.items())) or "no limits of its own")
    )
    return 0


def cmd_tenant_show(args: argparse.Namespace) -> int:
    """Print each limit of a tenant with where it comes from, or every tenant's own limits."""
    from trainforge.settings import get_settings

    settings = get_settings()
    if args.tenant:
        ok, shown = in_database(
            args, "read tenant limits", lambda s: _in_force(s, args.tenant.strip(), settings)
        )
        if not ok:
            return 1
        if shown is None:
            print(f"error: no tenant {args.tenant!r}; see `trainforge token list`", file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(shown, indent=2))
        else:
            print(
                output.table(
                    [[k, _text(v["value"]), v["from"]] for k, v in shown.items()], ("limit", "value", "from")
                )
            )
        return 0
    ok, rows = in_database(args, "read tenant limits", _every_own)
    if not ok:
        return 1
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("no tenant has limits of its own; every tenant has the operator's (TRAINFORGE_* settings)")
    else:
        cells = [[t, ", ".join(f"{k}={_text(v)}" for k, v in sorted(o.items()))] for t, o in rows.items()]
        print(output.table(cells, ("tenant", "own limits")))
    return 0


def _in_force(session: Any, name: str, settings: Any) -> dict[str, Any] | None:
    """Return {limit: {value, from}} for tenant `name`, or None when there is no such tenant."""
    from sqlalchemy import select

    from trainforge.db.models import Tenant
    from trainforge.tenant_limits import LIMIT_KEYS, own_limits, resolve

    tenant_id = session.execute(select(Tenant.id).where(Tenant.name == name)).scalar()
    if tenant_id is None:
        return None
    own = own_limits(session, tenant_id)
    limits = resolve(settings, own)
    return {
        key: {"value": list(v) if isinstance(v := getattr(limits, key), tuple) else v,
              "from": "tenant" if key in own else "operator"}
        for key in LIMIT_KEYS
    }  # fmt: skip


def _every_own(session: Any) -> dict[str, dict[str, Any]]:
    """Return {tenant name: its own limits} for every tenant that has some."""
    from sqlalchemy import select

    from trainforge.db.models import Tenant, TenantLimits

    rows = session.execute(select(Tenant.name, TenantLimits.limits).join(TenantLimits).order_by(Tenant.name))
    return {name: dict(own) for name, own in rows if own}


def _text(value: Any) -> str:
    """Write a limit value as `tenant set` takes it."""
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)
