"""`trainforge submit|status|events|logs|cancel|jobs|trainers|artifacts|download|workers`: the API."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from trainforge.cli import output
from trainforge.cli.follow import EXIT_INTERRUPTED, follow_job
from trainforge.cli.overrides import OverrideError, parse_overrides
from trainforge.client import DEFAULT_URL, TrainforgeClient, TrainforgeError
from trainforge.vocab import JobStatus

EXIT_USAGE = 2
Handler = Callable[[argparse.Namespace], int]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the job commands to the `trainforge` parser."""
    conn = _connection_parent()
    _register_submit(subparsers, conn)
    status = subparsers.add_parser("status", parents=[conn], help="show one job")
    status.add_argument("job_id", metavar="ID")
    status.add_argument("--json", action="store_true", help="print the API's JSON")
    status.set_defaults(func=cmd_status)

    events = subparsers.add_parser("events", parents=[conn], help="show a job's events")
    events.add_argument("job_id", metavar="ID")
    events.add_argument("--follow", "-f", action="store_true", help="stream new events until the job ends")
    events.add_argument("--after", type=int, metavar="SEQ", help="only events after this sequence number")
    events.add_argument("--json", action="store_true", help="print one JSON event per line")
    events.set_defaults(func=cmd_events)

    logs = subparsers.add_parser("logs", parents=[conn], help="print a job's training log")
    logs.add_argument("job_id", metavar="ID")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing as the log grows")
    logs.set_defaults(func=cmd_logs)

    cancel = subparsers.add_parser("cancel", parents=[conn], help="cancel a queued or running job")
    cancel.add_argument("job_id", metavar="ID")
    cancel.add_argument("--json", action="store_true", help="print the API's JSON")
    cancel.set_defaults(func=cmd_cancel)

    jobs = subparsers.add_parser("jobs", parents=[conn], help="list jobs, newest first")
    jobs.add_argument("--status", choices=[s.value for s in JobStatus], help="only jobs in this status")
    jobs.add_argument("--tag", help="only jobs with this tag")
    jobs.add_argument("--limit", type=_positive_int, default=20, help="at most this many (default 20)")
    jobs.add_argument("--json", action="store_true", help="print the API's JSON")
    jobs.set_defaults(func=cmd_jobs)

    trainers = subparsers.add_parser("trainers", parents=[conn], help="list trainers, or one's override keys")
    trainers.add_argument("name", nargs="?", help="show the override keys this trainer accepts")
    trainers.add_argument("--json", action="store_true", help="print the API's JSON")
    trainers.set_defaults(func=cmd_trainers)

    artifacts = subparsers.add_parser("artifacts", parents=[conn], help="list a job's artifacts")
    artifacts.add_argument("job_id", metavar="ID")
    artifacts.add_argument("--json", action="store_true", help="print the API's JSON")
    artifacts.set_defaults(func=cmd_artifacts)

    workers = subparsers.add_parser("workers", parents=[conn], help="list live workers and their devices")
    workers.add_argument("--json", action="store_true", help="print the API's JSON")
    workers.set_defaults(func=cmd_workers)

    download = subparsers.add_parser("download", parents=[conn], help="download one artifact of a job")
    download.add_argument("job_id", metavar="ID")
    download.add_argument("name", help="artifact name, e.g. best.pt")
    download.add_argument("-o", "--output", default=".", help="folder or file to write (default: .)")
    download.set_defaults(func=cmd_download)


