"""Render jobs, events and trainers for people: tables, key/value blocks, one line per epoch."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

BAR_WIDTH = 24
_EPOCH_EVENTS = {"on_fit_epoch_end", "on_train_epoch_end"}


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Lay rows out in left-aligned columns under upper-case headers."""
    cells = [[str(header).upper() for header in headers]] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[col]) for row in cells) for col in range(len(headers))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value) or "-"
    return str(value)


def number(value: Any) -> str:
    """Format a metric: 4 significant digits, integers as they are."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.4g}"


def short_key(key: str) -> str:
    """Shorten a metric name for one line: "metrics/accuracy_top1" -> "accuracy_top1", "train/loss" ->
    "loss", and "val/loss" -> "val_loss", so training and validation losses stay apart."""
    section, sep, name = key.partition("/")
    if not sep:
        return key
    return f"val_{name}" if section == "val" else name


def metrics_text(*groups: Any) -> str:
    """Render one or more metric dicts as `name value` pairs on one line."""
    parts = []
    for group in groups:
        if not isinstance(group, Mapping):
            continue  # an API older or newer than this CLI may send another shape: show what we can
        for key, value in group.items():
            if isinstance(value, int | float):
                parts.append(f"{short_key(key)} {number(value)}")
    return "  ".join(parts)


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """Draw a progress bar for a fraction between 0 and 1."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = round(fraction * width)
    return "[" + "#" * filled + "." * (width - filled) + f"] {fraction * 100:3.0f}%"


def epoch_line(data: Mapping[str, Any]) -> str:
    """One line for an ended epoch: `epoch 2/3 [####....]  67%  loss 0.41  accuracy_top1 0.8  *best`."""
    epoch, epochs = data.get("epoch"), data.get("epochs")
    head = f"epoch {epoch}/{epochs}" if epochs else f"epoch {epoch}"
    if isinstance(epoch, int) and isinstance(epochs, int) and epochs > 0:
        head = f"epoch {epoch:>{len(str(epochs))}}/{epochs} {bar(epoch / epochs)}"
    text = metrics_text(data.get("losses"), data.get("metrics"))
    line = f"{head}  {text}" if text else head
    fitness, best_fitness = data.get("fitness"), data.get("best_fitness")
    if isinstance(fitness, int | float) and fitness == best_fitness:
        line += "  *best"
    return line


def event_summary(event: Mapping[str, Any]) -> str:
    """Say in a few words what an event carries."""
    data = event.get("data") or {}
    kind = event.get("type", "")
    if not isinstance(data, Mapping):
        return _clip(json.dumps(data, default=str))
    if kind in _EPOCH_EVENTS and "epoch" in data:
        epochs = f"/{data['epochs']}" if data.get("epochs") else ""
        return (
            f"epoch {data['epoch']}{epochs}  {metrics_text(data.get('losses'), data.get('metrics'))}".rstrip()
        )
    if data.get("error"):
        return _clip(str(data["error"]))
    if not data:
        return ""
    return _clip(json.dumps(data, default=str, separators=(",", ":")))


def _clip(text: str, limit: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def event_line(event: Mapping[str, Any]) -> str:
    """One line per event: sequence number, time, type and a summary."""
    stamp = short_time(event.get("created_at"))
    return (
        f"{event.get('seq', '-'):>4}  {stamp}  {event.get('type', '?'):<22}  {event_summary(event)}".rstrip()
    )


def short_time(value: Any) -> str:
    """Show an ISO timestamp as `YYYY-MM-DD HH:MM:SS` (UTC as the API gives it)."""
    if not isinstance(value, str):
        return "-" if value is None else str(value)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return value


def job_epoch(job: Mapping[str, Any]) -> str:
    """Show `k/n` for a job's epoch, or `-` before it starts."""
    epoch, epochs = job.get("epoch"), job.get("epochs")
    if epoch is None and epochs is None:
        return "-"
    return f"{epoch if epoch is not None else 0}/{epochs if epochs is not None else '?'}"


def jobs_table(jobs: Iterable[Mapping[str, Any]]) -> str:
    """Tabulate jobs, newest first as the API sends them."""
    rows = [
        (
            job.get("id"),
            job.get("name"),
            job.get("trainer"),
            job.get("status"),
            job_epoch(job),
            short_time(job.get("created_at")),
            job.get("tags"),
        )
        for job in jobs
    ]
    return table(rows, ("id", "name", "trainer", "status", "epoch", "created", "tags"))


def job_block(job: Mapping[str, Any]) -> str:
    """Show one job as aligned `key  value` lines, the interesting fields first."""
    pairs: list[tuple[str, Any]] = [
        ("id", job.get("id")),
        ("name", job.get("name")),
        ("trainer", job.get("trainer")),
        ("status", job.get("status")),
        ("position", job.get("position")),
        ("waiting", job.get("pending_reason")),
        ("worker", job.get("worker")),
        ("epoch", _epoch_progress(job)),
        ("metrics", metrics_text(job.get("metrics")) or None),
        ("best", _link(job, "best")),
        ("last", _link(job, "last")),
        ("error", job.get("error")),
        ("stop reason", job.get("stop_reason")),
        ("tags", ", ".join(job.get("tags") or []) or None),
        ("created", _time_or_none(job.get("created_at"))),
        ("started", _time_or_none(job.get("started_at"))),
        ("finished", _time_or_none(job.get("finished_at"))),
    ]
    shown = [(key, value) for key, value in pairs if value not in (None, "")]
    width = max(len(key) for key, _ in shown)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in shown)


