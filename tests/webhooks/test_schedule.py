"""The retry schedule: the documented default, jitter bounds, exhaustion and Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from trainforge.settings import DEFAULT_WEBHOOK_RETRY_SCHEDULE_S
from trainforge.webhooks import schedule

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_default_schedule_is_the_documented_one_and_matches_settings() -> None:
    assert schedule.DEFAULT_SCHEDULE_S == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert tuple(DEFAULT_WEBHOOK_RETRY_SCHEDULE_S) == schedule.DEFAULT_SCHEDULE_S


def test_first_attempt_is_immediate_and_delays_stay_within_jitter() -> None:
    rng = random.Random(0)
    assert schedule.delay_before_attempt(1, rng=rng) == 0.0
    for attempt, base in enumerate(schedule.DEFAULT_SCHEDULE_S[1:], start=2):
        for _ in range(50):
            delay = schedule.delay_before_attempt(attempt, rng=rng)
            assert delay is not None
            assert base * (1 - schedule.JITTER) <= delay <= base * (1 + schedule.JITTER)


def test_schedule_ends_after_last_attempt() -> None:
    assert schedule.next_attempt_at(8, NOW) is None
    assert schedule.next_attempt_at(2, NOW, schedule=[0, 1]) is None
    when = schedule.next_attempt_at(1, NOW, schedule=[0, 10], jitter=0)
    assert when == NOW + timedelta(seconds=10)


def test_retry_after_replaces_the_backoff_but_is_capped() -> None:
    assert schedule.next_attempt_at(1, NOW, retry_after_s=42) == NOW + timedelta(seconds=42)
    capped = schedule.next_attempt_at(1, NOW, retry_after_s=10**9)
    assert capped == NOW + timedelta(seconds=max(schedule.DEFAULT_SCHEDULE_S))
    assert schedule.next_attempt_at(8, NOW, retry_after_s=1) is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        ("Thu, 01 Jan 2026 00:01:00 GMT", 60.0),
        ("Wed, 31 Dec 2025 00:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert schedule.parse_retry_after(header, NOW) == seconds


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        schedule.delay_before_attempt(0)
