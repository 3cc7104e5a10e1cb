"""The client's side of uploads: a folder is packed under its own name, hidden files and links left out."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from trainforge.client import TrainforgeClient, TrainforgeError, file_sha256, pack_folder


def test_a_folder_is_zipped_under_its_name_without_hidden_files_or_links(tmp_path: Path) -> None:
    folder = tmp_path / "shapes"
    (folder / "images").mkdir(parents=True)
    (folder / "data.yaml").write_text("names: [a]\n")
    (folder / "images" / "a.png").write_bytes(b"png")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref")
    (folder / "images" / "link.png").symlink_to(folder / "images" / "a.png")
    packed = pack_folder(folder, tmp_path / "out.zip")
    with zipfile.ZipFile(packed) as archive:
        assert sorted(archive.namelist()) == ["shapes/data.yaml", "shapes/images/a.png"]
    digest, size = file_sha256(packed)
    assert size == packed.stat().st_size and len(digest) == 64


@pytest.mark.parametrize(
    ("name", "message"),
    [("missing", "no such file or folder"), ("notes.txt", "upload a folder, a .zip or a .tar.gz (got .txt)")],
)
def test_what_cannot_be_a_dataset_is_refused_before_any_request(
    tmp_path: Path, name: str, message: str
) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    with TrainforgeClient("http://127.0.0.1:9", "t") as client, pytest.raises(TrainforgeError) as caught:
        client.upload_dataset(tmp_path / name, "x")
    assert message in str(caught.value)