def _time_or_none(value: Any) -> str | None:
    return None if value is None else short_time(value)


def _epoch_progress(job: Mapping[str, Any]) -> str | None:
    if job.get("epoch") is None and job.get("epochs") is None:
        return None
    text = job_epoch(job)
    fraction = progress_fraction(job)
    return f"{text} {bar(fraction)}" if fraction is not None else text


def progress_fraction(job: Mapping[str, Any]) -> float | None:
    """How far the whole run is, from the job's progress field or else its epoch counter."""
    progress = job.get("progress")
    if isinstance(progress, Mapping):
        batch, batches = progress.get("batch"), progress.get("batches")
        # progress["epoch"] is the 1-based epoch in progress; job["epoch"] the last one finished.
        epoch = progress.get("epoch", (job.get("epoch") or 0) + 1)
        epochs = progress.get("epochs", job.get("epochs"))
        if all(isinstance(value, int) for value in (batch, batches, epoch, epochs)) and batches and epochs:
            return min(((epoch - 1) + batch / batches) / epochs, 1.0)
    epoch, epochs = job.get("epoch"), job.get("epochs")
    if isinstance(epoch, int) and isinstance(epochs, int) and epochs > 0:
        return epoch / epochs
    return None


def _link(job: Mapping[str, Any], name: str) -> str | None:
    links = job.get("links")
    return str(links[name]) if isinstance(links, Mapping) and links.get(name) else None


def devices_text(devices: Mapping[str, Any]) -> str:
    """Say what a worker trains on: "cpu", or "2 x A100 (80 GB)"; "declared" when not detected."""
    if devices.get("kind") == "cpu" or not devices.get("count"):
        text = "cpu"
    else:
        memory = devices.get("memory_gb")
        text = f"{devices.get('count')} x {devices.get('name')}" + (f" ({memory:g} GB)" if memory else "")
    return f"{text}, declared" if devices.get("source") == "declared" else text


def workers_table(workers: Iterable[Mapping[str, Any]]) -> str:
    """Tabulate live workers: queues, devices, how full they are, your jobs on them, last heartbeat."""
    rows = [
        (
            worker.get("id"),
            worker.get("queues"),
            devices_text(worker.get("devices") or {}),
            f"{worker.get('running')}/{worker.get('slots')}",
            worker.get("jobs"),
            short_time(worker.get("heartbeat_at")),
        )
        for worker in workers
    ]
    return table(rows, ("worker", "queues", "devices", "running", "your jobs", "heartbeat"))


def trainers_table(trainers: Iterable[Mapping[str, Any]]) -> str:
    """Tabulate trainers with what each runs and how many override keys it accepts."""
    rows = []
    for trainer in trainers:
        keys = trainer.get("overrides") or {}
        rows.append((trainer.get("name"), trainer.get("task"), trainer.get("ref"), len(keys)))
    return table(rows, ("name", "task", "class", "override keys"))


def schema_table(schema: Mapping[str, Mapping[str, Any]]) -> str:
    """Tabulate one trainer's override keys (TrainerPublic.overrides): name, type, default and help."""
    items = [{"name": key, **value} for key, value in schema.items()]
    rows = [
        (
            item.get("name"),
            item.get("type"),
            _default(item.get("default")),
            item.get("help"),
        )
        for item in items
    ]
    return table(rows, ("key", "type", "default", "help"))


def _default(value: Any) -> str:
    return json.dumps(value) if value is None or isinstance(value, bool) else str(value)
