"""Column types and clocks that behave the same on PostgreSQL and SQLite.

Two clocks: `utcnow()` is this host's (shifted by `TRAINFORGE_CLOCK_SKEW_S`, so tests can play a
host whose clock is off), `db_now()` is the database server's, read inside the statement. Leases
are decided on the database's clock only, so no host's clock can make a job look stale.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Float, literal, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

from trainforge.settings import get_settings


def utcnow() -> datetime:
    """Return this host's current time as an aware UTC datetime (plus the configured clock skew)."""
    now = datetime.now(UTC)
    skew = get_settings().clock_skew_s
    return now + timedelta(seconds=skew) if skew else now


def new_id() -> str:
    """Return a new random id (a UUID4 string)."""
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite has no time zones: values are stored as naive UTC, so comparisons in SQL stay correct
    and Python code never mixes naive and aware datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        """Convert to UTC (naive for SQLite) before storing."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        """Attach UTC to naive values read back."""
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class db_now(FunctionElement[datetime]):
    """The database server's current UTC time plus `offset_s` seconds, evaluated in the statement.

    PostgreSQL: `now()` (the transaction's start; our lease transactions are one statement long).
    SQLite: `strftime('%Y-%m-%d %H:%M:%f', 'now')` padded to microseconds, the text form in which
    UTCDateTime stores values there, so stored and computed times compare as strings correctly.
    """

    type = UTCDateTime()
    inherit_cache = True
    name = "db_now"

    def __init__(self, offset_s: float = 0.0) -> None:
        super().__init__(literal(float(offset_s), Float()))


def read_db_now(session: Session) -> datetime:
    """Return the database server's current time (one round trip), for values computed in Python."""
    now = session.scalar(select(db_now()))
    assert isinstance(now, datetime)
    return now


@compiles(db_now)
def _db_now_default(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    """Render now() shifted by the offset (PostgreSQL and other servers with intervals)."""
    offset = compiler.process(element.clauses, **kw)
    return f"(now() + make_interval(secs => {offset}))"


@compiles(db_now, "sqlite")
def _db_now_sqlite(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    """Render SQLite's clock in UTCDateTime's stored text form ('YYYY-MM-DD HH:MM:SS.ffffff')."""
    offset = compiler.process(element.clauses, **kw)
    return f"(strftime('%Y-%m-%d %H:%M:%f', 'now', printf('%+.3f seconds', {offset})) || '000')"
