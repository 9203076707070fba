"""Reading and writing a peer's ``.jobsync/manifest.json`` through any transport."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

from jobsync.errors import PeerFileNotFoundError, PeerIOError
from jobsync.manifest import (
    Manifest,
    ManifestCorruptError,
    ManifestTooNewError,
    manifest_from_bytes,
    manifest_to_bytes,
)
from jobsync.names import MANIFEST, STATE_DIR, stamp_name
from jobsync.transport.base import FileWrite, Peer, RemoteFile, WriteOutcome


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
