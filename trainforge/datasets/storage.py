"""The blob store: uploaded bytes kept once per SHA-256, written to a temporary name and renamed into place.

    <storage_dir>/blobs/<sha[:2]>/<sha>     one file per distinct content
    <storage_dir>/incoming/<id>.part        an upload still arriving, named by its row's id (removed if
                                            it fails; its mtime is the upload's last progress)

Nothing outside this module knows the layout; the API writes through `receive()`, workers read
through `path()`. A blob is in place only once complete, so a reader never sees half an upload.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path
from typing import Protocol

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# An incoming file is named by its upload's row id (a UUID): nothing else may name a path there.
_UPLOAD_ID_RE = re.compile(r"^[0-9a-f-]{36}$")


class ChecksumMismatch(ValueError):
    """The bytes received do not hash to the SHA-256 the client announced."""


class Incoming(Protocol):
    """Bytes of one upload as they arrive."""

    size: int

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Append `chunk`."""

    def sync(self) -> None:
        """Push what was written so far to disk, so that commit() has little left to flush."""

    def digest(self) -> str:
        """Return the SHA-256 (hex) of what was written so far."""

    def commit(self) -> str:
        """Move the complete upload into the store under its SHA-256; return it."""

    def discard(self) -> None:
        """Forget the upload; nothing of it stays behind."""


class BlobStore(Protocol):
    """Where uploads live, by content."""

    def receive(self, upload_id: str) -> Incoming:
        """Start receiving the bytes of upload `upload_id`."""

    def path(self, sha256: str) -> Path:
        """Return the local path of blob `sha256` (shared volume or local directory)."""

    def exists(self, sha256: str) -> bool:
        """Return whether blob `sha256` is stored."""

    def delete(self, sha256: str) -> None:
        """Remove blob `sha256` (no error if it is gone)."""


class _IncomingFile:
    """An upload written to `<incoming>/<id>.part`, hashed as it arrives."""

    def __init__(self, store: DirectoryStore, upload_id: str) -> None:
        self._store = store
        store.incoming.mkdir(parents=True, exist_ok=True)
        self._tmp = store.part_path(upload_id)
        self._file = open(self._tmp, "xb")  # noqa: SIM115 - closed in commit() or discard()
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Append `chunk` and hash it."""
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    def sync(self) -> None:
        """Write the bytes so far through to disk; safe while another thread appends (not while closing)."""
        os.fdatasync(self._file.fileno())

    def digest(self) -> str:
        """Return the SHA-256 of the bytes so far."""
        return self._hash.hexdigest()

    def commit(self) -> str:
        """Flush to disk and rename into place; equal content already stored is kept, not rewritten.

        The file is synced before the rename and its folder after it, so a blob in `blobs/` is
        durable: the upload's answer promises it, and an upload of the same bytes may reuse it.
        """
        sha = self.digest()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        target = self._store.path(sha)
        if not target.parent.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            _sync_dir(target.parent.parent)
        if target.exists():
            self._tmp.unlink(missing_ok=True)
        else:
            os.replace(self._tmp, target)
            _sync_dir(target.parent)
        return sha

    def discard(self) -> None:
        """Close and delete the partial file."""
        if not self._file.closed:
            self._file.close()
        self._tmp.unlink(missing_ok=True)


def _sync_dir(folder: Path) -> None:
    """Make the entries of `folder` (a rename into it, a folder made in it) durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirectoryStore:
    """A BlobStore in a directory: local, or a volume every API and worker machine mounts."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.incoming = self.root / "incoming"

    def receive(self, upload_id: str) -> Incoming:
        """Start receiving upload `upload_id` into `incoming/<upload_id>.part`."""
        return _IncomingFile(self, upload_id)

    def part_path(self, upload_id: str) -> Path:
        """Return where the bytes of upload `upload_id` arrive."""
        if not _UPLOAD_ID_RE.match(upload_id):
            raise ValueError(f"not an upload id: {upload_id!r}")
        return self.incoming / f"{upload_id}.part"

    def progressed_within(self, upload_id: str, seconds: float) -> bool:
        """Return whether upload `upload_id` wrote bytes in the last `seconds` (False: no file)."""
        try:
            return self.part_path(upload_id).stat().st_mtime > time.time() - seconds
        except FileNotFoundError:
            return False

    def discard_part(self, upload_id: str) -> None:
        """Remove what arrived of upload `upload_id` (no error if it is gone)."""
        self.part_path(upload_id).unlink(missing_ok=True)

    def discard_stale_parts(self, older_than_s: float) -> list[str]:
        """Remove every incoming file not written to for `older_than_s`; return their names."""
        cutoff = time.time() - older_than_s
        removed = []
        for part in self.incoming.glob("*.part") if self.incoming.is_dir() else []:
            try:
                if part.stat().st_mtime < cutoff:
                    part.unlink()
                    removed.append(part.name)
            except FileNotFoundError:
                continue  # its upload finished or failed meanwhile
        return removed

    def path(self, sha256: str) -> Path:
        """Return where blob `sha256` lives."""
        if not SHA256_RE.match(sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.blobs / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        """Return whether blob `sha256` is stored."""
        return self.path(sha256).is_file()

    def delete(self, sha256: str) -> None:
        """Remove blob `sha256`."""
        self.path(sha256).unlink(missing_ok=True)

    def blob_count(self) -> int:
        """Return how many blobs are stored (for tests and the operator)."""
        return sum(1 for _ in self.blobs.glob("*/*")) if self.blobs.is_dir() else 0

    def incoming_count(self) -> int:
        """Return how many uploads are still arriving (or were left by a crash)."""
        return sum(1 for _ in self.incoming.glob("*.part")) if self.incoming.is_dir() else 0


def get_store(storage_dir: str | Path) -> DirectoryStore:
    """Return the blob store of the service's storage directory."""
    return DirectoryStore(storage_dir)
