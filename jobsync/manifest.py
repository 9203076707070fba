"""The record each jobs folder keeps of what jobsync wrote there: ``.jobsync/manifest.json``.

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

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeGuard

from jobsync.names import name_key, windows_name_problem

FORMAT = 2
READABLE_FORMATS = (1, 2)  # format 1 had no epochs: everything in it is epoch 0
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ManifestCorruptError(ValueError):
    """The manifest does not parse or names something that cannot be a job file."""


class ManifestTooNewError(ValueError):
    """The manifest is in a format a newer jobsync writes: this one must not rewrite it."""


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
    owner_install: str = ""  # the owner's install id and host (jobsync.identity); "" before 0.3
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
