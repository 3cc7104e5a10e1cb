"""`trainforge dataset upload|list|show|delete`, `trainforge datasets`, and the same for `model`/`models`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

from tqdm import tqdm

from trainforge.cli import output
from trainforge.cli.jobs import _connection_parent, api_command
from trainforge.client import TrainforgeClient


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the dataset and model commands to the `trainforge` parser."""
    conn = _connection_parent()
    for kind, what in (("dataset", "a folder, .zip or .tar.gz"), ("model", "a .pt checkpoint")):
        group = subparsers.add_parser(kind, help=f"upload, list, show or delete {kind}s")
        actions = group.add_subparsers(dest=f"{kind}_command", required=True, metavar="ACTION")
        upload = actions.add_parser("upload", parents=[conn], help=f"upload {what} as a new version")
        upload.add_argument("path", help=what)
        upload.add_argument(
            "--name", required=True, help=f"the {kind}'s name; jobs say {kind}:NAME[@VERSION]"
        )
        upload.add_argument("--no-wait", action="store_true", help="return once uploaded, before validation")
        upload.add_argument("--json", action="store_true", help="print the API's JSON")
        upload.set_defaults(func=cmd_upload, kind=kind)
        listing = actions.add_parser("list", parents=[conn], help=f"list your {kind}s")
        listing.add_argument("--name", help="only versions of this name")
        listing.add_argument("--json", action="store_true", help="print the API's JSON")
        listing.set_defaults(func=cmd_list, kind=kind)
        show = actions.add_parser("show", parents=[conn], help=f"show one {kind} with its validation report")
        show.add_argument("ref", help="id, name (the newest version) or name@version")
        show.add_argument("--json", action="store_true", help="print the API's JSON")
        show.set_defaults(func=cmd_show, kind=kind)
        delete = actions.add_parser("delete", parents=[conn], help=f"delete one {kind} version")
        delete.add_argument("ref", help="id or name@version")
        delete.set_defaults(func=cmd_delete, kind=kind)
        plural = subparsers.add_parser(f"{kind}s", parents=[conn], help=f"list your {kind}s (= {kind} list)")
        plural.add_argument("--name", help="only versions of this name")
        plural.add_argument("--json", action="store_true", help="print the API's JSON")
        plural.set_defaults(func=cmd_list, kind=kind)


def _progress_bar(total_hint: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """Return a (progress callback, close) pair drawing a tqdm bar on stderr."""
    bar: dict[str, Any] = {}

    def update(sent: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, unit="B", unit_scale=True, desc=total_hint, file=sys.stderr)
        bar["bar"].update(sent - bar["bar"].n)

    def close() -> None:
        if "bar" in bar:
            bar["bar"].close()

    return update, close


@api_command
def cmd_upload(args: argparse.Namespace, client: TrainforgeClient) -> int:
    """Upload, then wait for validation unless --no-wait; exit 1 when the upload is invalid."""
    update, close = _progress_bar(f"upload {args.name}")
    upload = client.upload_dataset if args.kind == "dataset" else client.upload_model
    try:
        row = upload(args.path, args.name, progress=update)
    finally:
        close()
    if not args.no_wait:
        print(f"uploaded {row['ref']}; validating ...", file=sys.stderr, flush=True)
        row = client.wait_ready(f"{args.kind}s", row["id"])
    if args.json:
        print(json.dumps(row, indent=2, default=str))
    else:
        print(upload_block(row))
    return 1 if row.get("status") == "invalid" else 0


@api_command
def cmd_list(args: argparse.Namespace, client: TrainforgeClient) -> int:
    """List the tenant's datasets or models."""
    rows = client.datasets(args.name) if args.kind == "dataset" else client.models(args.name)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    elif not rows:
        print(f"no {args.kind}s yet; upload one with `trainforge {args.kind} upload PATH --name NAME`")
    else:
        print(uploads_table(rows, args.kind))
    return 0


@api_command
def cmd_show(args: argparse.Namespace, client: TrainforgeClient) -> int:
    """Show one dataset or model version."""
    row = client.dataset(args.ref) if args.kind == "dataset" else client.model(args.ref)
    print(json.dumps(row, indent=2, default=str) if args.json else upload_block(row))
    return 0


@api_command
def cmd_delete(args: argparse.Namespace, client: TrainforgeClient) -> int:
    """Delete one dataset or model version."""
    (client.delete_dataset if args.kind == "dataset" else client.delete_model)(args.ref)
    print(f"deleted {args.kind} {args.ref}")
    return 0


def split_counts(row: Mapping[str, Any]) -> str:
    """Return images per split as `train 400, val 100`."""
    splits = (row.get("report") or {}).get("splits") or {}
    return ", ".join(f"{name} {split.get('images', 0)}" for name, split in splits.items()) or "-"


def uploads_table(rows: list[dict[str, Any]], kind: str) -> str:
    """Lay out dataset or model versions: id, name@version, task, images per split, classes, status."""
    if kind == "dataset":
        body = [
            (r["id"], f"{r['name']}@{r['version']}", r.get("task"), split_counts(r),
             len((r.get("report") or {}).get("names") or []) or None, r["status"])
            for r in rows
        ]  # fmt: skip
        return output.table(body, ("id", "name", "task", "images", "classes", "status"))
    models = [(r["id"], f"{r['name']}@{r['version']}", r.get("size_bytes"), r["status"]) for r in rows]
    return output.table(models, ("id", "name", "bytes", "status"))


def upload_block(row: Mapping[str, Any]) -> str:
    """Render one version: what it is, its status, and its report's counts and problems."""
    report = row.get("report") or {}
    lines = [
        f"{row['ref']}  ({row['status']})",
        f"id        {row['id']}",
        f"sha256    {row.get('sha256') or '-'}",
        f"bytes     {row.get('size_bytes') or '-'}",
    ]
    if row.get("task"):
        lines.append(f"task      {row['task']} ({report.get('layout')})")
    if report.get("names"):
        lines.append(f"classes   {', '.join(report['names'])}")
    for split, counts in (report.get("splits") or {}).items():
        instances = f", {counts['instances']} instances" if "instances" in counts else ""
        lines.append(f"{split:<9} {counts.get('images', 0)} images{instances}")
    if "parameters" in report:
        lines.append(f"weights   {report['tensors']} tensors, {report['parameters']} parameters")
    for title, key in (("problem", "problems"), ("warning", "warnings")):
        items = report.get(key) or []
        count = report.get(f"{title}_count", len(items))
        if items:
            lines.append(f"{count} {title}(s):")
            lines += [f"  {item}" for item in items]
    if row.get("error") and not report.get("problems"):
        lines.append(f"error     {row['error']}")
    return "\n".join(lines)
