"""The subscribable event names (checked against the engine) and the deliveries table of the CLI."""

from __future__ import annotations

import pytest

from trainer_engine.engine.callbacks import BATCH_EVENTS, TRAINER_EVENTS
from trainforge.cli.deliveries import deliveries_table
from trainforge.webhooks.catalog import TRAINER_EVENT_TYPES, unknown_event_message
from trainforge.webhooks.outbox import matches


def test_trainer_event_types_are_the_engines_non_batch_events() -> None:
    assert list(TRAINER_EVENT_TYPES) == [e for e in TRAINER_EVENTS if e not in BATCH_EVENTS]
    # What receivers subscribe to: a change here changes the public API, so it is spelled out.
    assert TRAINER_EVENT_TYPES == (
        "on_pretrain_routine_start", "on_pretrain_routine_end", "on_train_start", "on_train_epoch_start",
        "on_train_epoch_end", "on_model_save", "on_fit_epoch_end", "on_params_update", "on_train_end",
        "teardown",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("*", None),
        ("on_fit_epoch_end", None),
        ("job.succeeded", None),
        ("job.*", None),
        ("on_*", None),
        ("on_train*", None),
        ("webhook.endpoint_disabled", None),
        ("on_fit_epoch_ends", "did you mean 'on_fit_epoch_end'?"),
        ("job.sucess", "did you mean 'job.succeeded'?"),
        ("on_train_batch_end", "unknown event 'on_train_batch_end'"),
        ("zzz", "use one of: on_pretrain_routine_start"),
        ("nope*", "unknown event 'nope*'"),
    ],
)
def test_unknown_event_names_name_the_closest_valid_one(name: str, problem: str | None) -> None:
    message = unknown_event_message(name)
    assert (message is None) if problem is None else (problem in (message or "")), message


@pytest.mark.parametrize(
    ("patterns", "event", "expected"),
    [
        (["*"], "on_model_save", True),
        (None, "job.failed", True),
        (["job.*"], "job.failed", True),
        (["job.*"], "on_train_end", False),
        (["on_fit_epoch_end", "job.succeeded"], "on_train_epoch_end", False),
        (["on_fit_epoch_end", "job.succeeded"], "job.succeeded", True),
    ],
)
def test_filters_match_event_types(patterns, event: str, expected: bool) -> None:
    assert matches(patterns, event) is expected


def test_deliveries_table_shows_one_row_per_delivery_and_optionally_each_attempt() -> None:
    items = [
        {
            "id": "9a1f03c2-aaaa",
            "event_type": "job.succeeded",
            "url": "https://ci.example.com/hook",
            "status": "succeeded",
            "attempts": [
                {
                    "status_code": 503,
                    "latency_ms": 12.4,
                    "error": "HTTP 503",
                    "started_at": "2026-11-29T04:00:00Z",
                },
                {"status_code": 200, "latency_ms": 8.1, "error": None, "started_at": "2026-11-29T04:00:05Z"},
            ],
            "updated_at": "2026-11-29T04:00:05Z",
            "last_error": None,
        },
        {
            "id": "77aa0000-bbbb",
            "event_type": "on_fit_epoch_end",
            "endpoint_id": "e1e2e3e4-cccc",
            "status": "pending",
            "attempts": [],
            "next_attempt_at": "2026-11-29T05:00:00Z",
            "last_error": "HTTP 500",
        },
    ]
    lines = deliveries_table(items).splitlines()
    assert lines[0].split() == [
        "DELIVERY",
        "EVENT",
        "RECEIVER",
        "STATUS",
        "TRIES",
        "CODE",
        "LATENCY",
        "WHEN",
        "ERROR",
    ]
    first = ["9a1f03c2", "job.succeeded", "https://ci.example.com/hook", "succeeded", "2", "200", "8", "ms"]
    assert lines[1].split() == [*first, "2026-11-29", "04:00:05", "-"]
    assert "endpoint e1e2e3e4" in lines[2] and "2026-11-29 05:00:00" in lines[2] and "HTTP 500" in lines[2]
    detailed = deliveries_table(items, with_attempts=True).splitlines()
    assert len(detailed) == 1 + 2 + 2 and "attempt 1" in detailed[2] and "HTTP 503" in detailed[2]