def _register_submit(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], conn: argparse.ArgumentParser
) -> None:
    submit = subparsers.add_parser(
        "submit",
        parents=[conn],
        help="submit a training job",
        description="Submit a training job. Overrides are key=value, read as YAML scalars "
        "(epochs=3 is an int, lr0=0.01 a float, amp=false a bool, device=0,1 a string).",
    )
    submit.add_argument(
        "trainer", help="a trainer name (classify, detect) or an allowed package.module:Class"
    )
    submit.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="trainer overrides")
    submit.add_argument("--name", help="a name for the job")
    submit.add_argument("--tag", action="append", dest="tags", metavar="TAG", help="tag the job (repeatable)")
    submit.add_argument(
        "--webhook", action="append", dest="webhooks", metavar="URL", help="POST events to URL (repeatable)"
    )
    submit.add_argument("--gpus", type=_positive_int, help="GPUs the job needs")
    submit.add_argument(
        "--gpu-memory", type=_positive_float, metavar="GB", help="memory each of its GPUs must have (GB)"
    )
    submit.add_argument("--queue", help="worker queue to run on")
    submit.add_argument("--priority", type=int, help="higher runs first")
    submit.add_argument("--idempotency-key", help="a retried submit with the same key returns the same job")
    submit.add_argument("--follow", "-f", action="store_true", help="print each epoch until the job ends")
    submit.add_argument("--json", action="store_true", help="print the API's JSON")
    submit.set_defaults(func=cmd_submit)


def _connection_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("server")
    group.add_argument(
        "--url",
        default=None,
        help=f"API base URL (default: $TRAINFORGE_URL or {DEFAULT_URL})",
    )
    group.add_argument("--token", default=None, help="API token (default: $TRAINFORGE_TOKEN)")
    return parent


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not positive; give 1 or more")
    return value


def _positive_float(text: str) -> float:
    """Parse a number > 0 for argparse."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number greater than 0")
    return value


def make_client(args: argparse.Namespace) -> TrainforgeClient:
    """Build a client from --url/--token; the client falls back to TRAINFORGE_URL / TRAINFORGE_TOKEN."""
    return TrainforgeClient(args.url or None, args.token or None)


def api_command(fn: Callable[[argparse.Namespace, TrainforgeClient], int]) -> Handler:
    """Run a command with a client; turn API errors into a message on stderr and exit code 1."""

    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        client = make_client(args)
        try:
            return fn(args, client)
        except TrainforgeError as exc:
            print(f"error: {exc.message}{_hint(exc)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            # Output piped into `head` that closed early: nothing more to say.
            sys.stderr.close()
            return 0
        finally:
            client.close()

    return run


def _hint(exc: TrainforgeError) -> str:
    if exc.status == 401:
        return (
            "\nhint: pass --token or set TRAINFORGE_TOKEN; an operator creates one with "
            "`trainforge token create --tenant NAME`"
        )
    if exc.status is not None and exc.status >= 500:
        return f" (HTTP {exc.status}; the server's log has the details)"
    return ""


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


# -- commands ---------------------------------------------------------------------------------------


@api_command
def cmd_submit(args: argparse.Namespace, client: TrainforgeClient) -> int:
    """Submit a job, then print its id, or follow it to the end."""
    try:
        overrides = parse_overrides(args.overrides)
    except OverrideError as exc:
        print(f"trainforge submit: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    wanted = (("gpus", args.gpus), ("queue", args.queue), ("gpu_memory_gb", args.gpu_memory))
    resources = {key: value for key, value in wanted if value}
    job = client.submit(
        args.trainer,
        overrides,
        webhooks=args.webhooks,
        name=args.name,
        tags=args.tags,
        idempotency_key=args.idempotency_key,
        resources=resources or None,
        priority=args.priority,
    )
    if args.json and not args.follow:
        _print_json(job)
        return 0
    job_id = job["id"]
    # With --json --follow, stdout carries only JSON Lines of events; the note goes to stderr.
    note = sys.stderr if args.json else sys.stdout
    print(f"submitted job {job_id} ({args.trainer}, {job.get('status', 'queued')})", file=note, flush=True)
    if not args.follow:
        print(f"follow it with: trainforge events {job_id} --follow")
        return 0
    return follow_job(client, job_id, json_lines=args.json)


@api_command
def cmd_status(args: argparse.Namespace, client: TrainforgeClient) -> int:
    """Show one job."""
    job = client.status(args.job_id)
    if args.json:
        _print_json(job)
    else:
        print(output.job_block(job))
    return 0


@api_command
def cmd_events(args: argparse.Namespace, client: TrainforgeClient) -> int:
    """Print a job's stored events, or stream them live with --follow."""
    events: Iterable[Mapping[str, Any]]
    if args.follow:
        events = client.stream_events(args.job_id, last_event_id=args.after)
    else:
        events = client.events(args.job_id, after=args.after)
    try:
        for event in events:
            print(json.dumps(event, default=str) if args.json else output.event_line(event), flush=True)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return 0


