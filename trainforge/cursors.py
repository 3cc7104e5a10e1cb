"""The one cursor of every keyset-paginated listing: an opaque token for "just after (created_at, id)".

Jobs (newest first) and webhook deliveries (oldest first) both page on (created_at, id). The cursor
is url-safe base64 of `<ISO timestamp>|<uuid>`; clients pass it back unchanged. A cursor this codec
did not make is refused with a 422 that says so, never a database error.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime

from trainforge.errors import Invalid

MAX_CURSOR_CHARS = 200


def encode_cursor(created_at: datetime, row_id: str) -> str:
    """Return the opaque cursor pointing just after the row (`created_at`, `row_id`)."""
    raw = f"{created_at.isoformat()}|{row_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Return the (created_at, id) a cursor points after; Invalid (422) if encode_cursor did not make it."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, row_id = raw.split("|", 1)
        uuid.UUID(row_id)  # every paged table has UUID ids; anything else was not made here
        when = datetime.fromisoformat(created)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Invalid(
            f"invalid cursor {cursor[:80]!r}: pass the next_cursor value of the previous page unchanged",
            key="cursor",
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)), row_id
