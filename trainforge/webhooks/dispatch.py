"""Run one delivery (claim, attempt, record) and sweep due deliveries back onto the queue.

A delivery row moves like this (all times in the DB, never in broker countdowns):

    pending, next_attempt_at <= now, locked_until > now   sent to the broker, not yet taken
    pending, next_attempt_at > now,  locked_until > now    in flight: claimed by a worker until then
    pending, next_attempt_at > now,  locked_until NULL     waiting for its next retry
    succeeded | failed                                     done (every attempt has its own row)

The claim is one guarded UPDATE, so two messages for one delivery never send it twice at once; a
worker that dies mid-attempt leaves next_attempt_at = end of its claim, so the sweep retries it then.
Before the claim a worker takes a slot for the receiver and the tenant (`fairness`); a delivery whose
receiver or tenant has every slot in use stays due and unclaimed, and waits for the attempt that
frees a slot: that task delivers it next itself (or, past its hand-off bound, sends it a message;
should that be lost, the sweep resends it).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from datetime import datetime, timedelta

from kombu.exceptions import ChannelError
from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from trainforge.db.models import Job, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from trainforge.db.session import after_commit, session_scope
from trainforge.db.types import db_now, new_id, read_db_now, utcnow
from trainforge.queue import get_producer
from trainforge.settings import Settings, get_settings
from trainforge.slots import Pool
from trainforge.vocab import DELIVER_WEBHOOK, WEBHOOKS_QUEUE
from trainforge.webhooks import delivery as http
from trainforge.webhooks import fairness, schedule, service, signing
from trainforge.webhooks.outbox import dispatch_lease_s
from trainforge.webhooks.ssrf import Resolver, system_resolver

log = logging.getLogger(__name__)

# A claim (and the slots taken for it) lasts the attempt's total timeout plus this margin (for the
# DB writes around it).
CLAIM_MARGIN_S = 45.0
# Retries due sooner than this are also sent with a broker countdown so they need not wait for a sweep.
SHORT_RETRY_S = 60.0
SWEEP_BATCH = 500
# A task whose attempt frees a slot delivers the waiting delivery it is reserved for itself, rather
# than sending it a message: a broker round trip and a second worker per hand-off made one tenant's
# burst wait on hand-offs, not on its receiver. The chain stops after this many rounds of hand-offs
# (each round: what the freed slots allow) or seconds,
# so a tenant's backlog returns the process to the queue now and then; it never holds more slots.
HANDOFFS_PER_TASK = 16
HANDOFF_BUDGET_S = 10.0
# A batch's attempts run at once in threads (the wait on each receiver overlaps; the CPU does not),
# and what answered within the straggler wait is recorded together: one slow receiver of a batch
# must not hold its other receivers' slots until it answers.
ATTEMPT_THREADS = 16
STRAGGLER_WAIT_S = 0.25


Request = tuple[str, bytes, str, list[str]]  # url, body, webhook-id, secrets


@dataclass(frozen=True)
class Claim:
    """A delivery taken by this worker: attempt number `attempt`, held until `until`, and what to send.

    `request` is None when the delivery cannot be sent (its endpoint is disabled); `refusal` says why.
    `slots` are the receiver's and tenant's slots held (as `holder`) until the attempt is recorded.
    """

    delivery_id: str
    attempt: int
    until: datetime
    endpoint_id: str | None = None
    request: Request | None = None
    refusal: str | None = None
    slots: tuple[Pool, ...] = ()
    holder: str = ""


def deliver(delivery_id: str, resolver: Resolver = system_resolver, db_url: str | None = None) -> str:
    """Claim, attempt and record one delivery; return what happened ("sent", "retry", "busy", ...)."""
    return deliver_many([delivery_id], resolver, db_url)[0]


def deliver_many(
    delivery_ids: list[str], resolver: Resolver = system_resolver, db_url: str | None = None
) -> list[str]:
    """Claim, attempt and record several deliveries (an event's fan-out); return each one's outcome.

    Each round claims in one transaction what the slots allow, attempts those at once and records
    them together: per delivery, a broker message and two commits were most of its cost. What found
    its tenant's slots full is tried again in the next round, once this task has freed its own; the
    slots freed go first to the deliveries waiting for them (see HANDOFFS_PER_TASK), also in this task.
    """
    outcomes: dict[str, str] = {}
    own, woken = list(dict.fromkeys(delivery_ids)), list[str]()
    started = time.monotonic()
    for _ in range(1 + HANDOFFS_PER_TASK):  # the task's own deliveries, then the hand-offs
        done, woken, own = _deliver_round(woken, own, resolver, db_url)
        outcomes = done | outcomes  # a delivery's first outcome is its own; a later wake-up is a no-op
        if not (own or woken) or not done or time.monotonic() - started > HANDOFF_BUDGET_S:
            break
    if own:  # what no slot of this task's came to: it queues for one, as a single delivery does
        done, woken, _ = _deliver_round(woken, own, resolver, db_url, park=True)
        outcomes = done | outcomes
    for waiting_id in woken:
        send_delivery(waiting_id)
    return [outcomes.get(d, "busy") for d in delivery_ids]


def _deliver_round(
    woken: list[str], own: list[str], resolver: Resolver, db_url: str | None, park: bool = False
) -> tuple[dict[str, str], list[str], list[str]]:
    """Claim what the slots allow, attempt and record it; return outcomes, waiters woken, and the
    task's own deliveries left for a later round (their tenant or receiver had no free slot).

    With `park`, the task's own deliveries that find no slot queue for one instead.
    """
    settings = get_settings()
    claims: list[Claim | str] = []
    left: list[str] = []
    try:
        with session_scope(db_url) as session:  # commits the claims before the HTTP calls
            # Woken deliveries hold a reserved slot (and queue again if it was lost); the task's
            # own only take free slots, and stop at the first tenant refusal (they share the tenant).
            claims += [claim_delivery(session, d, settings) for d in woken]
            for i, delivery_id in enumerate(own):
                claim = claim_delivery(session, delivery_id, settings, park=park)
                if claim == "tenant-full":
                    left += own[i:]
                    break
                if claim == "receiver-full":
                    left.append(delivery_id)
                    continue
                claims.append(claim)
    except BaseException:
        _give_back_all([c for c in claims if isinstance(c, Claim)])
        raise
    ids = [*woken, *(d for d in own if d not in left)]
    taken = [c for c in claims if isinstance(c, Claim)]
    recorded: dict[str, str] = {}
    freed: list[str] = []
    try:
        for finished in _attempt_all(taken, settings, resolver):
            with session_scope(db_url) as session:
                for claim, result in finished:
                    recorded[claim.delivery_id] = _record_result(session, claim, result, settings)
            # The slots go back after the attempts are recorded, each reserved for a delivery waiting.
            for claim, _ in finished:
                freed += fairness.give_back(list(claim.slots), claim.holder)
    except BaseException:
        _give_back_all([c for c in taken if c.delivery_id not in recorded])
        raise
    outcomes = {
        d: c if isinstance(c, str) else recorded[c.delivery_id] for d, c in zip(ids, claims, strict=True)
    }
    return outcomes, freed, left


def _attempt_all(
    claims: list[Claim], settings: Settings, resolver: Resolver
) -> Iterator[list[tuple[Claim, http.AttemptResult | None]]]:
    """Attempt the claims at once; yield their results as they come, each straggler wait's together.

    Everything that answered within the straggler wait is recorded in one transaction: a slow
    receiver holds only its own slot and recording, not its batch's.
    """
    if len(claims) == 1:
        # A lone attempt runs here: handing it to a thread and waking this one again cost every
        # single delivery (an inline webhook's) two thread switches on a busy host.
        yield [(claims[0], _attempt(claims[0], settings, resolver))]
        return
    pending = {_attempts().submit(_attempt, c, settings, resolver): c for c in claims}
    while pending:
        done, _ = futures.wait(pending, timeout=STRAGGLER_WAIT_S)
        yield [(pending.pop(f), f.result()) for f in done]


@functools.lru_cache(maxsize=1)
def _attempts() -> futures.ThreadPoolExecutor:
    """Return this process's threads for HTTP attempts (made on first use, so after the pool's fork)."""
    return futures.ThreadPoolExecutor(max_workers=ATTEMPT_THREADS, thread_name_prefix="webhook-attempt")


def _give_back_all(claims: list[Claim]) -> None:
    """Free the slots of claims whose attempts did not finish, and wake whoever waits for them."""
    for claim in claims:
        for waiting_id in fairness.give_back(list(claim.slots), claim.holder):
            send_delivery(waiting_id)


def _attempt(claim: Claim, settings: Settings, resolver: Resolver) -> http.AttemptResult | None:
    """Send a claimed delivery; None for one that cannot be sent (its refusal is recorded instead)."""
    if claim.request is None:
        return None
    url, body, msg_id, secrets = claim.request
    # No DB connection is held during the HTTP call: a slow receiver must not pin a pool slot.
    return http.attempt(
        url,
        body,
        signing.build_headers(secrets, msg_id, body),
        service.policy(settings),
        resolver=resolver,
        connect_timeout_s=settings.webhook_connect_timeout_s,
        total_timeout_s=settings.webhook_timeout_s,
        max_response_bytes=settings.webhook_max_response_bytes,
    )


def _record_result(
    session: Session, claim: Claim, result: http.AttemptResult | None, settings: Settings
) -> str:
    """Record an attempt's result, or fail a delivery that could not be sent."""
    if result is None:
        return _finish(session, claim, "failed", None, claim.refusal)
    return record(session, claim, result, settings)


