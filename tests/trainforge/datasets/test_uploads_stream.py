"""The upload stream writes every byte in order while the next piece arrives, and stops cleanly on failure."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from trainforge.datasets import uploads
from trainforge.datasets.storage import DirectoryStore
from trainforge.db.models import Dataset, ModelWeights
from trainforge.errors import Invalid


async def _chunks(data: bytes, sizes: list[int], fail_after: int | None = None) -> AsyncIterator[bytes]:
    """Yield `data` in pieces of the given sizes (cycled); raise OSError after `fail_after` pieces."""
    offset = index = 0
    while offset < len(data):
        if fail_after is not None and index == fail_after:
            raise OSError("client went away")
        size = sizes[index % len(sizes)]
        yield data[offset : offset + size]
        offset += size
        index += 1
        await anyio.sleep(0)


@pytest.mark.parametrize("sizes", [[1], [3, 65536, 7], [uploads._FLUSH_BYTES + 1], [65536]])
def test_every_byte_lands_in_order_across_pieces(
    tmp_path: Path, sizes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploads, "_SYNC_BYTES", uploads._FLUSH_BYTES)  # syncs run beside the writes
    data = b"PK\x03\x04" + os.urandom(3 * uploads._FLUSH_BYTES + 12345)
    if sizes == [1]:
        data = data[:5000]  # one byte per chunk: keep it short
    incoming = DirectoryStore(tmp_path).receive(str(uuid.uuid4()))
    request = uploads.UploadRequest(Dataset, "tenant", "set")

    fmt = anyio.run(uploads._stream, _chunks(data, sizes), incoming, request)

    assert fmt == "zip"
    assert incoming.size == len(data)
    assert incoming.digest() == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "blobs" / incoming.digest()[:2] / incoming.commit()).read_bytes() == data


def test_a_failing_body_waits_for_the_write_in_flight_then_discards(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    incoming = store.receive(str(uuid.uuid4()))
    data = os.urandom(4 * uploads._FLUSH_BYTES)
    request = uploads.UploadRequest(ModelWeights, "tenant", "m")
    per_piece = uploads._FLUSH_BYTES // 65536

    with pytest.raises(OSError, match="client went away"):
        fail_after = 2 * per_piece + per_piece // 2
        anyio.run(uploads._stream, _chunks(data, [65536], fail_after=fail_after), incoming, request)
    incoming.discard()  # what receive() does next: nothing may still be writing to the file

    assert store.incoming_count() == 0
    assert incoming.size == 2 * uploads._FLUSH_BYTES  # the two whole pieces sent before the failure


def test_a_dataset_that_is_no_archive_is_refused_at_its_first_bytes(tmp_path: Path) -> None:
    incoming = DirectoryStore(tmp_path).receive(str(uuid.uuid4()))
    request = uploads.UploadRequest(Dataset, "tenant", "set")

    with pytest.raises(Invalid, match=r"must be a \.zip or \.tar\.gz"):
        anyio.run(uploads._stream, _chunks(b"hello world" * 1000, [2]), incoming, request)
    incoming.discard()
    assert incoming.size == 0
