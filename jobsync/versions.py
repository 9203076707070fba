"""The one rule for ownership and versions: which claim owns the jobs, which version is newer.

Pure values, used by push, reconcile and takeover alike.

* A **claim** is a node's ownership of the jobs: the epoch its last takeover started (0 before
  any) and its name. Claims never tie: the higher epoch wins, and at equal epochs the node whose
  name sorts first (compared case-insensitively) wins. Every node computes the same answer.
* A **version** is where a job's bytes (or its deletion) came from: the epoch they were pushed
  in, the node that pushed them (origin) and its write time. Versions order like the claims
  that made them, then by time: a later epoch wins whatever the clocks say; within one epoch the
  winning claim's versions win; within one owner its own clock orders its writes.
* What **vouches** for a peer copy is its SHA-256 being the one the manifest records. Reading
  every copy to hash it would cost a full read of every peer on every pass, so a copy whose
  size and write time are still the recorded ones is taken to hold the recorded bytes (jobsync
  sets the write time of everything it writes; an edit changes it). A copy that is not vouched
  for is no version at all: it is drift to repair, never newer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from jobsync.manifest import Manifest, ManifestEntry
from jobsync.names import name_key
from jobsync.source import SourceFile
from jobsync.transport.base import RemoteFile

AFTER_EVERYTHING = 2**63  # a deletion at the owner, time unknown: after all it pushed

NodeRank = tuple[int, ...]


def node_rank(node: str) -> NodeRank:
    """A sort key under which the node name that sorts first ranks highest; no name ranks last.

    Built from code points so that plain tuple comparison gives a total, transitive order.
    """
    key = name_key(node)
    if not key:
        return (0,)
    return (1, *(-ord(ch) for ch in key), 1)  # 1 ends the name: a prefix outranks its extensions


@dataclass(frozen=True)
class Claim:
    """A node's claim to own the jobs: the epoch it took over in (0 before any), and when."""

    node: str
    epoch: int
    since: str = ""
    install: str = ""  # the install id of the machine that made it (jobsync.identity)

    def outranks(self, other: Claim) -> bool:
        """Whether this claim wins over ``other``: the higher epoch, then the first name."""
        return claim_key(self) > claim_key(other)

    def same_node(self, other: Claim) -> bool:
        """Whether both claims are the same node's (names compare case-insensitively)."""
        return name_key(self.node) == name_key(other.node)


def claim_key(claim: Claim) -> tuple[int, NodeRank]:
    """The sort key of a claim: claims with equal keys are the same node in the same epoch."""
    return (claim.epoch, node_rank(claim.node))


def manifest_claim(manifest: Manifest) -> Claim | None:
    """The claim a folder's manifest records, or ``None`` when it names no owner."""
    if not manifest.owner:
        return None
    return Claim(node=manifest.owner, epoch=manifest.epoch, since=manifest.owner_since)


class Newer(str, Enum):
    """Which side holds the newer version."""

    SOURCE = "source"
    PEER = "peer"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Version:
    """Where some bytes (or a deletion) came from."""

    epoch: int
    time_ns: int
    origin: str = ""
    deleted: bool = False


def version_key(version: Version) -> tuple[int, NodeRank, int]:
    """The sort key of a version: epoch, then the rank of its origin's claim, then time."""
    return (version.epoch, node_rank(version.origin), version.time_ns)


def which_is_newer(source: Version | None, peer: Version | None) -> Newer:
    """Compare two versions; a side with no version (a hand edit) never wins."""
    if peer is None:
        return Newer.SOURCE if source is not None else Newer.UNKNOWN
    if source is None:
        return Newer.PEER
    if version_key(peer) > version_key(source):
        return Newer.PEER
    if version_key(peer) < version_key(source):
        return Newer.SOURCE
    return Newer.UNKNOWN


def is_vouched(peer_file: RemoteFile, entry: ManifestEntry | None) -> bool:
    """Whether the record still stands for this copy without reading it: same size and time."""
    return entry is not None and (entry.size, entry.mtime_ns) == (
        peer_file.size,
        peer_file.mtime_ns,
    )


def copy_sha(
    peer_file: RemoteFile, entry: ManifestEntry | None, read: Mapping[str, str | None]
) -> str | None:
    """The SHA-256 of a peer copy, ``None`` when unknown or unreadable.

    As read, when it was (``read`` maps name keys), else as recorded when the record still
    stands for the copy (:func:`is_vouched`).
    """
    key = name_key(peer_file.name)
    if key in read:
        return read[key]
    return entry.sha256 if entry is not None and is_vouched(peer_file, entry) else None


def copy_version(
    name: str, peer_file: RemoteFile | None, sha256: str | None, manifest: Manifest
) -> Version | None:
    """The version a folder holds of ``name`` by its manifest: a vouched-for copy or a tombstone.

    ``sha256`` is the copy's content hash (see :func:`copy_sha`); a copy whose content is not
    what the manifest records (a hand edit, an unknown file) is no version.
    """
    if peer_file is not None:
        entry = manifest.get(name)
        if entry is not None and sha256 is not None and entry.sha256 == sha256:
            return Version(entry.epoch, entry.mtime_ns, entry.origin)
        return None
    tomb = manifest.tombstone(name)
    if tomb is not None:
        return Version(tomb.epoch, tomb.deleted_ns, tomb.origin, deleted=True)
    return None


def owns_own_folder(
    local: Manifest, *, node: str, epoch: int, others: tuple[Manifest, ...]
) -> bool:
    """Whether ``node`` at ``epoch`` is the owner whose own folder speaks for the jobs.

    It is when no claim recorded in its folder outranks it, and something says it owns the jobs
    in that epoch: it took over (``epoch`` > 0), or its folder's or a peer's manifest names it
    the owner, or no manifest names any owner yet (nobody has pushed). Only then is its own edit
    a version and a job missing from its folder a deletion.
    """
    mine = Claim(node=node, epoch=epoch)
    recorded = manifest_claim(local)
    if recorded is not None and recorded.outranks(mine) and not recorded.same_node(mine):
        return False
    manifests = (local, *others)
    if epoch > 0 or not any(m.owner for m in manifests):
        return True
    return any(name_key(m.owner) == name_key(node) and m.epoch == epoch for m in manifests)


def local_version(
    name: str, src: SourceFile | None, local: Manifest, *, node: str, epoch: int, owner: bool
) -> Version | None:
    """The version this node's own folder holds of ``name`` (``None`` when it holds none).

    As its manifest records it, else, when this node is the ``owner`` (see
    :func:`owns_own_folder`), its own edit at ``epoch``, or for a missing job with no
    tombstone a deletion after everything it pushed; a bystander's edit or absence is none.
    """
    if src is not None:
        entry = local.get(name)
        if entry is not None and entry.sha256 == src.sha256:
            return Version(entry.epoch, entry.mtime_ns, entry.origin)
        return Version(epoch, src.mtime_ns, node) if owner else None
    tomb = local.tombstone(name)
    if tomb is not None:
        return Version(tomb.epoch, tomb.deleted_ns, tomb.origin, deleted=True)
    return Version(epoch, AFTER_EVERYTHING, node, deleted=True) if owner else None
