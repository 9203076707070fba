"""The manifest a pass leaves on a peer: what landed, what was deleted, and who owns the folder.

Pure: the records are built from plain values (the old manifest, the plan, what landed), so
the rules of what a record says are tested without a peer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from jobsync.manifest import Manifest, ManifestEntry, Tombstone
from jobsync.names import name_key
from jobsync.plan import PeerPlan
from jobsync.source import SourceFile
from jobsync.transport import RemoteFile
from jobsync.versions import local_version


@dataclass(frozen=True, kw_only=True)
class Author:
    """Who writes a pass's records: the node, its epoch, and its own folder's manifest."""

    node: str
    epoch: int
    local: Manifest  # the services node's own manifest: where its jobs' versions came from
    install: str = ""  # the node's install id and host (jobsync.identity), kept in the manifest
    host: str = ""

    def version_of(self, src: SourceFile) -> tuple[str, int]:
        """Origin and epoch of a source file's bytes: as recorded locally, else a local edit."""
        version = local_version(
            src.name, src, self.local, node=self.node, epoch=self.epoch, owner=True
        )
        return (version.origin, version.epoch) if version is not None else (self.node, self.epoch)


class Records:
    """The manifest entries and tombstones a pass is building, keyed by name key."""

    def __init__(self, entries: dict[str, ManifestEntry], tombstones: dict[str, Tombstone]) -> None:
        """Start from the records still true before the pass writes anything."""
        self.entries = entries
        self.tombstones = tombstones

    def landed(
        self, src: SourceFile, *, name: str, file: RemoteFile, author: Author, when: str
    ) -> None:
        """Record a copy of ``src`` that landed as ``file`` under ``name``."""
        origin, epoch = author.version_of(src)
        key = name_key(src.name)
        self.entries[key] = ManifestEntry(
            name=name,
            sha256=src.sha256,
            size=file.size,
            mtime_ns=file.mtime_ns,
            origin=origin,
            written=when,
            epoch=epoch,
        )
        self.tombstones.pop(key, None)

    def trashed(self, name: str, *, author: Author) -> None:
        """Record a job deleted at the source and moved to the peer's trash."""
        key = name_key(name)
        self.entries.pop(key, None)
        self.tombstones[key] = Tombstone(
            name=name, origin=author.node, epoch=author.epoch, deleted_ns=time.time_ns()
        )


def carried_records(
    manifest: Manifest,
    peer_jobs: Sequence[RemoteFile],
    plan: PeerPlan,
    *,
    author: Author,
    when: str,
) -> Records:
    """The records still true before anything is written; unchanged files adopted if new."""
    on_peer = {name_key(f.name): f for f in peer_jobs}
    entries = {k: e for k, e in manifest.entries.items() if k in on_peer}
    for src in plan.unchanged:
        key = name_key(src.name)
        current = on_peer[key]
        old = entries.get(key)
        if old is not None and (old.size, old.mtime_ns, old.sha256) == (
            current.size,
            current.mtime_ns,
            src.sha256,
        ):
            continue
        # Same bytes as the source, not (correctly) recorded yet: adopt it.
        origin, epoch = (
            (old.origin, old.epoch) if old and old.sha256 == src.sha256 else author.version_of(src)
        )
        entries[key] = ManifestEntry(
            name=current.name,
            sha256=src.sha256,
            size=current.size,
            mtime_ns=current.mtime_ns,
            origin=origin,
            written=old.written if old else when,
            epoch=epoch,
        )
    return Records(entries, dict(manifest.tombstones))


def next_manifest(
    old: Manifest, records: Records, *, author: Author, since: str | None, now: str
) -> Manifest | None:
    """The manifest to leave on the peer, or ``None`` when ``old`` already says all of it.

    ``since`` is when this node's ownership began (its takeover), for a folder it takes over.
    """
    same_owner = name_key(old.owner) == name_key(author.node) and old.epoch == author.epoch
    same_identity = (old.owner_install, old.owner_host) == (author.install, author.host)
    unchanged = dict(old.entries) == records.entries and dict(old.tombstones) == records.tombstones
    if same_owner and same_identity and unchanged:
        return None
    return Manifest(
        node=author.node,
        updated=now,
        entries=records.entries,
        epoch=author.epoch,
        owner=author.node,
        owner_since=old.owner_since if same_owner else (since or now),
        owner_install=author.install,
        owner_host=author.host,
        tombstones=records.tombstones,
    )
