"""Write a training child's events and progress from a background thread, in order, losing none.

The training loop only puts small dicts on a queue; this thread does the DB transaction and the
Redis publish (events.emit + commit), so a slow database never stalls a batch. Progress updates
are coalesced: only the newest waiting one is written.

While the database is unreachable, events wait in order in a backlog that is mirrored to the run's
spool file (`RunDir.spool(attempt)`), and the head is retried with backoff until it is written or
the run is stopped; its supervisor stops the run before its lease can pass to another worker. What
a stopped run leaves in its spool, the next attempt writes first (worker.resume). Every event has a
dedupe key, so writing one again after a commit whose answer was lost stores it once.

Each write passes the run's fence (lease owner + attempt): once the lease has moved on, the run's
writes are refused, the backlog is dropped and nothing more is written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from trainforge import events
from trainforge.db.session import session_scope
from trainforge.jobs import repository
from trainforge.jobs.fence import Fence, LeaseLostError

log = logging.getLogger(__name__)

RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0


@dataclass
class EventItem:
    """One event to persist, with the job columns (epoch, metrics, paths) it updates in the same commit."""

    type: str
    data: dict[str, Any]
    dedupe_key: str | None = None
    job_values: dict[str, Any] = field(default_factory=dict)
    fired_at: float = field(default_factory=time.time)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventItem:
        """Rebuild an item from its spooled form."""
        return cls(**data)


def transient(exc: BaseException) -> bool:
    """Return whether a failed write may succeed later (the database is away, busy or restarting)."""
    return isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or type(exc).__name__ in {"OperationalError", "InterfaceError"}
    )


def read_spool(path: Path) -> list[EventItem]:
    """Return the events a spool file holds, in order (a torn last line is skipped)."""
    items = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text().splitlines():
            try:
                items.append(EventItem.from_dict(json.loads(line)))
            except (ValueError, TypeError):
                log.warning("skipping an unreadable line of %s", path)
    return items


class Emitter:
    """A queue drained by one thread that records events and progress for one job."""

    def __init__(self, job_id: str, fence: Fence | None = None, spool: Path | None = None) -> None:
        self.job_id = job_id
        self.fence = fence
        self.spool = spool
        # Set once the lease has moved on: nothing of this run is written any more.
        self.fenced = False
        self._queue: queue.Queue[EventItem | str | threading.Event | None] = queue.Queue()
        self._backlog: deque[EventItem] = deque()
        self._retry_s = RETRY_FIRST_S
        self._retry_at = 0.0
        self._progress: dict[str, Any] | None = None
        self._close_by = float("inf")
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="trainforge-emitter", daemon=True)
        self._thread.start()

    def event(self, item: EventItem) -> None:
        """Queue an event (returns at once)."""
        if item.dedupe_key is None:  # a retried write must be recognisable as the same event
            item.dedupe_key = f"{item.type}:{uuid.uuid4().hex}"
        self._queue.put(item)

    def progress(self, progress: dict[str, Any]) -> None:
        """Queue a progress update, replacing one that is still waiting."""
        with self._lock:
            pending = self._progress is not None
            self._progress = progress
        if not pending:
            self._queue.put("progress")

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far is kept: written, or in the spool file; False on timeout."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def pending(self) -> int:
        """Return how many events wait for the database."""
        return len(self._backlog)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the thread; what the database did not take stays spooled."""
        self._close_by = time.monotonic() + timeout
        self._queue.put(None)
        self._thread.join(timeout + 5)
        if self._backlog:
            log.warning(
                "job %s: %d event(s) left in %s for the next attempt",
                self.job_id,
                len(self._backlog),
                self.spool,
            )

    # --- the writer thread ---------------------------------------------------------------------

    def _loop(self) -> None:
        """Write queued items in order until the closing marker, retrying the backlog meanwhile."""
        while True:
            wait = max(0.0, self._retry_at - time.monotonic()) if self._backlog or self._progress else None
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                self._drain()
                continue
            if item is None:
                break
            if isinstance(item, threading.Event):
                item.set()  # earlier items were handled in order: written, spooled or refused
            elif isinstance(item, EventItem):
                self._add(item)
            elif time.monotonic() >= self._retry_at:  # new progress; during an outage it waits its turn
                self._drain()
        while (self._backlog or self._progress) and not self.fenced and time.monotonic() < self._close_by:
            time.sleep(max(0.0, min(self._retry_at - time.monotonic(), self._close_by - time.monotonic())))
            self._drain()

    def _add(self, item: EventItem) -> None:
        """Take a new event: write it now unless earlier ones still wait (order is kept)."""
        if self.fenced:
            return
        self._backlog.append(item)
        if len(self._backlog) > 1:
            self._save_spool()
            return
        self._drain()

    def _drain(self) -> None:
        """Write the backlog head first, then the newest progress; stop at the first transient failure."""
        while self._backlog and not self.fenced:
            head = self._backlog[0]
            if not self._attempt(partial(self._write_event, head), head.type):
                return
            self._backlog.popleft()
            self._save_spool()
        if not self.fenced and not self._backlog:
            with self._lock:
                progress = self._progress
            if progress is not None and self._attempt(partial(self._write_progress, progress), "progress"):
                with self._lock:
                    if self._progress is progress:
                        self._progress = None

    def _attempt(self, write: Callable[[], None], what: str) -> bool:
        """Run one write; return False when it should be retried later (the backlog keeps it)."""
        try:
            write()
        except LeaseLostError as exc:
            log.warning("job %s: %s; dropping %d unwritten event(s)", self.job_id, exc, len(self._backlog))
            self.fenced = True
            self._backlog.clear()
            with self._lock:
                self._progress = None
            self._save_spool()
            return False
        except Exception as exc:
            if not transient(exc):  # never let bookkeeping kill training; the log keeps the reason
                log.exception("job %s: recording %s failed; dropping it", self.job_id, what)
                return True
            log.warning(
                "job %s: database unreachable (%s); retrying in %.1f s", self.job_id, exc, self._retry_s
            )
            self._save_spool()
            self._retry_at = time.monotonic() + self._retry_s
            self._retry_s = min(self._retry_s * 2, RETRY_MAX_S)
            return False
        self._retry_s = RETRY_FIRST_S
        self._retry_at = 0.0
        return True

    def _save_spool(self) -> None:
        """Mirror the backlog to the spool file (removed when empty), atomically."""
        if self.spool is None:
            return
        if not self._backlog:
            self.spool.unlink(missing_ok=True)
            return
        tmp = self.spool.with_name(f"{self.spool.name}.{os.getpid()}.tmp")
        try:
            tmp.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text("".join(json.dumps(asdict(item)) + "\n" for item in self._backlog))
            os.replace(tmp, self.spool)
        except OSError as exc:  # the backlog in memory still holds them
            log.warning("job %s: cannot write the event spool %s: %s", self.job_id, self.spool, exc)

    def _write_event(self, item: EventItem) -> None:
        """Record the event and its job columns in one transaction; publish after commit."""
        with session_scope() as session:
            if item.job_values:
                repository.record_progress(session, self.job_id, fence=self.fence, **item.job_values)
            events.emit(
                session, self.job_id, item.type, item.data, dedupe_key=item.dedupe_key, fence=self.fence
            )

    def _write_progress(self, progress: dict[str, Any]) -> None:
        """Store the newest progress update on the job row."""
        with session_scope() as session:
            repository.record_progress(session, self.job_id, progress=progress, fence=self.fence)
