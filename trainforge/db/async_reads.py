"""Single-row reads on PostgreSQL that do not block the API's event loop (psycopg async connections).

The most polled route (GET /v1/jobs/{id}) is one indexed read. Run synchronously on the event loop,
the whole process idles for the database round trip; run in the thread pool, it pays two thread
switches. On an async connection the loop serves other requests while PostgreSQL answers
(measured with bench/api_status.py). SQLite has no round trip to overlap and keeps the sync engine.

Each read is one autocommit statement (no BEGIN/ROLLBACK round trips); psycopg prepares it on the
server after a few executions. Nothing is cached: every call reads the row as committed now.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Select
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import make_url


def compile_for_psycopg(statement: Select[Any]) -> str:
    """Return the SQL of `statement` for PostgreSQL with %(name)s placeholders (what psycopg takes)."""
    return str(statement.compile(dialect=PGDialect_psycopg()))


class DatabaseUnavailable(Exception):
    """PostgreSQL did not answer a read (the API answers 503)."""


class AsyncReadPool:
    """A small pool of autocommit psycopg `AsyncConnection`s, bound to the event loop that uses it."""

    def __init__(
        self, database_url: str, size: int = 10, connect_timeout_s: float = 5.0, read_timeout_s: float = 10.0
    ) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._slots = asyncio.Semaphore(size)  # at most `size` connections open at once
        self._closed = False

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        """Open a new connection."""
        return await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            row_factory=namedtuple_row,
            connect_timeout=max(1, round(self._connect_timeout_s)),
        )

    async def fetch_one(self, sql: str, params: Mapping[str, Any]) -> Any:
        """Run one read and return its first row (attributes named like the columns), or None.

        A pooled connection the server dropped is discarded and the read retried once on a new one
        (what pre-ping does for the sync engine, without its extra round trip on every read). A read
        that waits longer than `read_timeout_s` (a lock, a server that stopped answering) raises
        DatabaseUnavailable instead of holding the request and a pool slot forever.
        """
        try:
            async with asyncio.timeout(self._read_timeout_s):
                return await self._fetch_one(sql, params)
        except TimeoutError:
            late = f"the database did not answer within {self._read_timeout_s:g} s"
            raise DatabaseUnavailable(late) from None

    async def _fetch_one(self, sql: str, params: Mapping[str, Any]) -> Any:
        """Run one read on a pooled connection (see fetch_one)."""
        async with self._slots:
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await self._open()
            try:
                row = await self._run(conn, sql, params)
            except psycopg.OperationalError:
                await conn.close()
                if not reused:
                    raise DatabaseUnavailable("the database did not answer") from None
                conn = await self._open()
                try:
                    row = await self._run(conn, sql, params)
                except psycopg.OperationalError:
                    await conn.close()
                    raise DatabaseUnavailable("the database did not answer") from None
                except BaseException:
                    await conn.close()
                    raise
            except BaseException:
                await conn.close()  # cancelled or failed mid-query: its state is unknown
                raise
            if self._closed:
                await conn.close()
            else:
                self._idle.append(conn)
            return row

    async def _open(self) -> psycopg.AsyncConnection[Any]:
        """Open a connection, or raise DatabaseUnavailable."""
        try:
            return await self._connect()
        except psycopg.OperationalError:
            raise DatabaseUnavailable("the database did not answer") from None

    @staticmethod
    async def _run(conn: psycopg.AsyncConnection[Any], sql: str, params: Mapping[str, Any]) -> Any:
        """Execute `sql` and fetch one row."""
        cursor = await conn.execute(sql, params)  # type: ignore[arg-type]
        return await cursor.fetchone()

    async def close(self) -> None:
        """Close every idle connection; connections in use close when their read ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()
