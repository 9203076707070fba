"""What one peer's manifest is, as far as this sync knows: when to read it again, when to save it.

The cache remembers the manifest with the size and write time its file had when this sync
last read or wrote it, so a pass reads it again only when something else changed it (another
jobsync: a takeover). A save may be deferred: the manifest then lags behind the peer until
:meth:`ManifestCache.save_deferred`, which costs the next pass only reads, never data.
"""

from __future__ import annotations

import time
from typing import Any

from jobsync.errors import NewerManifestError, PeerError
from jobsync.identity import NODE_FILE, Identity, identity_from_bytes
from jobsync.manifest import Manifest
from jobsync.names import MANIFEST
from jobsync.result import FileFailure
from jobsync.transport import Peer, RemoteFile
from jobsync.transport.manifests import (
    Distrust,
    manifest_listing,
    read_manifest,
    set_manifest_aside,
    state_listing,
    write_manifest,
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
        raises :class:`NewerManifestError`: its epochs and deletions are not this one's to drop.
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
            raise NewerManifestError(
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
