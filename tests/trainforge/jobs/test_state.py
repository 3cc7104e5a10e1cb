"""The job state machine: allowed transitions, and races between sessions have one winner."""

from __future__ import annotations

import threading

import pytest
from shared_helpers import run_in_threads

from trainforge.db.models import Job
from trainforge.db.session import session_scope
from trainforge.jobs.state import TRANSITIONS, TransitionError, transition
from trainforge.vocab import TERMINAL, JobStatus


def test_terminal_statuses_have_no_way_out() -> None:
    for status in TERMINAL:
        assert TRANSITIONS[status] == frozenset()


def test_every_status_is_reachable_from_queued() -> None:
    seen, todo = {JobStatus.QUEUED}, [JobStatus.QUEUED]
    while todo:
        for nxt in TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(JobStatus)


def test_transition_moves_once_and_stamps(make_job) -> None:
    job_id = make_job()
    with session_scope() as s:
        assert transition(s, job_id, "running")
        assert not transition(s, job_id, "running")
        assert transition(s, job_id, "succeeded")
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job.status == "succeeded"
        assert job.started_at is not None and job.finished_at is not None
        assert job.started_at <= job.finished_at


def test_disallowed_transition_raises(make_job) -> None:
    job_id = make_job()
    with session_scope() as s, pytest.raises(TransitionError, match="cannot go from succeeded to running"):
        transition(s, job_id, "running", from_="succeeded")


def test_owner_guard(make_job) -> None:
    job_id = make_job(status="running", lease_owner="w1")
    with session_scope() as s:
        assert not transition(s, job_id, "succeeded", owner="w2")
        assert transition(s, job_id, "succeeded", owner="w1")


def test_two_sessions_racing_one_transition_one_wins(make_job) -> None:
    job_id = make_job()
    barrier = threading.Barrier(2)

    def race(target: str) -> bool:
        with session_scope() as s:
            barrier.wait(timeout=30)
            return transition(s, job_id, target, from_="queued")

    results = run_in_threads(lambda: race("running"), lambda: race("cancelled"))
    assert sorted(results) == [False, True]
    winner = "running" if results[0] else "cancelled"
    with session_scope() as s:
        assert s.get(Job, job_id).status == winner


def test_many_racers_one_winner(make_job) -> None:
    job_id = make_job()
    barrier = threading.Barrier(6)

    def race(name: str) -> bool:
        with session_scope() as s:
            barrier.wait(timeout=30)
            return transition(s, job_id, "running", values={"lease_owner": name})

    results = run_in_threads(*(lambda n=n: race(f"racer-{n}") for n in range(6)))
    assert results.count(True) == 1
    with session_scope() as s:
        assert s.get(Job, job_id).lease_owner == f"racer-{results.index(True)}"
