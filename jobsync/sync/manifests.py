"""A peer's ``.jobsync/manifest.json``: read, written, and what a pass records in it.

Reading and writing a peer's ``.jobsync/manifest.json`` through any transport.

The manifest a pass leaves on a peer: what landed, what was deleted, and who owns the folder.
Pure: the records are built from plain values (the old manifest, the plan, what landed), so
the rules of what a record says are tested without a peer.

What one peer's manifest is, as far as this sync knows: when to read it again, when to save it.
The cache remembers the manifest with the size and write time its file had when this sync
last read or wrote it, so a pass reads it again only when something else changed it (another
jobsync: a takeover). A save may be deferred: the manifest then lags behind the peer until
:meth:`ManifestCache.save_deferred`, which costs the next pass only reads, never data.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from jobsync.errors import ManifestTooNewError, PeerError, PeerFileNotFoundError, PeerIOError
from jobsync.jobs_folder import (
    MANIFEST,
    STATE_DIR,
    Manifest,
    ManifestCorruptError,
    ManifestEntry,
    RemoteFile,
    SourceFile,
    Tombstone,
    manifest_from_bytes,
    manifest_to_bytes,
    name_key,
    stamp_name,
)
from jobsync.node import NODE_FILE, Identity, identity_from_bytes
from jobsync.plan import PeerPlan
from jobsync.result import FileFailure
from jobsync.transport.base import FileWrite, Peer, WriteOutcome
from jobsync.versions import local_version


def manifest_listing(peer: Peer) -> RemoteFile | None:
    """The peer's manifest file as listed (size, write time), or ``None`` when it has none."""
    return state_listing(peer).get("manifest.json")


def state_listing(peer: Peer) -> dict[str, RemoteFile]:
    """The files of the peer's ``.jobsync/`` folder by name (manifest, ``node.json``, ...)."""
    return {f.name: f for f in peer.list_files(STATE_DIR)}


class Distrust(Enum):
    """Why a manifest is not used, which decides what becomes of it."""

    CORRUPT = "corrupt"  # does not parse: set aside and rebuilt
    UNREADABLE = "unreadable"  # the peer refused the read
    NEWER = "newer"  # a newer jobsync's format: the folder is left alone


@dataclass(frozen=True)
class ManifestProblem:
    """A manifest that could not be used, and why in words."""

    kind: Distrust
    detail: str

    def __str__(self) -> str:
        """``kind: detail``, as reports show it."""
        return f"{self.kind.value}: {self.detail}"


def read_manifest(
    peer: Peer, *, listed: bool | None = None
) -> tuple[Manifest, ManifestProblem | None]:
    """A peer's manifest, and why it cannot be trusted (then it is empty); changes nothing.

    ``listed`` says whether the caller already saw the file in a listing (saves one).
    """
    if listed is None:
        listed = manifest_listing(peer) is not None
    if not listed:
        return Manifest(), None
    data = peer.read_files([MANIFEST])[MANIFEST]
    if isinstance(data, PeerIOError):
        return Manifest(), ManifestProblem(Distrust.UNREADABLE, str(data))
    try:
        return manifest_from_bytes(data), None
    except ManifestCorruptError as exc:
        return Manifest(), ManifestProblem(Distrust.CORRUPT, str(exc))
    except ManifestTooNewError as exc:
        return Manifest(), ManifestProblem(Distrust.NEWER, str(exc))


def set_manifest_aside(peer: Peer, stamp: str) -> str:
    """Move a manifest that does not parse out of the way, keeping it; return where it went."""
    aside = f"{STATE_DIR}/{stamp_name('manifest.json', stamp)}.corrupt"
    peer.move_files([(MANIFEST, aside)])
    return aside


def write_manifest(peer: Peer, manifest: Manifest, *, temp: str) -> WriteOutcome:
    """Replace a folder's manifest atomically (temp name, read back, rename)."""
    write = FileWrite(
        path=MANIFEST, temp=temp, data=manifest_to_bytes(manifest), mtime_ns=time.time_ns()
    )
    (outcome,) = peer.write_files([write])
    return outcome


def is_not_found(error: PeerIOError) -> bool:
    """Whether a failed read says the file is not there; any other error costs a full pass."""
    return isinstance(error, PeerFileNotFoundError)


@dataclass(frozen=True, kw_only=True)
class Author:
    """Who writes a pass's records: the node, its epoch, and its own folder's manifest."""

    node: str
    epoch: int
    local: Manifest  # the services node's own manifest: where its jobs' versions came from
    install: str = ""  # the node's install id and host (jobsync.node), kept in the manifest
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


