"""Reading the source folder: which job files exist, and the SHA-256 of each.

A job is read only while it holds still: its size and write time must be the same before and
after the read, else it is read again, and skipped with a warning if it keeps changing. An
entry that cannot be read is skipped with a warning; only a missing source folder is fatal,
because an empty scan would otherwise look like "every job was deleted".

Names that differ only in case (``Report.jobs`` and ``report.jobs``, possible on Linux or in a
case-sensitive Windows folder) cannot both live on a Windows peer: each of them is set aside as
a collision, never pushed, and its peer copies are left as they are until one is renamed.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from jobsync.errors import SourceError
from jobsync.jobs_folder import (
    SkippedFile,
    SourceFile,
    SourceScan,
    compile_pattern,
    name_key,
    windows_name_problem,
)
from jobsync.logs import get_logger

__all__ = [
    "SkippedFile",
    "SourceError",
    "SourceFile",
    "SourceScan",
    "UnstableFileError",
    "read_content",
    "read_job",
    "read_stable",
    "scan_source",
    "split_collisions",
]

log = get_logger(__name__)

READ_ATTEMPTS = 4
RETRY_PAUSE_SECONDS = 0.05
LOCKED_ATTEMPTS = 5  # about 0.75 s in all before the file is left to the next pass
LOCKED_FIRST_WAIT = 0.05
_LOCKED_WINERRORS = (32, 33)  # ERROR_SHARING_VIOLATION, ERROR_LOCK_VIOLATION


class UnstableFileError(Exception):
    """A file kept changing while it was being read."""


def scan_source(
    folder: Path,
    pattern: str,
    *,
    previous: Mapping[str, SourceFile] | None = None,
    pause: Callable[[float], None] = time.sleep,
    keep_content: bool = True,
) -> SourceScan:
    """Read every job in ``folder`` that matches ``pattern`` (case-insensitive, not recursive).

    A file found in ``previous`` with the same size and write time is taken from there instead
    of being read again. Without ``keep_content`` only the hashes are kept.
    """
    matcher = compile_pattern(pattern)
    entries = _list_folder(folder)
    known = previous or {}
    files: list[SourceFile] = []
    skipped: list[SkippedFile] = []
    for entry in sorted(entries, key=lambda e: e.name):
        if not matcher.fullmatch(entry.name):
            continue
        outcome = _read_path(
            Path(entry.path), known.get(entry.name), pause=pause, keep_content=keep_content
        )
        if isinstance(outcome, SourceFile):
            files.append(outcome)
        elif outcome is not None:
            skipped.append(outcome)
    kept, collided, collisions = split_collisions(files)
    for skip in [*skipped, *collisions]:
        log.warning("source_file_skipped", file=skip.name, reason=skip.reason)
    return SourceScan(folder=folder, files=kept, skipped=(*skipped, *collisions), collided=collided)


def split_collisions(
    files: Sequence[SourceFile],
) -> tuple[tuple[SourceFile, ...], tuple[SourceFile, ...], tuple[SkippedFile, ...]]:
    """Set aside every file whose name differs only in case from another's.

    Returns the files to push, the files set aside, and a skip record for each set aside.
    """
    groups: dict[str, list[str]] = {}
    for f in files:
        groups.setdefault(name_key(f.name), []).append(f.name)
    kept = tuple(f for f in files if len(groups[name_key(f.name)]) == 1)
    collided = tuple(f for f in files if len(groups[name_key(f.name)]) > 1)
    skips = tuple(
        SkippedFile(
            f.name,
            "its name differs only in case from "
            + ", ".join(n for n in groups[name_key(f.name)] if n != f.name)
            + ": a Windows peer can hold only one of them, so neither is pushed "
            "(rename or remove one)",
            collision=True,
        )
        for f in collided
    )
    return kept, collided, skips


def read_job(
    folder: Path,
    name: str,
    *,
    pause: Callable[[float], None] = time.sleep,
    keep_content: bool = True,
) -> SourceFile | SkippedFile | None:
    """Read one job by name: the file, why it was skipped, or ``None`` when it is not there."""
    outcome = _read_path(folder / name, None, pause=pause, keep_content=keep_content)
    if outcome is None and not folder.is_dir():
        raise SourceError(f"source folder {folder} has disappeared: nothing was deleted")
    return outcome


def _read_path(
    path: Path, known: SourceFile | None, *, pause: Callable[[float], None], keep_content: bool
) -> SourceFile | SkippedFile | None:
    problem = windows_name_problem(path.name)
    if problem is not None:
        return SkippedFile(path.name, f"name not valid on Windows: {problem}")
    reason = None
    try:
        if known is not None:
            st = path.stat()
            if (st.st_size, st.st_mtime_ns) == (known.size, known.mtime_ns):
                return known
        return _read_unlocked(path, pause=pause, keep_content=keep_content)
    except IsADirectoryError:
        pass
    except FileNotFoundError:
        if os.path.lexists(path):  # else: gone since it was listed
            reason = "cannot be read: it is a link to nothing"
    except UnstableFileError:
        reason = "kept changing while being read"
    except OSError as exc:
        reason = f"cannot be read: {exc.strerror or exc}"
        if _is_locked(exc):
            reason += " (held by another program: tried again at the next pass)"
    return None if reason is None else SkippedFile(path.name, reason)


def _is_locked(exc: BaseException) -> bool:
    """A writer or an antivirus scanner holds the file: worth another try shortly."""
    return isinstance(exc, PermissionError) or getattr(exc, "winerror", None) in _LOCKED_WINERRORS


def _read_unlocked(
    path: Path, *, pause: Callable[[float], None], keep_content: bool = True
) -> SourceFile:
    """Read a stable file, retrying briefly while another program holds it."""
    try:
        return read_stable(path, pause=pause, keep_content=keep_content)
    except OSError as exc:
        if not _is_locked(exc):
            raise
    # Held by a writer or a scanner: try again with backoff, 0.05 s, then 0.1, 0.2 and 0.4. The
    # first try is the one above, outside tenacity, which costs more than a read on this path.
    pause(LOCKED_FIRST_WAIT)
    # Loaded here: a locked file is rare, and every push and rescan would pay for the import.
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

    retrying = Retrying(
        stop=stop_after_attempt(LOCKED_ATTEMPTS - 1),
        wait=wait_exponential(multiplier=2 * LOCKED_FIRST_WAIT, max=0.5),
        retry=retry_if_exception(_is_locked),
        sleep=pause,
        reraise=True,
    )
    return retrying(read_stable, path, pause=pause, keep_content=keep_content)


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
        raise SourceError(f"source folder {folder} cannot be listed: {exc.strerror}") from exc


def read_stable(
    path: Path, *, pause: Callable[[float], None] = time.sleep, keep_content: bool = True
) -> SourceFile:
    """Read one file whose size and write time hold still across the read."""
    for attempt in range(READ_ATTEMPTS):
        if attempt:
            pause(RETRY_PAUSE_SECONDS * attempt)
        # os-level calls: every pass reads every job, and a file object costs as much again
        fd = os.open(path, _READ_FLAGS)
        try:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                raise IsADirectoryError(path)
            content = _read_to_end(fd, before.st_size)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            continue
        if len(content) != after.st_size:
            continue
        return SourceFile(
            name=path.name,
            size=len(content),
            mtime_ns=after.st_mtime_ns,
            sha256=hashlib.sha256(content).hexdigest(),
            content=content if keep_content else None,
        )
    raise UnstableFileError(path)


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)  # O_BINARY: no newline translation


def _read_to_end(fd: int, size: int) -> bytes:
    """Everything from ``fd``'s position to the end, ``size`` being the likely length."""
    chunks = []
    while chunk := os.read(fd, max(size, 65536)):
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def read_content(folder: Path, file: SourceFile) -> bytes:
    """The bytes of ``file`` as scanned: read again when not kept, and checked by hash.

    Raises :class:`UnstableFileError` when the file changed since it was scanned (the newer
    version is sent by a later pass) and ``OSError`` when it cannot be read now.
    """
    if file.content is not None:
        return file.content
    now = _read_unlocked(folder / file.name, pause=time.sleep)
    if now.sha256 != file.sha256 or now.content is None:
        raise UnstableFileError(folder / file.name)
    return now.content
