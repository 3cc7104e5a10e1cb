"""events.emit: per-job seq in order without gaps, dedupe, and a Redis publish only after commit."""

from __future__ import annotations

import json
import threading

import pytest
import redis
from shared_helpers import run_in_threads

from trainforge import events
from trainforge.db.models import Job, JobEvent
from trainforge.db.session import session_scope
from trainforge.pubsub import events_channel


def _seqs(job_id: str) -> list[int]:
    with session_scope() as s:
        return [e.seq for e in events.list_events(s, job_id, limit=1000)]


def test_seq_counts_up_per_job(make_job) -> None:
    a, b = make_job(), make_job()
    with session_scope() as s:
        for i in range(3):
            assert events.emit(s, a, "tick", {"i": i})["seq"] == i + 1
        assert events.emit(s, b, "tick")["seq"] == 1
    assert _seqs(a) == [1, 2, 3]
    assert _seqs(b) == [1]


def test_event_json_shape(make_job) -> None:
    job_id = make_job()
    with session_scope() as s:
        payload = events.emit(s, job_id, "on_fit_epoch_end", {"epoch": 1, "metrics": {"acc": 0.5}})
    assert set(payload) == {"id", "job_id", "seq", "type", "created_at", "data"}
    assert payload["created_at"].endswith("Z")
    assert payload["data"]["metrics"] == {"acc": 0.5}


def test_dedupe_key_makes_reemission_a_noop_without_gaps(make_job) -> None:
    job_id = make_job()
    with session_scope() as s:
        assert events.emit(s, job_id, "on_fit_epoch_end", {"epoch": 1}, dedupe_key="on_fit_epoch_end:1")
    with session_scope() as s:
        assert (
            events.emit(s, job_id, "on_fit_epoch_end", {"epoch": 1}, dedupe_key="on_fit_epoch_end:1") is None
        )
        assert (
            events.emit(s, job_id, "on_fit_epoch_end", {"epoch": 2}, dedupe_key="on_fit_epoch_end:2")["seq"]
            == 2
        )
    assert _seqs(job_id) == [1, 2]
    with session_scope() as s:
        assert s.get(Job, job_id).event_seq == 2


def test_unknown_job_raises(settings_env) -> None:
    with session_scope() as s, pytest.raises(events.UnknownJobError):
        events.emit(s, "00000000-0000-0000-0000-000000000000", "tick")


def test_rollback_discards_event_and_publish(make_job, redis_url) -> None:
    job_id = make_job()
    pubsub = redis.Redis.from_url(redis_url).pubsub()
    pubsub.subscribe(events_channel(job_id))
    pubsub.get_message(timeout=1)  # the subscribe confirmation
    with pytest.raises(RuntimeError), session_scope() as s:
        events.emit(s, job_id, "tick")
        raise RuntimeError("boom")
    assert _seqs(job_id) == []
    assert pubsub.get_message(timeout=0.3) is None
    pubsub.close()


def test_publish_happens_after_commit(make_job, redis_url) -> None:
    job_id = make_job()
    pubsub = redis.Redis.from_url(redis_url).pubsub()
    pubsub.subscribe(events_channel(job_id))
    pubsub.get_message(timeout=1)
    with session_scope() as s:
        events.emit(s, job_id, "tick", {"n": 1})
        assert pubsub.get_message(timeout=0.2) is None  # not before COMMIT
    message = pubsub.get_message(timeout=2)
    assert message is not None and json.loads(message["data"])["seq"] == 1
    pubsub.close()


def test_concurrent_emitters_get_distinct_gapless_seqs(make_job) -> None:
    job_id = make_job()
    barrier = threading.Barrier(4)

    def emit_many(n: int) -> None:
        barrier.wait(timeout=30)
        for i in range(5):
            with session_scope() as s:
                events.emit(s, job_id, "tick", dedupe_key=f"{n}:{i}")

    # A deadlock fails here (the threads must end); their exceptions are raised here too.
    run_in_threads(*(lambda n=n: emit_many(n) for n in range(4)))
    assert _seqs(job_id) == list(range(1, 21))


def test_concurrent_same_dedupe_key_records_once(make_job) -> None:
    job_id = make_job()
    barrier = threading.Barrier(4)

    def emit_once() -> object:
        barrier.wait(timeout=30)
        with session_scope() as s:
            return events.emit(s, job_id, "on_fit_epoch_end", dedupe_key="on_fit_epoch_end:1")

    results = run_in_threads(*[emit_once] * 4)
    assert sum(r is not None for r in results) == 1
    with session_scope() as s:
        assert s.query(JobEvent).filter_by(job_id=job_id).count() == 1


def test_non_finite_metrics_are_stored_as_null(make_job) -> None:
    job_id = make_job()
    with session_scope() as s:
        events.emit(
            s, job_id, "on_fit_epoch_end", {"metrics": {"loss": float("nan"), "acc": float("inf"), "ok": 1.5}}
        )
    with session_scope() as s:
        data = events.list_events(s, job_id)[0].data
    assert data == {"metrics": {"loss": None, "acc": None, "ok": 1.5}}
