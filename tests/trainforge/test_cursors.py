"""The one cursor codec: round trips, and a clear 422 for every cursor it did not make."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from trainforge.cursors import decode_cursor, encode_cursor
from trainforge.errors import Invalid


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_round_trip_is_opaque_and_exact() -> None:
    when, row_id = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), str(uuid.uuid4())
    cursor = encode_cursor(when, row_id)
    assert "|" not in cursor and "=" not in cursor
    assert decode_cursor(cursor) == (when, row_id)


ID = "3f2c9a1e-0000-4000-8000-000000000000"
BAD = [
    ("not base64", "%%%"),
    ("plain delivery cursor of old", f"2026-01-02T03:04:05+00:00|{ID}"),
    ("no separator", b64("2026-01-02T03:04:05")),
    ("bad time", b64(f"yesterday|{ID}")),
    ("id not a uuid", b64("2026-01-02T03:04:05+00:00|x")),
    ("NUL in id", b64("2026-01-02T03:04:05+00:00|\x00")),
    ("not utf-8", base64.urlsafe_b64encode(b"\xff\xfe|x").decode()),
    ("too long", "A" * 500),
    ("empty after decoding", "="),
]


@pytest.mark.parametrize("cursor", [c for _, c in BAD], ids=[n for n, _ in BAD])
def test_foreign_cursors_are_invalid_with_a_fix(cursor: str) -> None:
    with pytest.raises(Invalid, match=r"invalid cursor .*pass the next_cursor value of the previous page"):
        decode_cursor(cursor)


def test_naive_timestamps_are_read_as_utc() -> None:
    assert decode_cursor(b64(f"2026-01-02T03:04:05|{ID}"))[0].tzinfo is UTC
