"""A jobs folder as plain values: the names in it, its files and jobsync's manifest.

Names of job files and of jobsync's own files on a peer.
Names compare as Windows compares them: case-insensitively. Everything jobsync keeps on a peer
lives under ``.jobsync/`` inside the jobs folder, which the (non-recursive) pattern never reaches,
so a backup or a trashed job can never be taken for a job.

The one exception is a job being written where ``.jobsync/tmp`` would not give it the jobs
folder's permissions (on NTFS, and Samba with ``acl_xattr``, a renamed file keeps the
permissions it was created with): it is created in the jobs folder itself, as
``.jobsync-<run>-<n>.tmp``, and renamed over the job once verified. Configuration refuses a
pattern that could match such a name (:func:`pattern_problem`), and every full pass removes the
ones a killed run left.

The source folder's jobs as plain values: what a scan found, and what it left out.

The record each jobs folder keeps of what jobsync wrote there: ``.jobsync/manifest.json``.
Per file it holds the SHA-256, size and write time of the version jobsync wrote, the node the
version came from (its origin) and the epoch it was pushed in. Per deleted file it keeps a
tombstone: who deleted it, in which epoch, when. At the top it names the node that owns the
folder (the services node that last pushed to it) and that node's epoch, which is what fences a
node that lost the role.

A peer file whose size and write time still match its record is known without reading it;
anything else is read and hashed. A manifest that does not parse is never trusted: the caller
sets it aside and treats the folder as unknown, which only costs reads.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple, TypeGuard

from jobsync.errors import ManifestTooNewError

STATE_DIR = ".jobsync"
TMP_DIR = f"{STATE_DIR}/tmp"  # noqa: S108 - inside the peer's jobs folder, not /tmp
TRASH_DIR = f"{STATE_DIR}/trash"
BACKUP_DIR = f"{STATE_DIR}/backup"
MANIFEST = f"{STATE_DIR}/manifest.json"
STAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"  # when a copy was kept, in UTC: see stamp_name
_STAMPED = re.compile(r".+\.(\d{8}T\d{6}\.\d{6}Z)", re.DOTALL)

_RESERVED_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)
_INVALID_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
_TEMP_NAME = re.compile(r"\.jobsync-[0-9a-z]+-[0-9]+\.tmp", re.IGNORECASE)
_TEMP_SAMPLES = (".jobsync-0a1b2c3d-1.tmp", ".JOBSYNC-0A1B2C3D-12.TMP")


def name_key(name: str) -> str:
    """The key under which a name is compared: Windows names are case-insensitive."""
    return name.casefold()


def job_temp_name(run_id: str, count: int) -> str:
    """The name a job is written under in the jobs folder before it is renamed into place."""
    return f".jobsync-{run_id}-{count}.tmp"


def is_job_temp_name(name: str) -> bool:
    """Whether ``name`` is one of jobsync's temp names in a jobs folder."""
    return _TEMP_NAME.fullmatch(name) is not None


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be the job pattern, or ``None``: it must never match a temp name."""
    matcher = compile_pattern(pattern)
    if any(matcher.fullmatch(sample) for sample in _TEMP_SAMPLES):
        return (
            f"pattern {pattern!r} also matches the names jobs are written under "
            "(.jobsync-*.tmp), so a half-written job could be taken for one"
        )
    return None


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a glob such as ``*.jobs`` into a case-insensitive full-name matcher."""
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE | re.DOTALL)


def windows_name_problem(name: str) -> str | None:  # noqa: PLR0911 - one return per rule
    """Why Windows could not store a file of this name, or ``None`` when it can."""
    # Checked once per job and per manifest entry at every pass: the first problem found is
    # the one reported, and an ordinary name pays for each test once.
    if not name:
        return "empty name"
    if not (name.isascii() or _is_text(name)):
        return "not valid Unicode text (the file system gave bytes that are not UTF-8)"
    if _INVALID_CHARS.search(name):
        return "contains a character Windows does not allow in a file name"
    if name[-1] in (".", " "):
        return "ends with a dot or a space"
    stem = name.split(".", 1)[0].rstrip(" ").upper()
    if stem in _RESERVED_DEVICES:
        return f"{stem} is a reserved device name on Windows"
    if len(name) > 255:  # noqa: PLR2004 - the NTFS limit
        return "longer than 255 characters"
    return None


def _is_text(name: str) -> bool:
    try:
        name.encode("utf-16-le")
    except UnicodeEncodeError:
        return False
    return True


def stamp_name(name: str, stamp: str) -> str:
    """The name a trashed or backed-up file gets: the original name, then when it was kept."""
    return f"{name}.{stamp}"


