"""Recordings inside ``.zip`` and ``.tar.gz`` archives, read in memory without unpacking to disk.

A member is addressed as ``<archive path>::<member path>``, the ``source`` of a RecordingRef.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from vibrasense.errors import InputError

SEPARATOR = "::"
_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")


@dataclass(frozen=True)
class Member:
    """One file inside an archive."""

    archive: Path
    name: str
    size: int
    modified: datetime
    checksum: str

    @property
    def source(self) -> str:
        """The address readers accept."""
        return f"{self.archive}{SEPARATOR}{self.name}"


def is_archive(path: Path) -> bool:
    """Whether the path names an archive vibrasense reads members from."""
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def list_members(archive: Path) -> list[Member]:
    """Every regular file in the archive, in archive order."""
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zipped:
                return [
                    Member(archive, info.filename, info.file_size, _zip_time(info), f"{info.CRC:08x}")
                    for info in zipped.infolist()
                    if not info.is_dir()
                ]
        with tarfile.open(archive) as tarred:
            return [
                Member(archive, info.name, info.size, datetime.fromtimestamp(info.mtime, UTC), f"{info.mtime}")
                for info in tarred.getmembers()
                if info.isfile()
            ]
    except (zipfile.BadZipFile, tarfile.TarError, OSError, EOFError) as error:
        raise InputError(archive, f"cannot read the archive ({error})") from None


def split_source(source: str) -> tuple[Path, str | None]:
    """(file path, member name or None) of a source string."""
    if SEPARATOR in source:
        archive, member = source.split(SEPARATOR, 1)
        return Path(archive), member
    return Path(source), None


def read_bytes(source: str) -> bytes:
    """All bytes of a file or an archive member; a FIFO, device or socket is refused, never read (it may block)."""
    path, member = split_source(source)
    try:
        if member is None:
            kind = stat.S_IFMT(path.stat().st_mode)
            if kind != stat.S_IFREG:
                raise InputError(source, f"not a regular file ({_KINDS.get(kind, 'special file')}); skipped unread")
            return path.read_bytes()
        if path.name.lower().endswith(".zip"):
            return _open_zip(str(path)).read(member)
        with tarfile.open(path) as tarred:
            handle = tarred.extractfile(member)
            if handle is None:
                raise InputError(source, "archive member is not a regular file")
            return handle.read()
    except KeyError:
        raise InputError(source, f"no member {member!r} in archive {path}") from None
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as error:
        raise InputError(source, f"corrupt archive member ({error})") from None
    except FileNotFoundError:
        dangling = path.is_symlink()
        raise InputError(source, f"broken link to {os.readlink(path)}" if dangling else "file does not exist") from None
    except OSError as error:
        raise InputError(source, f"cannot read ({error.strerror or error})") from None


@lru_cache(maxsize=8)
def _open_zip(path: str) -> zipfile.ZipFile:
    """Zip files stay open per process: a FEMTO run reads thousands of members from one archive."""
    return zipfile.ZipFile(path)


def _zip_time(info: zipfile.ZipInfo) -> datetime:
    try:
        return datetime(*info.date_time, tzinfo=UTC)
    except ValueError:
        return datetime(1980, 1, 1, tzinfo=UTC)
