"""Drift between the source and a peer, and which side holds the newer version: pure values.

Which version is newer, and what vouches for a peer copy, is decided in :mod:`jobsync.versions`;
this module lists the files that differ and asks it for each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from jobsync.manifest import Manifest
from jobsync.names import name_key
from jobsync.source import SourceFile
from jobsync.transport.base import RemoteFile
from jobsync.versions import (
    Newer,
    copy_sha,
    copy_version,
    local_version,
    owns_own_folder,
    which_is_newer,
)


class Kind(str, Enum):
    """What kind of difference."""

    MISSING = "missing"  # in the source, not on the peer
    EXTRA = "extra"  # on the peer, not in the source
    DIFFERS = "differs"  # on both, different content
    COLLISION = "collision"  # its name differs only in case from another job's: never pushed


@dataclass(frozen=True)
class Drift:
    """One file that differs between the source and a peer."""

    file: str
    kind: Kind
    source_sha256: str | None
    peer_sha256: str | None
    edited_on_peer: bool | None
    newer: Newer


def find_drift(
    source: Sequence[SourceFile],
    local: Manifest,
    peer_files: Sequence[RemoteFile],
    manifest: Manifest,
    *,
    peer_hashes: Mapping[str, str | None],
    node: str,
    epoch: int,
    collided: Sequence[SourceFile] = (),
) -> list[Drift]:
    """Every file that differs, with both SHA-256s, hand edits and which side is newer.

    ``peer_hashes`` maps the name key of each peer file that was read to its SHA-256 (``None``:
    unreadable); a file missing from it is what its manifest entry says if its size and write
    time still match. ``collided`` are source files whose names differ only in case from
    another's: each is reported as a collision, as is every peer file that shares its name key
    with another peer file.
    """
    owner = owns_own_folder(local, node=node, epoch=epoch, others=(manifest,))
    drift = _collisions(collided, peer_files)
    left_out = {name_key(d.file) for d in drift}
    by_key = {name_key(f.name): f for f in source}
    on_peer = {name_key(f.name): f for f in peer_files}
    for key in sorted((by_key.keys() | on_peer.keys()) - left_out):
        src, peer_file = by_key.get(key), on_peer.get(key)
        name = (src or peer_file).name  # type: ignore[union-attr] # one of the two exists
        entry = manifest.get(name)
        peer_sha = None if peer_file is None else copy_sha(peer_file, entry, peer_hashes)
        if src is not None and peer_file is not None and src.sha256 == peer_sha:
            continue
        kind = Kind.MISSING if peer_file is None else Kind.EXTRA if src is None else Kind.DIFFERS
        edited = None if peer_file is None else entry is None or entry.sha256 != peer_sha
        newer = which_is_newer(
            local_version(name, src, local, node=node, epoch=epoch, owner=owner),
            copy_version(name, peer_file, peer_sha, manifest),
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
    return sorted(drift, key=lambda d: (name_key(d.file), d.file))


def _collisions(collided: Sequence[SourceFile], peer_files: Sequence[RemoteFile]) -> list[Drift]:
    """A drift entry per name that shares its name key with another, in the source or the peer."""
    sources = {f.name: f for f in collided}
    counts = Counter(name_key(f.name) for f in peer_files)
    doubled = {f.name for f in peer_files if counts[name_key(f.name)] > 1}
    return [
        Drift(
            file=name,
            kind=Kind.COLLISION,
            source_sha256=sources[name].sha256 if name in sources else None,
            peer_sha256=None,
            edited_on_peer=None,
            newer=Newer.UNKNOWN,
        )
        for name in sorted(sources.keys() | doubled)
    ]
