"""Archive safety: a table of hostile archives, each refused naming the entry, nothing written anywhere."""

from __future__ import annotations

import io
import random
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from trainforge.datasets.archive import TAR_GZ, ZIP, ArchiveError, Limits, extract, sniff

LIMITS = Limits(max_files=50, max_bytes=4 * 1024 * 1024, max_ratio=100.0)
NOISE = random.Random(0).randbytes(2_100_000)  # incompressible: past the size limit, not the ratio


def zip_of(*entries: tuple[str, bytes], mode: int | None = None, utf8: bool = True) -> Callable[[Path], Path]:
    """Return a builder of a zip holding `entries` (name, bytes); `mode` sets the unix mode of each."""

    def build(path: Path) -> Path:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries:
                info = zipfile.ZipInfo(name)
                info.compress_type = zipfile.ZIP_DEFLATED
                if mode is not None:
                    info.external_attr = mode << 16
                archive.writestr(info, data)
        return path

    return build


def raw_zip_name(name: bytes) -> Callable[[Path], Path]:
    """Return a builder of a zip whose one entry has the raw (non-UTF-8) byte name `name`."""

    def build(path: Path) -> Path:
        zip_of(("X" * len(name), b"data"))(path)
        blob = path.read_bytes().replace(b"X" * len(name), name)
        path.write_bytes(blob)
        return path

    return build


def tar_of(*members: tarfile.TarInfo, data: bytes = b"") -> Callable[[Path], Path]:
    """Return a builder of a tar.gz holding `members` (regular ones get `data`)."""

    def build(path: Path) -> Path:
        with tarfile.open(
            path, "w:gz", format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape"
        ) as tar:
            for member in members:
                if member.isreg():
                    member.size = len(data)
                    tar.addfile(member, io.BytesIO(data))
                else:
                    tar.addfile(member)
        return path

    return build


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    """Return a tar member header."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def many_files(count: int) -> Callable[[Path], Path]:
    return zip_of(*[(f"f{i}.txt", b"x") for i in range(count)])


HOSTILE = [
    (
        "zip-slip",
        ZIP,
        zip_of(("../evil.txt", b"x")),
        "entry '../evil.txt': '..' in the path would write outside",
    ),
    ("zip-slip deep", ZIP, zip_of(("a/../../evil.txt", b"x")), "'..' in the path"),
    ("absolute zip", ZIP, zip_of(("/etc/evil", b"x")), "entry '/etc/evil': absolute path"),
    ("windows drive", ZIP, zip_of(("C:/evil", b"x")), "entry 'C:/evil': absolute path"),
    ("backslash", ZIP, zip_of(("a\\..\\evil", b"x")), "NUL or backslash in the name"),
    (
        "zip symlink",
        ZIP,
        zip_of(("link", b"/etc/passwd"), mode=stat.S_IFLNK | 0o777),
        "entry 'link' is a symbolic link",
    ),
    ("zip fifo", ZIP, zip_of(("pipe", b""), mode=stat.S_IFIFO | 0o644), "entry 'pipe' is a device file"),
    ("duplicate", ZIP, zip_of(("a.txt", b"1"), ("a.txt", b"2")), "entry 'a.txt' appears twice"),
    ("duplicate via ./", ZIP, zip_of(("a.txt", b"1"), ("./a.txt", b"2")), "entry 'a.txt' appears twice"),
    ("non-utf8 zip", ZIP, raw_zip_name(b"caf\xe9.txt"), "the name is not UTF-8"),
    ("too many files", ZIP, many_files(51), "more than 50 entries (TRAINFORGE_ARCHIVE_MAX_FILES)"),
    ("bomb by ratio", ZIP, zip_of(("zeros", bytes(3 * 1024 * 1024))), "times its packed size"),
    ("too big unpacked", ZIP, zip_of(("a", NOISE), ("b", NOISE)), "more than 4194304 bytes"),
    ("empty zip", ZIP, zip_of(), "the archive is empty"),
    ("folders only", ZIP, zip_of(("a/", b"")), "the archive is empty"),
    (
        "tar symlink",
        TAR_GZ,
        tar_of(member("link", tarfile.SYMTYPE, "/etc/passwd")),
        "entry 'link' is a symbolic link",
    ),
    (
        "tar hard link",
        TAR_GZ,
        tar_of(member("hard", tarfile.LNKTYPE, "/etc/passwd")),
        "entry 'hard' is a hard link",
    ),
    ("tar device", TAR_GZ, tar_of(member("dev", tarfile.CHRTYPE)), "entry 'dev' is a device file"),
    ("tar fifo", TAR_GZ, tar_of(member("fifo", tarfile.FIFOTYPE)), "entry 'fifo' is a device file"),
    ("tar absolute", TAR_GZ, tar_of(member("/tmp/evil")), "entry '/tmp/evil': absolute path"),
    ("tar slip", TAR_GZ, tar_of(member("x/../../evil")), "'..' in the path"),
    ("tar non-utf8", TAR_GZ, tar_of(member(b"caf\xe9".decode("utf-8", "surrogateescape"))), "not UTF-8"),
    ("tar duplicate", TAR_GZ, tar_of(member("a"), member("a")), "entry 'a' appears twice"),
    ("tar bomb", TAR_GZ, tar_of(member("zeros"), data=bytes(3 * 1024 * 1024)), "times its packed size"),
]


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize(("case", "fmt", "build", "message"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_archives_are_refused_and_write_nothing(
    tmp_path: Path, case: str, fmt: str, build: Callable[[Path], Path], message: str
) -> None:
    archive = build(tmp_path / f"upload.{fmt}")
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = outside / "inside" / "set"
    with pytest.raises(ArchiveError) as caught:
        extract(archive, fmt, dest, LIMITS)
    assert message in str(caught.value)
    assert not dest.exists(), "a refused archive leaves no dataset folder"
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(["upload." + fmt, "outside"])


def test_damaged_archives_are_refused(tmp_path: Path) -> None:
    good = zip_of(("a.txt", b"hello" * 1000))(tmp_path / "good.zip").read_bytes()
    (tmp_path / "cut.zip").write_bytes(good[: len(good) // 2])
    (tmp_path / "cut.tar.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    for name, fmt in (("cut.zip", ZIP), ("cut.tar.gz", TAR_GZ)):
        with pytest.raises(ArchiveError, match=f"not a readable {fmt.replace('.', '[.]')} archive"):
            extract(tmp_path / name, fmt, tmp_path / "set", LIMITS)
        assert not (tmp_path / "set").exists()


def test_a_good_archive_unpacks_below_the_destination_only(tmp_path: Path) -> None:
    archive = zip_of(("shapes/", b""), ("shapes/data.yaml", b"names: [a]"), ("shapes/images/a.png", b"png"))(
        tmp_path / "ok.zip"
    )
    entries = extract(archive, ZIP, tmp_path / "set", LIMITS)
    assert [e.name for e in entries] == ["shapes", "shapes/data.yaml", "shapes/images/a.png"]
    assert (tmp_path / "set" / "shapes" / "data.yaml").read_text() == "names: [a]"
    assert (tmp_path / "set" / "shapes" / "images" / "a.png").read_bytes() == b"png"


def test_sniff_tells_zip_and_gzip_from_anything_else() -> None:
    assert sniff(b"PK\x03\x04rest") == ZIP
    assert sniff(b"PK\x05\x06") == ZIP  # an empty zip is still a zip (then refused as empty)
    assert sniff(b"\x1f\x8b\x08\x00") == TAR_GZ
    assert sniff(b"name: x") is None
