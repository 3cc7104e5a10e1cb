"""Engines and sessions for PostgreSQL and SQLite, and the after-commit buffer.

Only boundaries commit: a request (the API's session dependency) or a task / training child
(`session_scope()`). Work that must not happen unless the transaction commits (a Redis publish,
a Celery send) is registered with `after_commit(session, fn)` and runs right after COMMIT;
a rollback drops it, and rolling back a savepoint (`savepoint(session)`) drops only what was
registered inside it.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from trainforge.settings import get_settings

log = logging.getLogger(__name__)

_AFTER_COMMIT = "trainforge.after_commit"
_SAVEPOINT_MARKS = "trainforge.savepoint_marks"
_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}
_lock = threading.Lock()


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """Turn on WAL, a busy timeout and foreign keys on every new SQLite connection."""
    cursor = dbapi_connection.cursor()
    # WAL lets readers proceed while a writer commits; busy_timeout makes writers wait, not fail.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def finite(value: Any) -> Any:
    """Return `value` with NaN and infinities replaced by None, at any depth (strict JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def json_dumps(value: Any) -> str:
    """Serialise to strict JSON: NaN/Infinity (a diverged loss) become null, which every reader takes."""
    try:
        return json.dumps(value, allow_nan=False, default=str)
    except ValueError:
        return json.dumps(finite(value), allow_nan=False, default=str)


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for `url` (postgresql+psycopg://... or sqlite:///...), configured for the service."""
    kwargs.setdefault("json_serializer", json_dumps)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:  # the sizes are QueuePool's; NullPool refuses them
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def get_engine(url: str | None = None) -> Engine:
    """Return the shared engine for `url` (default: settings.database_url), creating it once."""
    url = url or get_settings().database_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = create_db_engine(url)
        return engine


def get_read_engine(url: str | None = None) -> Engine:
    """Return an engine for single-statement reads: autocommit and no pre-ping on PostgreSQL.

    A read of one row then costs one round trip instead of four (ping, BEGIN, SELECT, ROLLBACK).
    A connection the server dropped fails that one request (the API answers 503) and is discarded.
    On SQLite (no round trips) it is the shared engine.
    """
    url = url or get_settings().database_url
    key = "read:" + url
    engine = _engines.get(key)  # the hot path: no URL parsing, no lock
    if engine is not None:
        return engine
    if make_url(url).get_backend_name() == "sqlite":
        engine = get_engine(url)
    else:
        engine = create_db_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=False)
    with _lock:
        return _engines.setdefault(key, engine)


def get_sessionmaker(url: str | None = None) -> sessionmaker[Session]:
    """Return the session factory bound to the engine for `url`."""
    url = url or get_settings().database_url
    factory = _factories.get(url)
    if factory is None:
        factory = _factories[url] = sessionmaker(get_engine(url), expire_on_commit=False)
    return factory


def dispose_engines() -> None:
    """Close every pooled connection (call before forking or dropping a database)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _factories.clear()


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """Open a session that commits at the end of the block and rolls back if it raises."""
    session = get_sessionmaker(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def after_commit(session: Session, fn: Callable[[], Any]) -> None:
    """Run `fn()` after the session's transaction commits; drop it if the transaction rolls back."""
    session.info.setdefault(_AFTER_COMMIT, []).append(fn)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    """Flush the after-commit buffer; a failing callback is logged, never raised (the data is saved)."""
    if session.in_nested_transaction():
        return  # SQLAlchemy fires this for a released savepoint too: nothing is committed yet
    callbacks = session.info.pop(_AFTER_COMMIT, None)
    session.info.pop(_SAVEPOINT_MARKS, None)
    for fn in callbacks or ():
        try:
            fn()
        except Exception:
            log.exception("after-commit callback %r failed", fn)


def savepoint(session: Session) -> SessionTransaction:
    """Begin a savepoint whose rollback undoes only its own work, on SQLite too.

    Python's sqlite3 opens a transaction only before a write, so a SAVEPOINT issued first would
    itself start the transaction and its RELEASE would commit everything: open it explicitly.
    """
    if session.get_bind().dialect.name == "sqlite":
        connection = session.connection()
        if not connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
            connection.exec_driver_sql("BEGIN")
    return session.begin_nested()


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    """Remember how much of the after-commit buffer predates a savepoint."""
    if transaction.nested:
        marks = session.info.setdefault(_SAVEPOINT_MARKS, {})
        marks[transaction] = len(session.info.get(_AFTER_COMMIT, ()))


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_commit(session: Session, previous_transaction: SessionTransaction) -> None:
    """Forget work registered in a transaction (or savepoint) that rolled back."""
    if previous_transaction.parent is not None and not previous_transaction.nested:
        return  # a failed flush's inner scope: the savepoint or transaction around it decides
    if previous_transaction.nested:
        mark = session.info.get(_SAVEPOINT_MARKS, {}).pop(previous_transaction, None)
        if mark is not None:
            del session.info.get(_AFTER_COMMIT, [])[mark:]
        return
    session.info.pop(_AFTER_COMMIT, None)
    session.info.pop(_SAVEPOINT_MARKS, None)
