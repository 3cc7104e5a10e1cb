"""The shared vocabulary: importable by any process without the database layer, and spelled once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from trainforge import queue, vocab
from trainforge.schemas import Resources
from trainforge.webhooks.catalog import LIFECYCLE_EVENT_TYPES

ROOT = Path(__file__).resolve().parents[2]


def test_vocab_imports_nothing_but_the_standard_library() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import trainforge.vocab\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(new - set(sys.stdlib_module_names) - {'trainforge'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_every_status_has_a_lifecycle_event_and_the_names_are_shared() -> None:
    assert set(vocab.LIFECYCLE_EVENTS) == set(vocab.JobStatus)
    assert {"job.succeeded", "job.failed", "job.cancelled"} == vocab.TERMINAL_EVENTS
    assert list(LIFECYCLE_EVENT_TYPES) == list(vocab.LIFECYCLE_EVENTS.values())
    assert queue.TASK_QUEUES[vocab.RUN_JOB] == vocab.JOBS_QUEUE == Resources().queue
    assert not (vocab.TERMINAL & vocab.WAITING) and not (vocab.LEASED & (vocab.TERMINAL | vocab.WAITING))