def claim_delivery(session: Session, delivery_id: str, settings: Settings, park: bool = True) -> Claim | str:
    """Take a slot and a due delivery (one guarded UPDATE); return the Claim or why it was not taken.

    A delivery whose receiver or tenant has no free slot waits for one ("busy"); without `park` it
    is left as it was ("tenant-full" or "receiver-full"), for its caller to try again.

    Never commits: the caller's boundary does, before the HTTP attempt starts.
    """
    # One read for the delivery, its endpoint (current secrets) and the database's clock (what every
    # due time is set and compared on, so no host's clock can delay or rush one), one write to claim
    # it: every statement here runs once per delivery, so they are kept few and built once (below).
    found = session.execute(_CLAIM_READ, {"d_id": delivery_id}).first()
    if found is None:
        return "missing"
    row, endpoint, now = found
    pools = fairness.pools_for(row.tenant_id, row.endpoint_id, row.url, settings)
    if row.status != "pending" or row.next_attempt_at is None or row.next_attempt_at > now:
        # Perhaps a wake-up for a delivery another message already took: its slot goes to the next.
        for waiting_id in fairness.pass_on(pools, delivery_id):
            after_commit(session, functools.partial(send_delivery, waiting_id))
        return "not-due"
    claim_s = settings.webhook_timeout_s + CLAIM_MARGIN_S
    holder = fairness.new_holder(delivery_id)
    full = fairness.take(pools, holder, claim_s, waiter=delivery_id, queue=park)
    if full is not None and not park:
        return "tenant-full" if full == pools[-1] else "receiver-full"
    if full is not None:
        # Waiting in the full pool's list now: the sweep leaves it to the wake-up, unless every
        # holder died (their leases end within a claim) and nobody is left to wake it.
        locked = now + timedelta(seconds=claim_s + dispatch_lease_s())
        session.execute(_PARK, {"d_id": delivery_id, "p_now": now, "p_locked": locked})
        return "busy"
    until = now + timedelta(seconds=claim_s)
    params = {"d_id": delivery_id, "claim_now": now, "claim_until": until}
    attempt = session.execute(_CLAIM, params).scalar()
    if attempt is None:
        for waiting_id in fairness.give_back(pools, holder):
            after_commit(session, functools.partial(send_delivery, waiting_id))
        return "taken"
    request = _request(row, endpoint, now)
    claim = Claim(delivery_id, int(attempt), until, row.endpoint_id, slots=tuple(pools), holder=holder)
    if isinstance(request, str):
        return dataclasses.replace(claim, refusal=request)
    return dataclasses.replace(claim, request=request)


