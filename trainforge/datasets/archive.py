"""Read uploaded .zip and .tar.gz archives safely: every entry is checked before a byte is written.

Refused, each with a message naming the entry: absolute paths and `..` (zip-slip), backslashes,
symlinks and hard links, device files and FIFOs, names that are not UTF-8, duplicate names, more
entries than `max_files`, and an unpacked size or packed-to-unpacked ratio past the limits (zip
bombs). Extraction writes regular files and folders only, below the destination, created fresh
(O_EXCL | O_NOFOLLOW); the byte count is enforced on the data actually read, not on the headers.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

ZIP, TAR_GZ = "zip", "tar.gz"
FORMATS = (ZIP, TAR_GZ)
# Below this unpacked size a high compression ratio is harmless (label text compresses well).
RATIO_FLOOR_BYTES = 1024 * 1024
_COPY_CHUNK = 1024 * 1024


class ArchiveError(ValueError):
    """The archive cannot be used; the message names the entry and the rule it breaks."""


@dataclass(frozen=True)
class Limits:
    """What one archive may hold once unpacked."""

    max_files: int
    max_bytes: int
    max_ratio: float


@dataclass(frozen=True)
class Entry:
    """One checked archive entry: its clean relative name, whether it is a folder, its declared size."""

    name: str
    is_dir: bool
    size: int


def sniff(head: bytes) -> str | None:
    """Return the archive format of bytes starting with `head` (zip or tar.gz), or None."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return ZIP
    if head[:2] == b"\x1f\x8b":
        return TAR_GZ
    return None


def clean_name(raw: str) -> str:
    """Return an entry's name as a relative POSIX path, or raise ArchiveError saying why it is unsafe."""
    if any(0xDC80 <= ord(ch) <= 0xDCFF for ch in raw):
        shown = raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise ArchiveError(f"entry {shown!r}: the name is not UTF-8; rename it and pack the archive again")
    if "\x00" in raw or "\\" in raw:
        raise ArchiveError(f"entry {raw!r}: NUL or backslash in the name; use '/' between folders")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise ArchiveError(f"entry {raw!r}: absolute path; archive entries must be relative")
    parts = [p for p in PurePosixPath(raw).parts if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"entry {raw!r}: '..' in the path would write outside the dataset folder")
    if not parts:
        raise ArchiveError(f"entry {raw!r}: empty name")
    return "/".join(parts)