def kept_at(name: str) -> datetime | None:
    """When a trashed or backed-up copy was kept, from its name; ``None`` if it does not parse."""
    match = _STAMPED.fullmatch(name)
    if match is None:
        return None
    try:
        return datetime.strptime(match[1], STAMP_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:  # digits in the right places, but no such date (month 13)
        return None


FILETIME_TICK_NS = 100  # SMB carries write times in 100 ns steps


def coarse_mtime(mtime_ns: int) -> int:
    """A write time cut to the 100 ns steps that every transport can keep."""
    return mtime_ns - mtime_ns % FILETIME_TICK_NS


class RemoteFile(NamedTuple):
    """A regular file in a peer folder, as listed (a tuple: listings hold tens of thousands)."""

    name: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)  # slots: the agent keeps one per job
class SourceFile:
    """One job file as read from the source folder."""

    name: str
    size: int
    mtime_ns: int
    sha256: str
    # None when not kept (the agent reads a job again when it sends it, and checks the hash).
    content: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class SkippedFile:
    """A job file that was not read this time, and why."""

    name: str
    reason: str
    collision: bool = False  # its name differs only in case from another job's


@dataclass(frozen=True)
class SourceScan:
    """Everything read from the source folder in one pass."""

    folder: Path
    files: tuple[SourceFile, ...]
    skipped: tuple[SkippedFile, ...] = ()
    collided: tuple[SourceFile, ...] = ()  # read, but set aside: see split_collisions

    @cached_property
    def skipped_keys(self) -> frozenset[str]:
        """Name keys of every job not pushed this time: their peer copies are left alone."""
        return frozenset(name_key(s.name) for s in self.skipped)

    @property
    def by_name(self) -> dict[str, SourceFile]:
        """The files keyed by their exact name."""
        return {f.name: f for f in self.files}

    @cached_property
    def by_key(self) -> dict[str, SourceFile]:
        """The files keyed by name key (built once per scan: the agent looks names up often).

        Names that differ only in case are in ``collided``, never in ``files``.
        """
        return {name_key(f.name): f for f in self.files}


FORMAT = 2
READABLE_FORMATS = (1, 2)  # format 1 had no epochs: everything in it is epoch 0
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ManifestCorruptError(ValueError):
    """The manifest does not parse or names something that cannot be a job file."""


