"""`trainforge deliveries JOB`: a job's webhook deliveries and their attempts, as a table."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from typing import Any

from trainforge.cli import output
from trainforge.cli.jobs import _connection_parent, api_command
from trainforge.client import TrainforgeClient
from trainforge.vocab import DELIVERY_STATUSES

HEADERS = ("delivery", "event", "receiver", "status", "tries", "code", "latency", "when", "error")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `deliveries` command to the `trainforge` parser."""
    parser = subparsers.add_parser(
        "deliveries", parents=[_connection_parent()], help="show a job's webhook deliveries"
    )
    parser.add_argument("job_id", metavar="JOB")
    parser.add_argument("--status", choices=DELIVERY_STATUSES, help="only deliveries in this status")
    parser.add_argument("--attempts", action="store_true", help="list every attempt under its delivery")
    parser.add_argument("--json", action="store_true", help="print the API's JSON")
    parser.set_defaults(func=cmd_deliveries)


@api_command
def cmd_deliveries(args: argparse.Namespace, client: TrainforgeClient) -> int:
    """Print the job's deliveries."""
    items = client.deliveries(args.job_id, status=args.status)
    if args.json:
        print(json.dumps(items, indent=2, default=str))
    elif not items:
        print("no webhook deliveries" + (" match" if args.status else " for this job"))
    else:
        print(deliveries_table(items, with_attempts=args.attempts))
    return 0


def deliveries_table(items: Iterable[Mapping[str, Any]], with_attempts: bool = False) -> str:
    """Lay out one row per delivery (the last attempt's code and latency), and optionally every attempt."""
    rows: list[list[Any]] = []
    for item in items:
        tries = list(item.get("attempts") or [])
        last = tries[-1] if tries else {}
        when = item.get("next_attempt_at") if item.get("status") == "pending" else item.get("updated_at")
        rows.append(
            [
                str(item.get("id", ""))[:8],
                item.get("event_type"),
                _clip(item.get("url") or f"endpoint {str(item.get('endpoint_id', ''))[:8]}", 40),
                item.get("status"),
                len(tries),
                last.get("status_code"),
                _ms(last.get("latency_ms")),
                output.short_time(when),
                _clip(item.get("last_error"), 50),
            ]
        )
        if with_attempts:
            rows += [
                ["", f"  attempt {n}", "", "", "", a.get("status_code"), _ms(a.get("latency_ms")),
                 output.short_time(a.get("started_at")), _clip(a.get("error"), 50)]
                for n, a in enumerate(tries, 1)
            ]  # fmt: skip
    return output.table(rows, HEADERS)


def _ms(value: Any) -> str | None:
    return f"{value:.0f} ms" if isinstance(value, int | float) else None


def _clip(text: Any, limit: int) -> str | None:
    if not text:
        return None
    value = " ".join(str(text).split())
    return value if len(value) <= limit else value[: limit - 1] + "…"
