"""Follow a job to its end: a line per ended epoch; on a terminal, a live bar for the epoch in progress."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any, TextIO

from trainforge.cli import output
from trainforge.client import TrainforgeClient, TrainforgeError
from trainforge.vocab import TERMINAL_EVENTS

EXIT_INTERRUPTED = 130
CLEAR_LINE = "\r\033[K"


def follow_job(
    client: TrainforgeClient,
    job_id: str,
    json_lines: bool = False,
    out: TextIO | None = None,
    poll_s: float = 1.0,
) -> int:
    """Print each ended epoch with a progress bar until the job ends; return 0 only if it succeeded."""
    out = out or sys.stdout
    live = not json_lines and out.isatty()
    try:
        with Ticker(client, job_id, out, poll_s, enabled=live) as ticker:
            for event in client.stream_events(job_id):
                line = json.dumps(event, default=str) if json_lines else follow_line(event, job_id)
                if line:
                    ticker.print(line)
    except KeyboardInterrupt:
        print(
            f"\nstopped following; job {job_id} keeps running (trainforge cancel {job_id} stops it)", file=out
        )
        return EXIT_INTERRUPTED
    return 0 if client.status(job_id).get("status") == "succeeded" else 1


def follow_line(event: Mapping[str, Any], job_id: str) -> str | None:
    """Say what a followed event means to a person, or None to stay quiet about it."""
    kind, data = event.get("type"), event.get("data") or {}
    if kind == "on_fit_epoch_end":
        return output.epoch_line(data)
    if kind == "job.started":
        return f"job {job_id} started" + (f" on {data['worker']}" if data.get("worker") else "")
    if kind == "job.retrying":
        reason = data.get("reason") or data.get("error") or "its worker was lost"
        return f"job {job_id} is retrying ({reason}); it resumes from last.pt"
    if kind == "job.cancelling":
        return f"job {job_id} is cancelling: it stops at the next batch and saves last.pt"
    if kind in TERMINAL_EVENTS:
        return _end_line(str(kind).removeprefix("job."), data, job_id)
    return None


def _end_line(status: str, data: Mapping[str, Any], job_id: str) -> str:
    if status == "failed":
        return f"job {job_id} failed: {data.get('error') or 'no error message'}"
    parts = [f"job {job_id} {status}"]
    metrics = output.metrics_text(data.get("metrics"))
    if metrics:
        parts.append(metrics)
    for name in ("best", "last"):
        if data.get(name):
            parts.append(f"{name}: {artifact_link(job_id, name, str(data[name]))}")
    return "  ".join(parts)


def artifact_link(job_id: str, name: str, path: str) -> str:
    """Return the download path of a checkpoint the job recorded relative to its run folder."""
    if path.startswith("/v1/"):
        return path
    alias = f"{name}.pt"  # the API's name for weights/best.pt and weights/last.pt
    if path != f"weights/{alias}" and not path.startswith("/") and ".." not in path.split("/"):
        alias = path
    return f"/v1/jobs/{job_id}/artifacts/{alias}"


def live_line(job: Mapping[str, Any]) -> str | None:
    """The redrawn line for a running job: the whole run's bar and the batch within the epoch."""
    fraction = output.progress_fraction(job)
    if job.get("status") != "running" or fraction is None:
        return None
    raw = job.get("progress")
    progress: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    batch, batches = progress.get("batch"), progress.get("batches")
    epoch = progress.get("epoch", (job.get("epoch") or 0) + 1)
    where = f"epoch {epoch}/{job.get('epochs') or '?'}"
    if batch is not None and batches:
        where += f" batch {batch}/{batches}"
    losses = output.metrics_text(progress.get("losses"))
    return f"{where} {output.bar(fraction)}" + (f"  {losses}" if losses else "")


class Ticker:
    """Redraw one status line from the job's progress field while epoch lines scroll above it.

    Epoch events carry the per-epoch numbers; within an epoch only the job's throttled progress
    field moves, so on a terminal a thread polls it. Off a terminal it only prints lines.
    """

    def __init__(
        self, client: TrainforgeClient, job_id: str, out: TextIO, poll_s: float, enabled: bool
    ) -> None:
        self.client, self.job_id, self.out, self.poll_s = client, job_id, out, poll_s
        self.enabled = enabled
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._shown = ""
        self._thread = threading.Thread(target=self._run, name="trainforge-ticker", daemon=True)

    def __enter__(self) -> Ticker:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self.enabled:
            self._thread.join(timeout=self.poll_s + 5)
            self._draw("")

    def print(self, line: str) -> None:
        """Print a line above the live status line."""
        with self._lock:
            if self._shown:
                self.out.write(CLEAR_LINE)
            self.out.write(line + "\n")
            if self._shown:
                self.out.write(self._shown)
            self.out.flush()

    def _draw(self, text: str) -> None:
        with self._lock:
            if text != self._shown:
                self.out.write(CLEAR_LINE + text)
                self.out.flush()
                self._shown = text

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                job = self.client.status(self.job_id)
            except TrainforgeError:
                continue  # the event stream reports real trouble; the bar just stays as it was
            self._draw(live_line(job) or "")