def _zip_name(info: zipfile.ZipInfo) -> str:
    """Return a zip entry's name as UTF-8 text; raw names without the UTF-8 flag must decode as UTF-8."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    return raw.decode("utf-8", "surrogateescape")


def _zip_entries(archive: zipfile.ZipFile) -> Iterator[tuple[str, int, int, str]]:
    """Yield (raw name, mode, size, kind) per zip entry; kind is file, dir or other."""
    for info in archive.infolist():
        mode = info.external_attr >> 16
        file_type = stat.S_IFMT(mode)  # 0 when the packer recorded no unix type (DOS attributes only)
        if stat.S_ISLNK(mode):
            kind = "symlink"
        elif file_type and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            kind = "special"
        else:
            kind = "dir" if info.is_dir() else "file"
        yield _zip_name(info), mode, info.file_size, kind


def _tar_kind(member: tarfile.TarInfo) -> str:
    """Return file, dir, symlink, hardlink or special for a tar member."""
    if member.isreg():
        return "file"
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    return "special"


_KIND_MESSAGES = {
    "symlink": "is a symbolic link; links are refused, pack the file itself",
    "hardlink": "is a hard link; links are refused, pack the file itself",
    "special": "is a device file, FIFO or socket; only files and folders are allowed",
}


class _Checker:
    """Applies every rule to the entries of one archive as they are read."""

    def __init__(self, limits: Limits, packed_size: int) -> None:
        self.limits = limits
        self.packed = max(packed_size, 1)
        self.seen: set[str] = set()
        self.total = 0
        self.count = 0

    def check(self, raw: str, kind: str, size: int) -> Entry:
        """Check one entry and return it cleaned; raise ArchiveError naming it otherwise."""
        name = clean_name(raw)
        if kind in _KIND_MESSAGES:
            raise ArchiveError(f"entry {name!r} {_KIND_MESSAGES[kind]}")
        if name in self.seen:
            raise ArchiveError(f"entry {name!r} appears twice in the archive; keep one")
        self.seen.add(name)
        self.count += 1
        if self.count > self.limits.max_files:
            raise ArchiveError(
                f"entry {name!r}: the archive holds more than {self.limits.max_files} entries "
                "(TRAINFORGE_ARCHIVE_MAX_FILES)"
            )
        self.add_bytes(name, size)
        return Entry(name, kind == "dir", size)

    def add_bytes(self, name: str, size: int) -> None:
        """Count `size` unpacked bytes of entry `name` against the size and ratio limits."""
        self.total += size
        if self.total > self.limits.max_bytes:
            raise ArchiveError(
                f"entry {name!r}: the archive unpacks to more than {self.limits.max_bytes} bytes "
                "(TRAINFORGE_ARCHIVE_MAX_BYTES)"
            )
        ratio = self.total / self.packed
        if self.total > RATIO_FLOOR_BYTES and ratio > self.limits.max_ratio:
            raise ArchiveError(
                f"entry {name!r}: the archive unpacks to {ratio:.0f} times its packed size, past the "
                f"limit of {self.limits.max_ratio:g} (TRAINFORGE_ARCHIVE_MAX_RATIO): a zip bomb?"
            )


def check_archive(path: Path, fmt: str, limits: Limits) -> list[Entry]:
    """Read every entry header of the archive and return them checked; nothing is written."""
    checker = _Checker(limits, path.stat().st_size)
    try:
        if fmt == ZIP:
            with zipfile.ZipFile(path) as archive:
                entries = [checker.check(raw, kind, size) for raw, _, size, kind in _zip_entries(archive)]
        else:
            with tarfile.open(path, "r:gz", encoding="utf-8", errors="surrogateescape") as tar:
                entries = [checker.check(m.name, _tar_kind(m), m.size) for m in tar]
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(f"not a readable {fmt} archive ({exc}); pack it again") from None
    if not any(not e.is_dir for e in entries):
        raise ArchiveError("the archive is empty: it holds no files")
    return entries


def extract(path: Path, fmt: str, dest: Path, limits: Limits) -> list[Entry]:
    """Check the archive, then unpack it into the new folder `dest`; on any error `dest` is removed."""
    entries = check_archive(path, fmt, limits)
    dest.mkdir(parents=True)
    try:
        checker = _Checker(limits, path.stat().st_size)
        if fmt == ZIP:
            with zipfile.ZipFile(path) as archive:
                for info, entry in zip(archive.infolist(), entries, strict=True):
                    with archive.open(info) as src:
                        _write(dest, entry, src, checker)
        else:
            with tarfile.open(path, "r:gz", encoding="utf-8", errors="surrogateescape") as tar:
                for member, entry in zip(tar, entries, strict=True):
                    _write(dest, entry, tar.extractfile(member) if member.isreg() else None, checker)
    except BaseException as exc:
        shutil.rmtree(dest, ignore_errors=True)
        if isinstance(exc, (zipfile.BadZipFile, tarfile.TarError, EOFError)):
            raise ArchiveError(f"the {fmt} archive is damaged ({exc}); pack it again") from None
        raise
    return entries


def _write(dest: Path, entry: Entry, src: IO[bytes] | None, checker: _Checker) -> None:
    """Create one folder, or one file with the bytes of `src`, below `dest` and nowhere else."""
    target = dest.joinpath(*entry.name.split("/"))
    try:
        if entry.is_dir:
            target.mkdir(parents=True, exist_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.parent.resolve().is_relative_to(dest.resolve()):
            raise ArchiveError(f"entry {entry.name!r}: its folder lies outside the dataset folder")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except (FileExistsError, NotADirectoryError):
        raise ArchiveError(f"entry {entry.name!r} clashes with another entry of the same path") from None
    with os.fdopen(fd, "wb") as out:
        while src is not None and (chunk := src.read(_COPY_CHUNK)):
            checker.add_bytes(entry.name, len(chunk))
            out.write(chunk)
