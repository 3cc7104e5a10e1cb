"""What every trial asserts, read from the trial's database (the truth) and its webhook receiver.

- the job ends in the status the trial's row of the table says;
- its events are numbered 1..n with no gap and no repeat, and `on_fit_epoch_end` is stored exactly
  once for every epoch;
- its lifecycle events walk the state machine (each step allowed, one terminal event, last), and the
  row's status is where that walk ends: no job is ever in two states;
- every event matching the job's webhook reached the receiver, signed, as one delivery (one
  `webhook-id`, perhaps retried), and every delivery row says succeeded.
"""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from tests.webhooks.receiver import Receiver
from trainforge.db.models import Job, JobEvent, WebhookDelivery
from trainforge.jobs.state import can_transition
from trainforge.vocab import LIFECYCLE_EVENTS, TERMINAL_EVENTS, JobStatus

from .cluster import Cluster, wait_for

# A real small training run: tiny-cls on a synthetic two-class set, four batches of eight 16 px images
# per epoch, each batch slowed by 0.1 s (SlowTrainer) so a fault lands in the middle of an epoch.
SLOW_TRAINER = "tests.integration.trainers:SlowTrainer"
TINY = {
    "data": "synthetic:classify?classes=2&train=32&val=8&size=16",
    "imgsz": 16,
    "batch": 8,
    "workers": 0,
    "plots": False,
}
HOOK_EVENTS = ["on_fit_epoch_end", "job.*"]
STATUS_OF_EVENT = {event: status for status, event in LIFECYCLE_EVENTS.items()}


def new_hook(url: str) -> dict[str, Any]:
    """Return an inline webhook for the job's epoch ends and lifecycle, with a secret we know."""
    from trainforge.webhooks.signing import generate_secret

    return {"url": url, "events": HOOK_EVENTS, "secret": generate_secret()}


def job_body(epochs: int, hook: dict[str, Any] | None, **overrides: Any) -> dict[str, Any]:
    """Return the POST /v1/jobs body of the trial's training job."""
    body: dict[str, Any] = {
        "trainer": SLOW_TRAINER,
        "task": "classify",
        "overrides": {**TINY, "epochs": epochs, **overrides},
    }
    if hook is not None:
        body["webhooks"] = [hook]
    return body


def submit(cluster: Cluster, epochs: int, hook: dict[str, Any] | None) -> str:
    """POST the trial's job through the live API; return its id."""
    with cluster.client() as api:
        response = api.post(
            "/v1/jobs", json=job_body(epochs, hook), headers={"Idempotency-Key": uuid.uuid4().hex}
        )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def job_row(db: Engine, job_id: str) -> Job:
    """Return the job as stored now."""
    with Session(db, expire_on_commit=False) as session:
        job = session.execute(select(Job).where(Job.id == job_id)).scalar_one()
        session.expunge(job)
        return job


def events_of(db: Engine, job_id: str) -> list[JobEvent]:
    """Return the job's events in seq order."""
    with Session(db) as session:
        rows = list(session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.seq)))
        session.expunge_all()
        return rows


def deliveries_of(db: Engine, job_id: str) -> list[WebhookDelivery]:
    """Return the job's webhook deliveries."""
    with Session(db) as session:
        rows = list(session.scalars(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)))
        session.expunge_all()
        return rows


def fit_epochs(db: Engine, job_id: str) -> list[int]:
    """Return the epoch of every stored `on_fit_epoch_end`, in seq order."""
    return [e.data["epoch"] for e in events_of(db, job_id) if e.type == "on_fit_epoch_end"]


