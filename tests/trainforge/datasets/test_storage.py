"""The blob store makes a blob durable before its rename and the rename durable after it."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest

from trainforge.datasets import storage
from trainforge.datasets.storage import DirectoryStore


def test_commit_syncs_the_folders_it_changed_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DirectoryStore(tmp_path)
    data = os.urandom(1000)
    synced: list[tuple[Path, bool]] = []
    real = storage._sync_dir

    def sync_dir(folder: Path) -> None:
        synced.append((folder, store.path(hashlib.sha256(data).hexdigest()).exists()))
        real(folder)

    monkeypatch.setattr(storage, "_sync_dir", sync_dir)
    incoming = store.receive(str(uuid.uuid4()))
    incoming.write(data)
    sha = incoming.commit()

    blob = store.path(sha)
    # blobs/ once its new prefix folder is made; the prefix folder once the blob is renamed in.
    assert synced == [(blob.parent.parent, False), (blob.parent, True)]
    assert blob.read_bytes() == data

    synced.clear()
    again = store.receive(str(uuid.uuid4()))
    again.write(data)
    assert again.commit() == sha
    assert synced == []  # equal bytes already stored and durable: nothing renamed, nothing to sync
    assert store.incoming_count() == 0