class ManifestCache:
    """One peer's manifest between passes, and whether the peer's copy lags behind it."""

    def __init__(self, log: Any) -> None:  # noqa: ANN401 - structlog's bound logger
        """Know nothing yet."""
        self._log = log
        self.manifest: Manifest | None = None
        self._stamp: tuple[int, int] | None = None
        self.unsaved_since: float | None = None  # when memory got ahead of the peer's manifest
        self.identity: Identity | None = None  # whose folder this is, by its node.json
        self._identity_stamp: tuple[int, int] | None = None

    def forget(self) -> None:
        """Know nothing of the peer's manifest: the next pass reads it again."""
        self.manifest = self._stamp = self.unsaved_since = None
        self.identity = self._identity_stamp = None

    def is_current(self, peer: Peer) -> bool:
        """Whether the peer's manifest is still the one this sync last read or wrote."""
        listed = manifest_listing(peer)
        return listed is not None and (listed.size, listed.mtime_ns) == self._stamp

    def load(self, peer: Peer, *, set_aside: str | None) -> Manifest:
        """The peer's manifest, read again only when its file changed; empty when untrusted.

        A manifest that does not parse is moved aside under the time ``set_aside`` (``None``
        in a dry run: then it stays where it is), never trusted. One in a newer jobsync's format
        raises :class:`ManifestTooNewError`: its epochs and deletions are not this one's to drop.
        """
        listing = state_listing(peer)
        self._note_identity(peer, listing.get(NODE_FILE.rsplit("/", 1)[1]))
        listed = listing.get("manifest.json")
        if listed is None:
            return Manifest()
        if self.manifest is not None and self._stamp == (listed.size, listed.mtime_ns):
            return self.manifest  # unchanged since this sync last read or wrote it
        manifest, problem = read_manifest(peer, listed=True)
        self.unsaved_since = None  # whatever memory held is superseded by the peer's own
        if problem is not None and problem.kind is Distrust.NEWER:
            raise ManifestTooNewError(
                f"its manifest was {problem.detail}: upgrade jobsync on this node; nothing was "
                "changed there"
            )
        if problem is not None:
            aside = None
            if set_aside is not None and problem.kind is Distrust.CORRUPT:
                aside = set_manifest_aside(peer, set_aside)
            self._log.warning("manifest_not_trusted", reason=str(problem), kept_as=aside)
            return Manifest()
        self.manifest, self._stamp = manifest, (listed.size, listed.mtime_ns)
        return manifest

    def _note_identity(self, peer: Peer, listed: RemoteFile | None) -> None:
        """Read the peer's ``node.json`` when it changed (one small read, then none)."""
        stamp = None if listed is None else (listed.size, listed.mtime_ns)
        if stamp == self._identity_stamp:
            return
        data = peer.read_files([NODE_FILE])[NODE_FILE] if listed is not None else None
        self.identity = identity_from_bytes(data) if isinstance(data, bytes) else None
        self._identity_stamp = stamp

    def defer(self, manifest: Manifest) -> None:
        """Keep ``manifest`` in memory as the peer's, to be saved later."""
        self.manifest = manifest
        if self.unsaved_since is None:
            self.unsaved_since = time.monotonic()

    def save(self, peer: Peer, manifest: Manifest, *, temp: str) -> FileFailure | None:
        """Write ``manifest`` to the peer; a failure to report, if the write was refused.

        A lost connection is logged, not raised: the manifest is then unknown, and the next
        pass reads the peer's again.
        """
        try:
            outcome = write_manifest(peer, manifest, temp=temp)
        except PeerError as exc:
            self.forget()
            self._log.warning("manifest_not_saved", error=str(exc))
            return None
        if outcome.landed is None:
            self.forget()
            return FileFailure(MANIFEST, f"manifest not saved: {outcome.error}")
        self.manifest = manifest
        self._stamp = (outcome.landed.size, outcome.landed.mtime_ns)
        self.unsaved_since = None
        return None

    def save_deferred(self, peer: Peer, *, temp: str) -> None:
        """Write the manifest passes deferred, unless another jobsync rewrote it meanwhile.

        Never raises: a failure leaves the manifest unknown, which the next pass repairs.
        """
        manifest = self.manifest
        if self.unsaved_since is None or manifest is None:
            return
        try:
            current = self.is_current(peer)
        except PeerError as exc:
            self.forget()
            self._log.warning("manifest_not_saved", error=str(exc))
            return
        if not current:
            # Theirs stands (a takeover?): the next pass rereads it, fences, and looks again.
            self.forget()
            self._log.warning("manifest_not_saved", error="another jobsync rewrote it meanwhile")
            return
        self.save(peer, manifest, temp=temp)
        self._log.debug("manifest_saved", entries=len(manifest.entries))
