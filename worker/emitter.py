"""Write a training child's events and progress from a background thread, in order.

The training loop only puts small dicts on a queue; this thread does the DB transaction and the
Redis publish (events.emit + commit), so a slow database never stalls a batch. Progress updates
are coalesced: only the newest waiting one is written.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import OperationalError

from trainforge import events
from trainforge.db.session import session_scope
from trainforge.jobs import repository

log = logging.getLogger(__name__)


@dataclass
class EventItem:
    """One event to persist, with the job columns (epoch, metrics, paths) it updates in the same commit."""

    type: str
    data: dict[str, Any]
    dedupe_key: str | None = None
    job_values: dict[str, Any] = field(default_factory=dict)
    fired_at: float = field(default_factory=time.time)


class Emitter:
    """A queue drained by one thread that records events and progress for one job."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self._queue: queue.Queue[EventItem | str | threading.Event | None] = queue.Queue()
        self._progress: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="trainforge-emitter", daemon=True)
        self._thread.start()

    def event(self, item: EventItem) -> None:
        """Queue an event (returns at once)."""
        self._queue.put(item)

    def progress(self, progress: dict[str, Any]) -> None:
        """Queue a progress update, replacing one that is still waiting."""
        with self._lock:
            pending = self._progress is not None
            self._progress = progress
        if not pending:
            self._queue.put("progress")

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far is written; return False on timeout."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the thread (waits up to `timeout` s)."""
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("job %s: events still unwritten after %.0f s", self.job_id, timeout)

    def _loop(self) -> None:
        """Write queued items until the closing marker."""
        while (item := self._queue.get()) is not None:
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                self._write(item)
            except Exception:  # never let bookkeeping kill training; the log keeps the reason
                log.exception("job %s: recording %r failed", self.job_id, getattr(item, "type", item))

    def _write(self, item: EventItem | str) -> None:
        """Persist one event or the latest progress (one retry when the database was briefly busy)."""
        for attempt in (1, 2):
            try:
                if isinstance(item, EventItem):
                    self._write_event(item)
                else:
                    self._write_progress()
                return
            except OperationalError:
                if attempt == 2:
                    raise
                time.sleep(0.5)

    def _write_event(self, item: EventItem) -> None:
        """Record the event and its job columns in one transaction; publish after commit."""
        with session_scope() as session:
            if item.job_values:
                repository.record_progress(session, self.job_id, **item.job_values)
            events.emit(session, self.job_id, item.type, item.data, dedupe_key=item.dedupe_key)

    def _write_progress(self) -> None:
        """Store the newest progress update on the job row."""
        with self._lock:
            progress, self._progress = self._progress, None
        if progress is None:
            return
        with session_scope() as session:
            repository.record_progress(session, self.job_id, progress=progress)
