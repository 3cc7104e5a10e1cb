"""Receive one streamed upload into the blob store, so that a failed upload leaves nothing behind.

    insert the row (uploading), open the file, commit   the tenant sees it arrive
    stream the body into incoming/<id>.part      hashed on the way; the API never holds it in memory;
                                                 written at least every few seconds: its mtime is
                                                 the progress the upload sweep looks at
    check: not empty, a zip/tar.gz (datasets), the client's sha256 if given
    record sha256 and size (validating) while the tail syncs, commit; rename the blob into place;
    send the validation task; answer with the row as that one transaction left it
    on any failure (client gone, 413, mismatch): delete the partial file and the row

Database work runs in worker threads, each step in its own short transaction: an upload may take
minutes and must not hold a connection (or SQLite's write lock) for that long.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import anyio
import anyio.to_thread
from sqlalchemy.orm import Session

from trainforge.datasets import archive, repository, service
from trainforge.datasets.repository import UploadClass
from trainforge.datasets.storage import SHA256_RE, BlobStore, Incoming
from trainforge.db.models import Dataset
from trainforge.errors import Conflict, Invalid

# Write to disk in pieces this big: one thread hop per piece, and hashlib and write() get buffers big
# enough to run without the GIL. Two pieces at most are held (one arriving, one being written).
_FLUSH_BYTES = 4 * 1024 * 1024
# ...or this often, so a slow but live upload keeps its file's mtime fresh and is never swept.
_FLUSH_EVERY_S = 10.0
# Push the file to disk in the background every this many bytes: the fsync before the blob is renamed
# into place then has only the tail left, instead of the whole upload on the request path. Small
# enough that the tail is a few pieces; a sync still running is never queued behind, so the disk sets
# how often they really run.
_SYNC_BYTES = 8 * 1024 * 1024
# The threads that write, hash and sync uploads (one piece and one sync in flight per upload).
_WRITERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="upload-write")


@dataclass(frozen=True)
class UploadRequest:
    """Who uploads what: the row class, the tenant, the name and the checksum the client announced."""

    cls: UploadClass
    tenant_id: str
    name: str
    sha256: str | None = None


def check_request(request: UploadRequest) -> None:
    """Refuse a bad name or checksum before any byte is stored."""
    kind = service.kind_of(request.cls)
    service.check_name(request.name, kind)
    if request.sha256 is not None and not SHA256_RE.match(request.sha256):
        raise Invalid(f"sha256 {request.sha256!r} is not 64 lowercase hex digits (sha256sum's output)")


async def receive(
    chunks: AsyncIterator[bytes], request: UploadRequest, store: BlobStore, sessions: Callable[[], Session]
) -> str:
    """Store the streamed body as a new version of `request.name`; return the new row as JSON."""
    check_request(request)
    fmt = "pt" if request.cls is not Dataset else "archive"
    row_id, incoming = await anyio.to_thread.run_sync(_begin, sessions, request, fmt, store)
    try:
        fmt = await _stream(chunks, incoming, request)
        return await anyio.to_thread.run_sync(_finish, sessions, request.cls, row_id, incoming, fmt)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(incoming.discard)
            await anyio.to_thread.run_sync(_forget, sessions, request.cls, row_id)
        raise


async def _stream(chunks: AsyncIterator[bytes], incoming: Incoming, request: UploadRequest) -> str:
    """Write the body to `incoming`; return its format; Invalid when it is empty, no archive or mismatched."""
    head = b""
    fmt = "pt"
    sniffed = request.cls is not Dataset
    writer = _Writer(incoming)
    try:
        async for chunk in chunks:
            if not sniffed:
                head += chunk[: 4 - len(head)]
                if len(head) >= 4:
                    fmt, sniffed = _sniff(head), True
            await writer.add(chunk)
        await writer.close()
    finally:
        writer.join()
    if incoming.size == 0:
        raise Invalid("the upload is empty; send the file's bytes as the request body")
    if not sniffed:
        fmt = _sniff(head)
    digest = incoming.digest()
    if request.sha256 is not None and digest != request.sha256:
        raise Invalid(
            f"sha256 mismatch: you announced {request.sha256} but the server received {incoming.size} bytes "
            f"hashing to {digest}; the upload was damaged or cut short, send it again"
        )
    return fmt


class _Writer:
    """Gather chunks into a piece, write and hash it in a thread while the next one fills, sync behind.

    Two buffers of _FLUSH_BYTES, allocated once per upload and swapped: the one filling and the one
    being written. Each byte is copied once into place; growing a fresh bytearray per piece instead
    copied every piece about eight times over as it grew, and touched new pages each time, which
    took a quarter of the event loop's time on a fast upload. At most one piece is being written and
    at most one background sync runs, so the disk keeps up with the upload instead of all of it at
    the end.
    """

    def __init__(self, incoming: Incoming) -> None:
        self._incoming = incoming
        self._buffers: list[bytearray] = []
        self._filled = 0
        self._flushed_at = time.monotonic()
        self._pending: Future[None] | None = None
        self._syncing: Future[None] | None = None
        self._synced = 0

    async def add(self, chunk: bytes) -> None:
        """Copy `chunk` into the piece filling; hand the piece on when it is full or old."""
        if not self._buffers:
            self._buffers = [bytearray(_FLUSH_BYTES), bytearray(_FLUSH_BYTES)]
        rest = memoryview(chunk)
        while rest:
            buffer = self._buffers[0]
            part = rest[: len(buffer) - self._filled]
            buffer[self._filled : self._filled + len(part)] = part
            self._filled += len(part)
            rest = rest[len(part) :]
            if self._filled == len(buffer):
                await self._hand_on()
        if self._filled and time.monotonic() - self._flushed_at >= _FLUSH_EVERY_S:
            await self._hand_on()

    async def close(self) -> None:
        """Write what is left and wait for the write and the sync in flight; raise what they raised."""
        if self._filled:
            await self._hand_on()
        for future in (self._pending, self._syncing):
            if future is not None:
                await asyncio.wrap_future(future)
        self._pending = self._syncing = None

    def join(self) -> None:
        """Block until nothing is in flight, so a failed upload is discarded (its file closed) after it."""
        wait([future for future in (self._pending, self._syncing) if future is not None])

    async def _hand_on(self) -> None:
        """Start writing the piece filling once the previous one is written; fill the other buffer next."""
        if self._pending is not None:
            await asyncio.wrap_future(self._pending)  # the other buffer is free again
            self._pending = None
        await self._sync_if_due()
        piece = memoryview(self._buffers[0])[: self._filled]
        self._pending = _WRITERS.submit(self._incoming.write, piece)
        self._buffers.reverse()
        self._filled, self._flushed_at = 0, time.monotonic()

    async def _sync_if_due(self) -> None:
        """Start a background sync once _SYNC_BYTES more were written and the last one is done."""
        if self._incoming.size - self._synced < _SYNC_BYTES:
            return
        if self._syncing is not None:
            if not self._syncing.done():
                return  # the disk is behind: let it finish, never queue syncs up
            await asyncio.wrap_future(self._syncing)  # done: raises what it raised
        self._synced = self._incoming.size
        self._syncing = _WRITERS.submit(self._incoming.sync)


def _sniff(head: bytes) -> str:
    """Return the archive format of a dataset upload; Invalid when it is neither zip nor tar.gz."""
    fmt = archive.sniff(head)
    if fmt is None:
        raise Invalid(
            "a dataset upload must be a .zip or .tar.gz archive (its first bytes are neither); "
            "`trainforge dataset upload FOLDER` packs a folder for you"
        )
    return fmt


def _begin(
    sessions: Callable[[], Session], request: UploadRequest, fmt: str, store: BlobStore
) -> tuple[str, Incoming]:
    """Insert the uploading row, open its incoming file, commit: one hop before the body is read."""
    incoming: Incoming | None = None
    try:
        with sessions() as session, session.begin():
            row_id = service.begin_upload(session, request.cls, request.tenant_id, request.name, fmt).id
            incoming = store.receive(row_id)
    except BaseException:
        if incoming is not None:  # the commit failed: no row names this file
            incoming.discard()
        raise
    return row_id, incoming


def _finish(
    sessions: Callable[[], Session], cls: UploadClass, row_id: str, incoming: Incoming, fmt: str
) -> str:
    """Record the blob on the row (commit), move the blob into place, send the validation task.

    Return the row as JSON, read in that same transaction. The tail is synced while the row is
    recorded, so the fsync before the rename has nothing left. The row names the SHA-256 before the
    blob is renamed in: a concurrent delete of another row with the same bytes then sees this one and
    keeps the blob. The task goes only once the blob is in place (a row deleted meanwhile is no
    error: the task finds no row waiting and does nothing).
    """
    tail = _WRITERS.submit(incoming.sync)
    try:
        with sessions() as session, session.begin():
            row = repository.get(session, cls, row_id)
            if row is None:  # the upload sweep removed it: no byte arrived for TRAINFORGE_UPLOAD_STALE_S
                raise Conflict(
                    "the upload stalled for too long and was discarded by the server; send it again"
                )
            service.finish_upload(session, row, incoming.digest(), incoming.size, fmt)
            body = service.public(row).model_dump_json()
    finally:
        wait([tail])  # nothing may sync the file while commit() or discard() closes it
    tail.result()
    incoming.commit()
    service.send_validation_now(cls, row_id)
    return body


def _forget(sessions: Callable[[], Session], cls: UploadClass, row_id: str) -> None:
    """Delete the row of a failed upload."""
    with sessions() as session, session.begin():
        row = session.get(cls, row_id)
        if row is not None:
            session.delete(row)