# Built once: constructing these expressions cost more CPU per delivery than running them.
_CLAIM_READ = (
    select(WebhookDelivery, WebhookEndpoint, db_now())
    .outerjoin(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
    .where(WebhookDelivery.id == bindparam("d_id"))
)
_CLAIM = (
    update(WebhookDelivery)
    .where(
        WebhookDelivery.id == bindparam("d_id"),
        WebhookDelivery.status == "pending",
        WebhookDelivery.next_attempt_at <= bindparam("claim_now"),
    )
    .values(
        attempts=WebhookDelivery.attempts + 1,
        next_attempt_at=bindparam("claim_until"),
        locked_until=bindparam("claim_until"),
        updated_at=bindparam("claim_now"),
    )
    .returning(WebhookDelivery.attempts)
    .execution_options(synchronize_session=False)
)
_PARK = (
    update(WebhookDelivery)
    .where(
        WebhookDelivery.id == bindparam("d_id"),
        WebhookDelivery.status == "pending",
        WebhookDelivery.next_attempt_at <= bindparam("p_now"),
    )
    .values(locked_until=bindparam("p_locked"))
    .execution_options(synchronize_session=False)
)


def warm(db_url: str | None = None) -> None:
    """Do once, before this process's first delivery, what every first delivery paid for: the DB
    connection, compiling the claim statements (by running them on no row) and the TLS context."""
    from trainforge.webhooks.transport import default_ssl_context

    default_ssl_context()
    nothing = {"d_id": "", "claim_now": utcnow(), "claim_until": utcnow()}
    with session_scope(db_url) as session:
        session.execute(_CLAIM_READ, nothing).first()
        session.execute(_CLAIM, nothing).scalar()
        session.rollback()


def _request(row: WebhookDelivery, endpoint: WebhookEndpoint | None, now: datetime) -> Request | str:
    """Return (url, body, webhook-id, secrets) for a claimed delivery, or why it cannot be sent."""
    body = json.dumps(row.payload, separators=(",", ":"), default=str).encode()
    if row.endpoint_id is None:
        if not row.url or not row.secret:
            return "the job's inline webhook has no url or secret"
        try:
            # Checked at submit; a row stored before that check could still hold a bad one, and
            # failing it here records why instead of failing every attempt after the claim.
            signing.secret_key(row.secret)
        except signing.SignatureError as exc:
            return f"the job's inline webhook secret cannot sign: {exc}"
        return row.url, body, row.webhook_id, [row.secret]
    if endpoint is None or not endpoint.enabled:
        reason = endpoint.disabled_reason if endpoint is not None else None
        return "endpoint disabled" + (f": {reason}" if reason else "")
    secrets = signing.active_secrets(
        endpoint.secret, endpoint.previous_secret, endpoint.previous_secret_expires_at, now
    )
    return endpoint.url, body, row.webhook_id, secrets


def record(session: Session, claim: Claim, result: http.AttemptResult, settings: Settings) -> str:
    """Record an attempt and move its delivery on: done, failed, or due again at the next retry."""
    answered_at = utcnow()  # the attempt row's times; a retry's due time is on the database's clock
    attempt_row = {
        "id": new_id(),
        "delivery_id": claim.delivery_id,
        "started_at": answered_at - timedelta(milliseconds=result.latency_ms),
        "status_code": result.status_code,
        "latency_ms": result.latency_ms,
        "error": result.error,
        "response_excerpt": result.response_excerpt,
    }
    session.execute(_RECORD_ATTEMPT, attempt_row)
    if result.outcome is http.AttemptOutcome.SUCCESS:
        # The common path reads no row: one guarded UPDATE clears a failing streak, if there was one.
        if claim.endpoint_id is not None:
            session.execute(_CLEAR_FAILING, {"e_id": claim.endpoint_id})
        return _finish(session, claim, "succeeded", result.status_code, None)
    row = session.get(WebhookDelivery, claim.delivery_id)
    assert row is not None
    endpoint = session.get(WebhookEndpoint, row.endpoint_id) if row.endpoint_id else None
    now = read_db_now(session)
    if result.outcome is http.AttemptOutcome.DISABLE:
        _stop_receiver(session, row, endpoint, "the receiver answered 410 Gone")
        return _finish(session, claim, "failed", result.status_code, result.error)
    if endpoint is not None:
        endpoint.failing_since = endpoint.failing_since or now
        if (now - endpoint.failing_since).total_seconds() > settings.webhook_disable_after_s:
            days = settings.webhook_disable_after_s / 86400
            _stop_receiver(session, row, endpoint, f"every delivery failed for more than {days:g} days")
    retry_after = schedule.parse_retry_after(result.retry_after, now)
    when = schedule.next_attempt_at(claim.attempt, now, settings.webhook_retry_schedule_s, retry_after)
    if when is None:
        return _finish(session, claim, "failed", result.status_code, result.error)
    _finish(session, claim, "pending", result.status_code, result.error, next_attempt_at=when, now=now)
    delay = (when - now).total_seconds()
    if delay < SHORT_RETRY_S:
        after_commit(session, lambda: send_delivery(claim.delivery_id, countdown=delay))
    return "retry"


def _finish(
    session: Session,
    claim: Claim,
    status: str,
    status_code: int | None,
    error: str | None,
    next_attempt_at: datetime | None = None,
    now: datetime | None = None,
) -> str:
    """Set the delivery's outcome, guarded by the claim so a stale worker cannot overwrite a newer one.

    `now` is the database's time that `next_attempt_at` was computed from.
    """
    now = now or utcnow()
    locked_until = None
    if next_attempt_at is not None and (next_attempt_at - now).total_seconds() < SHORT_RETRY_S:
        # A short retry is sent right away with a countdown, so the sweep leaves it alone until then.
        locked_until = next_attempt_at + timedelta(seconds=dispatch_lease_s())
    values = {
        "d_id": claim.delivery_id,
        "d_attempt": claim.attempt,
        "f_status": status,
        "f_code": status_code,
        "f_error": error,
        "f_next": next_attempt_at,
        "f_locked": locked_until,
        "f_now": now,
    }
    done = session.execute(_FINISH, values).rowcount  # type: ignore[attr-defined]
    if not done:
        log.warning("delivery %s was claimed again while attempt %d ran", claim.delivery_id, claim.attempt)
    return {"succeeded": "sent", "failed": "failed"}.get(status, status)


_RECORD_ATTEMPT = insert(WebhookAttempt)
_CLEAR_FAILING = (
    update(WebhookEndpoint)
    .where(WebhookEndpoint.id == bindparam("e_id"), WebhookEndpoint.failing_since.is_not(None))
    .values(failing_since=None)
    .execution_options(synchronize_session=False)
)
_FINISH = (
    update(WebhookDelivery)
    .where(WebhookDelivery.id == bindparam("d_id"), WebhookDelivery.attempts == bindparam("d_attempt"))
    .values(
        status=bindparam("f_status"),
        last_status_code=bindparam("f_code"),
        last_error=bindparam("f_error"),
        next_attempt_at=bindparam("f_next"),
        locked_until=bindparam("f_locked"),
        updated_at=bindparam("f_now"),
    )
    .execution_options(synchronize_session=False)
)


def _stop_receiver(
    session: Session, row: WebhookDelivery, endpoint: WebhookEndpoint | None, reason: str
) -> None:
    """Disable the endpoint (recording an event), or stop an inline webhook of its job."""
    if endpoint is not None:
        if endpoint.enabled:
            service.disable_endpoint(session, endpoint, reason, job_id=row.job_id)
        return
    job = session.get(Job, row.job_id) if row.job_id else None
    if job is None:
        return
    # The job's inline webhook list is rewritten with this URL marked disabled, so later events skip it.
    job.webhooks = [
        {**hook, "disabled": True, "disabled_reason": reason} if hook.get("url") == row.url else hook
        for hook in job.webhooks or []
    ]


def sweep(db_url: str | None = None, limit: int = SWEEP_BATCH) -> int:
    """Send every due delivery that is not in flight or freshly sent; return how many were sent."""
    # Messages still queued are not lost, only late: while workers are behind, re-sending their
    # deliveries would only grow the backlog with duplicates. After a broker restart the queue is empty.
    limit -= queued_messages() or 0
    if limit <= 0:
        return 0
    with session_scope(db_url) as session:
        ids = list(
            session.scalars(
                select(WebhookDelivery.id)
                .where(
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= db_now(),
                    or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < db_now()),
                )
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(limit)
            )
        )
        if not ids:
            return 0
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids))
            .values(locked_until=db_now(dispatch_lease_s()))
            .execution_options(synchronize_session=False)
        )
        for delivery_id in ids:
            after_commit(session, functools.partial(send_delivery, delivery_id))
    return len(ids)


def send_delivery(delivery_id: str, countdown: float | None = None) -> None:
    """Send the deliver task for one delivery; a broker error is logged (the sweep will resend it)."""
    try:
        get_producer().send_task(
            DELIVER_WEBHOOK, args=[delivery_id], queue=WEBHOOKS_QUEUE, countdown=countdown or None
        )
    except Exception as exc:  # kombu raises many types; the row stays due, so the sweep recovers it
        log.warning("sending delivery %s failed: %s", delivery_id, exc)


def queued_messages() -> int | None:
    """Return how many messages wait in the webhooks queue (0 when it does not exist), None if unknown."""
    try:
        with get_producer().connection_for_write() as conn:
            conn.ensure_connection(max_retries=1)  # a broker that is down costs one try, not a retry loop
            return int(conn.default_channel.queue_declare(WEBHOOKS_QUEUE, passive=True).message_count)
    except ChannelError:
        return 0  # a queue nobody declared or filled yet
    except Exception as exc:  # the broker is down: sweep anyway, its sends will log their own errors
        log.warning("could not read the webhooks queue length: %s", exc)
        return None