@api_command
def cmd_logs(args: argparse.Namespace, client: TrainforgeClient) -> int:
    """Print a job's training log."""
    if not args.follow:
        try:
            sys.stdout.write(client.logs(args.job_id))
        except TrainforgeError as exc:
            # The API speaks HTTP ("?follow=true"); say it the way this command spells it.
            exc.message = exc.message.replace("?follow=true", f"trainforge logs {args.job_id} --follow")
            raise
        return 0
    try:
        for chunk in client.logs(args.job_id, follow=True):
            sys.stdout.write(chunk)
            sys.stdout.flush()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return 0


@api_command
def cmd_cancel(args: argparse.Namespace, client: TrainforgeClient) -> int:
    """Cancel a job."""
    job = client.cancel(args.job_id)
    if args.json:
        _print_json(job)
    elif job and job.get("status") == "cancelling":
        print(f"job {args.job_id} is cancelling: it stops at the next batch and saves last.pt")
    else:
        print(f"job {args.job_id} {job.get('status', 'cancelled') if job else 'cancelled'}")
    return 0


@api_command
def cmd_jobs(args: argparse.Namespace, client: TrainforgeClient) -> int:
    """List the tenant's jobs."""
    jobs = client.list(status=args.status, tag=args.tag, limit=args.limit)
    if args.json:
        _print_json(jobs)
    elif not jobs:
        print("no jobs" + (" match" if args.status or args.tag else " yet"))
    else:
        print(output.jobs_table(jobs))
    return 0


@api_command
def cmd_trainers(args: argparse.Namespace, client: TrainforgeClient) -> int:
    """List trainers, or one trainer's override keys."""
    trainers = client.trainers()
    if args.name:
        chosen = [trainer for trainer in trainers if trainer.get("name") == args.name]
        if not chosen:
            names = ", ".join(str(trainer.get("name")) for trainer in trainers) or "none"
            print(f"error: no trainer named {args.name!r}; this server has: {names}", file=sys.stderr)
            return 1
        trainers = chosen
    if args.json:
        _print_json(trainers[0] if args.name else trainers)
    elif args.name:
        schema = trainers[0].get("overrides") or {}
        print(output.schema_table(schema))
    else:
        print(output.trainers_table(trainers))
    return 0


@api_command
def cmd_artifacts(args: argparse.Namespace, client: TrainforgeClient) -> int:
    """List a job's artifacts."""
    items = client.artifacts(args.job_id)
    if args.json:
        _print_json(items)
    elif not items:
        print(f"job {args.job_id} has no artifacts yet")
    else:
        rows = [(item.get("name"), item.get("size"), item.get("url")) for item in items]
        print(output.table(rows, ("name", "bytes", "url")))
    return 0


@api_command
def cmd_download(args: argparse.Namespace, client: TrainforgeClient) -> int:
    """Download one artifact."""
    path = client.download(args.job_id, args.name, args.output)
    print(path)
    return 0


@api_command
def cmd_workers(args: argparse.Namespace, client: TrainforgeClient) -> int:
    """List the live workers."""
    workers = client.workers()
    if args.json:
        _print_json(workers)
    elif not workers:
        print("no live workers: start one with `trainforge worker`")
    else:
        print(output.workers_table(workers))
    return 0
