"""Reading the source folder: which job files exist, and the SHA-256 of each.

A job is read only while it holds still: its size and write time must be the same before and
after the read, else it is read again, and skipped with a warning if it keeps changing. An
entry that cannot be read is skipped with a warning; only a missing source folder is fatal,
because an empty scan would otherwise look like "every job was deleted".
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from jobsync.errors import SourceError
from jobsync.names import compile_pattern, windows_name_problem

log = structlog.get_logger(__name__)

READ_ATTEMPTS = 4
RETRY_PAUSE_SECONDS = 0.05


@dataclass(frozen=True)
class SourceFile:
    """One job file as read from the source folder."""

    name: str
    size: int
    mtime_ns: int
    sha256: str
    content: bytes = field(repr=False, compare=False)


@dataclass(frozen=True)
class SkippedFile:
    """A job file that was not read this time, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class SourceScan:
    """Everything read from the source folder in one pass."""

    folder: Path
    files: tuple[SourceFile, ...]
    skipped: tuple[SkippedFile, ...] = ()

    @property
    def by_name(self) -> dict[str, SourceFile]:
        """The files keyed by their exact name."""
        return {f.name: f for f in self.files}


class UnstableFileError(Exception):
    """A file kept changing while it was being read."""


def scan_source(
    folder: Path,
    pattern: str,
    *,
    pause: Callable[[float], None] = time.sleep,
) -> SourceScan:
    """Read every job in ``folder`` that matches ``pattern`` (case-insensitive, not recursive)."""
    matcher = compile_pattern(pattern)
    entries = _list_folder(folder)
    files: list[SourceFile] = []
    skipped: list[SkippedFile] = []
    for entry in sorted(entries, key=lambda e: e.name):
        if not matcher.fullmatch(entry.name):
            continue
        problem = windows_name_problem(entry.name)
        if problem is not None:
            skipped.append(SkippedFile(entry.name, f"name not valid on Windows: {problem}"))
            continue
        try:
            files.append(read_stable(Path(entry.path), pause=pause))
        except IsADirectoryError:
            continue
        except UnstableFileError:
            skipped.append(SkippedFile(entry.name, "kept changing while being read"))
        except OSError as exc:
            skipped.append(SkippedFile(entry.name, f"cannot be read: {exc.strerror or exc}"))
    for skip in skipped:
        log.warning("source_file_skipped", file=skip.name, reason=skip.reason)
    return SourceScan(folder=folder, files=tuple(files), skipped=tuple(skipped))


def _list_folder(folder: Path) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(folder))
    except FileNotFoundError:
        raise SourceError(
            f"source folder {folder} does not exist: nothing was copied or deleted"
        ) from None
    except NotADirectoryError:
        raise SourceError(f"source {folder} is not a folder") from None
    except OSError as exc:
        raise SourceError(f"source folder {folder} cannot be listed: {exc.strerror}") from None


def read_stable(path: Path, *, pause: Callable[[float], None] = time.sleep) -> SourceFile:
    """Read one file whose size and write time hold still across the read."""
    for attempt in range(READ_ATTEMPTS):
        if attempt:
            pause(RETRY_PAUSE_SECONDS * attempt)
        with path.open("rb") as handle:
            before = os.fstat(handle.fileno())
            if not stat.S_ISREG(before.st_mode):
                raise IsADirectoryError(path)
            content = handle.read()
            after = os.fstat(handle.fileno())
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            continue
        if len(content) != after.st_size:
            continue
        return SourceFile(
            name=path.name,
            size=len(content),
            mtime_ns=after.st_mtime_ns,
            sha256=hashlib.sha256(content).hexdigest(),
            content=content,
        )
    raise UnstableFileError(path)