@dataclass(frozen=True, slots=True)  # slots: the agent keeps one per job and peer
class ManifestEntry:
    """What jobsync wrote for one file, and where that version came from."""

    name: str
    sha256: str
    size: int
    mtime_ns: int
    origin: str
    written: str
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A job that its owner deleted: it must stay deleted unless a newer version appears."""

    name: str
    origin: str
    epoch: int
    deleted_ns: int


@dataclass(frozen=True)
class Manifest:
    """Every file jobsync wrote to one folder, keyed case-insensitively, and who owns it."""

    node: str = ""
    updated: str = ""
    entries: Mapping[str, ManifestEntry] = field(default_factory=dict)
    epoch: int = 0
    owner: str = ""
    owner_since: str = ""
    owner_install: str = ""  # the owner's install id and host (jobsync.node); "" before 0.3
    owner_host: str = ""
    tombstones: Mapping[str, Tombstone] = field(default_factory=dict)

    def get(self, name: str) -> ManifestEntry | None:
        """The record for ``name``, compared as Windows compares names."""
        return self.entries.get(name_key(name))

    def tombstone(self, name: str) -> Tombstone | None:
        """The deletion record for ``name``, if any."""
        return self.tombstones.get(name_key(name))

    @property
    def highest_epoch(self) -> int:
        """The highest epoch this manifest mentions anywhere."""
        return max(
            [self.epoch]
            + [e.epoch for e in self.entries.values()]
            + [t.epoch for t in self.tombstones.values()]
        )


def manifest_to_bytes(manifest: Manifest) -> bytes:
    """Serialise a manifest as stable JSON."""
    files = {
        e.name: {
            "sha256": e.sha256,
            "size": e.size,
            "mtime_ns": e.mtime_ns,
            "origin": e.origin,
            "epoch": e.epoch,
            "written": e.written,
        }
        for e in sorted(manifest.entries.values(), key=lambda e: name_key(e.name))
    }
    deleted = {
        t.name: {"origin": t.origin, "epoch": t.epoch, "deleted_ns": t.deleted_ns}
        for t in sorted(manifest.tombstones.values(), key=lambda t: name_key(t.name))
    }
    doc = {
        "format": FORMAT,
        "node": manifest.node,
        "updated": manifest.updated,
        "epoch": manifest.epoch,
        "owner": manifest.owner,
        "owner_since": manifest.owner_since,
        "owner_install": manifest.owner_install,
        "owner_host": manifest.owner_host,
        "files": files,
        "deleted": deleted,
    }
    # Compact on purpose: with indent, json falls back to its pure-Python encoder (10x slower).
    return (json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")


def manifest_from_bytes(data: bytes) -> Manifest:
    """Parse a manifest, refusing anything that is not exactly what jobsync writes."""
    try:
        doc = json.loads(data.decode("utf-8"), object_hook=_compact_entry)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestCorruptError(f"not valid JSON: {exc}") from None
    version = doc.get("format") if isinstance(doc, dict) else None
    if _is_count(version) and version > FORMAT:
        raise ManifestTooNewError(
            f"written by a newer jobsync (manifest format {version}; this one reads formats up "
            f"to {FORMAT})"
        )
    if not isinstance(doc, dict) or not _is_count(version) or version not in READABLE_FORMATS:
        raise ManifestCorruptError("not a jobsync manifest of a known format")
    files, deleted = doc.get("files"), doc.get("deleted", {})
    keys = ("node", "updated", "owner", "owner_since", "owner_install", "owner_host")
    texts = [doc.get(k, "") for k in keys]
    epoch = doc.get("epoch", 0)
    if not isinstance(files, dict) or not isinstance(deleted, dict):
        raise ManifestCorruptError("missing or malformed keys")
    if not all(isinstance(t, str) for t in texts) or not _is_count(epoch):
        raise ManifestCorruptError("malformed owner or epoch")
    entries = {name_key(name): _entry(name, raw) for name, raw in files.items()}
    tombstones = {name_key(name): _tombstone(name, raw) for name, raw in deleted.items()}
    if len(entries) != len(files) or len(tombstones) != len(deleted):
        raise ManifestCorruptError("records two files whose names differ only in case")
    node, updated, owner, owner_since, owner_install, owner_host = texts
    return Manifest(
        node=node,
        updated=updated,
        entries=entries,
        epoch=epoch,
        owner=owner,
        owner_since=owner_since,
        owner_install=owner_install,
        owner_host=owner_host,
        tombstones=tombstones,
    )


def _check_name(name: str) -> None:
    # A name with a separator or '..' could steer a write or delete outside the jobs folder.
    if windows_name_problem(name) is not None or name in (".", ".."):
        raise ManifestCorruptError(f"names an impossible file {name!r}")


class _EntryFields(NamedTuple):
    """The fields of one file record, as parsed and not yet checked."""

    sha256: Any
    size: Any
    mtime_ns: Any
    origin: Any
    written: Any
    epoch: Any


def _compact_entry(raw: dict[str, Any]) -> dict[str, Any] | _EntryFields:
    """Turn each file record into a tuple as soon as it is parsed.

    Ten thousand parsed dicts left as holes among the strings the manifest keeps would hold
    several megabytes of the agent's memory; each one freed at once is reused for the next.
    """
    return _fields_of(raw) if "sha256" in raw else raw


def _fields_of(raw: dict[str, Any]) -> _EntryFields:
    return _EntryFields(
        raw.get("sha256"),
        raw.get("size"),
        raw.get("mtime_ns"),
        raw.get("origin", ""),
        raw.get("written", ""),
        raw.get("epoch", 0),
    )


def _entry(name: str, raw: Any) -> ManifestEntry:  # noqa: ANN401 - untrusted JSON
    _check_name(name)
    if isinstance(raw, dict):
        raw = _fields_of(raw)  # a record without a sha256, left a dict by the parser
    if not isinstance(raw, _EntryFields):
        raise ManifestCorruptError(f"entry for {name!r} is not an object")
    sha, size, mtime, origin, written, epoch = raw
    if not (isinstance(sha, str) and _SHA256.fullmatch(sha)):
        raise ManifestCorruptError(f"entry for {name!r} has no valid sha256")
    if not (_is_count(size) and _is_count(mtime) and _is_count(epoch)):
        raise ManifestCorruptError(f"entry for {name!r} has an invalid size, time or epoch")
    if not isinstance(origin, str) or not isinstance(written, str):
        raise ManifestCorruptError(f"entry for {name!r} has an invalid origin")
    return ManifestEntry(
        name=name,
        sha256=sha,
        size=size,
        mtime_ns=mtime,
        origin=sys.intern(origin),  # a handful of distinct values over thousands of entries
        written=sys.intern(written),
        epoch=epoch,
    )


def _tombstone(name: str, raw: Any) -> Tombstone:  # noqa: ANN401 - untrusted JSON
    _check_name(name)
    if not isinstance(raw, dict):
        raise ManifestCorruptError(f"deletion record for {name!r} is not an object")
    origin, epoch, deleted = raw.get("origin", ""), raw.get("epoch", 0), raw.get("deleted_ns")
    if not (isinstance(origin, str) and _is_count(epoch) and _is_count(deleted)):
        raise ManifestCorruptError(f"deletion record for {name!r} is malformed")
    return Tombstone(name=name, origin=origin, epoch=epoch, deleted_ns=deleted)


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