def wait_ended(cluster: Cluster, job_id: str, timeout: float = 240.0) -> Job:
    """Wait until the job has a terminal status; return it."""
    ended = {s.value for s in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)}
    try:
        return wait_for(
            lambda: (job := job_row(cluster.db, job_id)).status in ended and job,
            timeout,
            f"job {job_id} to end",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {describe(cluster, job_id)}\n{cluster.logs()}") from None


def describe(cluster: Cluster, job_id: str) -> str:
    """Say where a job stands, for a failing trial's message."""
    try:
        job = job_row(cluster.db, job_id)
        types = [f"{e.seq}:{e.type}:{(e.data or {}).get('epoch', '')}" for e in events_of(cluster.db, job_id)]
    except Exception as exc:
        return f"(database unreadable: {exc})"
    return f"status={job.status} attempt={job.attempt} error={job.error!r} events={types}"


def assert_lifecycle(job: Job, events: list[JobEvent]) -> None:
    """Assert the lifecycle events walk the state machine to the row's status, with one terminal event."""
    walk = [STATUS_OF_EVENT[e.type] for e in events if e.type in STATUS_OF_EVENT]
    assert walk and walk[0] is JobStatus.QUEUED, walk
    for before, after in itertools.pairwise(walk):
        assert can_transition(before, after), f"{before} → {after} in {walk}"
    terminal = [e for e in events if e.type in TERMINAL_EVENTS]
    assert len(terminal) == 1, [e.type for e in terminal]
    assert walk[-1] == job.status, (walk, job.status)
    assert events[-1].type in TERMINAL_EVENTS, f"events after the terminal one: {[e.type for e in events]}"
    attempts = [e.data["attempt"] for e in events if e.type == "job.started"]
    assert attempts == list(range(1, len(attempts) + 1)) and attempts[-1] == job.attempt, attempts


def assert_webhooks(cluster: Cluster, job_id: str, hook: dict[str, Any], receiver: Receiver) -> None:
    """Assert every matching event reached the receiver signed, as one delivery each."""
    from trainforge.webhooks.outbox import matches

    events = events_of(cluster.db, job_id)
    wanted = {e.id for e in events if matches(hook["events"], e.type)}
    wait_for(
        lambda: all(d.status != "pending" for d in deliveries_of(cluster.db, job_id)),
        120,
        "the deliveries to finish",
    )
    rows = deliveries_of(cluster.db, job_id)
    assert {d.event_id for d in rows} == wanted
    failed = [(d.event_type, d.status, d.last_error) for d in rows if d.status != "succeeded"]
    assert not failed, failed
    verifier = Webhook(hook["secret"])
    got: dict[str, set[str]] = {}
    for request in receiver.requests:
        if request.path != urlsplit(hook["url"]).path:
            continue  # another job's webhook on the same receiver
        body = verifier.verify(request.body, request.headers)
        if isinstance(body, str | bytes):
            body = json.loads(body)
        got.setdefault(body["data"]["event_id"], set()).add(request.headers["webhook-id"])
    assert set(got) == wanted, f"missing {wanted - set(got)}, unexpected {set(got) - wanted}"
    assert all(len(ids) == 1 for ids in got.values()), "an event was sent as two different deliveries"


def assert_trial(
    cluster: Cluster,
    job_id: str,
    *,
    epochs: int,
    status: JobStatus = JobStatus.SUCCEEDED,
    hook: dict[str, Any] | None = None,
    receiver: Receiver | None = None,
) -> None:
    """Assert the outcome every trial promises (see the module docstring)."""
    job = wait_ended(cluster, job_id)
    context = describe(cluster, job_id)
    assert job.status == status, f"{context}\n{cluster.logs()}"
    events = events_of(cluster.db, job_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), context
    assert fit_epochs(cluster.db, job_id) == list(range(1, epochs + 1)), context
    assert_lifecycle(job, events)
    if hook is not None and receiver is not None:
        assert_webhooks(cluster, job_id, hook, receiver)


def assert_every_job_consistent(cluster: Cluster) -> None:
    """Assert every job of the trial's database is where its lifecycle events say (no job in two states)."""
    with Session(cluster.db) as session:
        ids = list(session.scalars(select(Job.id)))
    for job_id in ids:
        assert_lifecycle(job_row(cluster.db, job_id), events_of(cluster.db, job_id))
