"""Drift between the source and a peer, and which side holds the newer version: pure values.

A *version* is where a job's bytes came from: the node that first pushed them (origin), the
epoch they were pushed in, and their write time on that node; a deletion is a version too
(a tombstone). Versions order by epoch, then by time: a later epoch always wins, whatever the
clocks say, and within one epoch there is one owner, whose own clock orders its writes. A copy
edited by hand on a peer is not a version at all: it is drift to repair, never newer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from jobsync.manifest import Manifest
from jobsync.names import name_key
from jobsync.scan import SourceFile
from jobsync.transport.base import RemoteFile

AFTER_EVERYTHING = 2**63  # a deletion at the owner, time unknown: after all it pushed


class Kind(str, Enum):
    """What kind of difference."""

    MISSING = "missing"  # in the source, not on the peer
    EXTRA = "extra"  # on the peer, not in the source
    DIFFERS = "differs"  # on both, different content


class Newer(str, Enum):
    """Which side holds the newer version."""

    SOURCE = "source"
    PEER = "peer"
    UNKNOWN = "unknown"


@dataclass(frozen=True, order=True)
class Version:
    """Where some bytes (or a deletion) came from; ordered by epoch, then time."""

    epoch: int
    time_ns: int
    origin: str = ""
    deleted: bool = False


@dataclass(frozen=True)
class Drift:
    """One file that differs between the source and a peer."""

    file: str
    kind: Kind
    source_sha256: str | None
    peer_sha256: str | None
    edited_on_peer: bool | None
    newer: Newer


def source_version(
    name: str, src: SourceFile | None, local: Manifest, *, node: str, epoch: int
) -> Version | None:
    """The version the source holds of ``name`` (``None`` when it cannot be known)."""
    if src is not None:
        entry = local.get(name)
        if entry is not None and entry.sha256 == src.sha256:
            return Version(entry.epoch, entry.mtime_ns, entry.origin)
        return Version(epoch, src.mtime_ns, node)  # saved here since: this node's own edit
    tomb = local.tombstone(name)
    if tomb is not None:
        return Version(tomb.epoch, tomb.deleted_ns, tomb.origin, deleted=True)
    if local.epoch > epoch and name_key(local.owner) != name_key(node):
        return None  # another node owns this folder now: its absence says nothing
    return Version(epoch, AFTER_EVERYTHING, node, deleted=True)


def peer_version(
    name: str, peer_file: RemoteFile | None, peer_sha: str | None, manifest: Manifest
) -> Version | None:
    """The version a peer holds of ``name``; ``None`` for a hand edit or an unknown file."""
    if peer_file is not None:
        entry = manifest.get(name)
        if entry is not None and entry.sha256 == peer_sha:
            return Version(entry.epoch, entry.mtime_ns, entry.origin)
        return None
    tomb = manifest.tombstone(name)
    if tomb is not None:
        return Version(tomb.epoch, tomb.deleted_ns, tomb.origin, deleted=True)
    return None


def which_is_newer(source: Version | None, peer: Version | None) -> Newer:
    """Compare two versions; an unknown peer version (a hand edit) never wins."""
    if peer is None:
        return Newer.SOURCE if source is not None else Newer.UNKNOWN
    if source is None:
        return Newer.PEER
    if (peer.epoch, peer.time_ns) > (source.epoch, source.time_ns):
        return Newer.PEER
    if (peer.epoch, peer.time_ns) < (source.epoch, source.time_ns):
        return Newer.SOURCE
    return Newer.UNKNOWN


def find_drift(
    source: Sequence[SourceFile],
    local: Manifest,
    peer_files: Sequence[RemoteFile],
    manifest: Manifest,
    *,
    peer_hashes: Mapping[str, str | None],
    node: str,
    epoch: int,
) -> list[Drift]:
    """Every file that differs, with both SHA-256s, hand edits and which side is newer.

    ``peer_hashes`` maps the name key of each peer file to its SHA-256 (``None``: unreadable);
    a file missing from it is taken to be what its manifest entry says.
    """
    by_key = {name_key(f.name): f for f in source}
    on_peer = {name_key(f.name): f for f in peer_files}
    drift = []
    for key in sorted(by_key.keys() | on_peer.keys()):
        src, peer_file = by_key.get(key), on_peer.get(key)
        name = (src or peer_file).name  # type: ignore[union-attr] # one of the two exists
        entry = manifest.get(name)
        peer_sha = None
        if peer_file is not None:
            peer_sha = peer_hashes.get(key, entry.sha256 if entry else None)
        if src is not None and peer_file is not None and src.sha256 == peer_sha:
            continue
        kind = Kind.MISSING if peer_file is None else Kind.EXTRA if src is None else Kind.DIFFERS
        edited = None if peer_file is None else entry is None or entry.sha256 != peer_sha
        newer = which_is_newer(
            source_version(name, src, local, node=node, epoch=epoch),
            peer_version(name, peer_file, peer_sha, manifest),
        )
        drift.append(
            Drift(
                file=name,
                kind=kind,
                source_sha256=src.sha256 if src else None,
                peer_sha256=peer_sha,
                edited_on_peer=edited,
                newer=newer,
            )
        )
    return drift
