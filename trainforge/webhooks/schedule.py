"""When to try a webhook delivery again: a fixed backoff schedule with jitter, and Retry-After."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

# Immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: eight attempts over about 28 hours.
DEFAULT_SCHEDULE_S: tuple[float, ...] = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
# Each delay is stretched or shrunk by up to this fraction so that receivers that fail together
# (an outage) are not hit again by every delivery in the same second.
JITTER = 0.2


def delay_before_attempt(
    attempt: int,
    schedule: Sequence[float] = DEFAULT_SCHEDULE_S,
    jitter: float = JITTER,
    rng: random.Random | None = None,
) -> float | None:
    """Return seconds to wait before attempt number `attempt` (1-based); None once the schedule is spent."""
    if attempt < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt}")
    if attempt > len(schedule):
        return None
    base = float(schedule[attempt - 1])
    return base * (1 + jitter * (2 * (rng or random).random() - 1)) if base > 0 else 0.0


def next_attempt_at(
    attempts_made: int,
    now: datetime,
    schedule: Sequence[float] = DEFAULT_SCHEDULE_S,
    retry_after_s: float | None = None,
    jitter: float = JITTER,
    rng: random.Random | None = None,
) -> datetime | None:
    """Return when to try again after `attempts_made` attempts failed, or None when no attempt is left."""
    delay = delay_before_attempt(attempts_made + 1, schedule, jitter, rng)
    if delay is None:
        return None
    if retry_after_s is not None:
        # The receiver said when it can take more (429/503): wait that long, but never longer than
        # the schedule's longest step, so one header cannot park a delivery forever.
        delay = min(max(retry_after_s, 0.0), max(schedule))
    return now + timedelta(seconds=delay)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Return the seconds a Retry-After header asks for (delta-seconds or an HTTP date), None if unusable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)
