"""The one rule for ownership and versions, and what a takeover adopts by it.

The one rule for ownership and versions: which claim owns the jobs, which version is newer.
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

What a takeover adopts: the authoritative version of every job, from plain values.
The local folder and each reachable peer offer a candidate version of every job (see
:mod:`jobsync.versions` for what counts as one and which is newer); the newest wins, the local
one on a tie, so a tie changes nothing. The actions bring the local folder to the winners:
pull a version from the peer that holds it, or delete a job its owner deleted.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from typing import Literal

from jobsync.jobs_folder import Manifest, ManifestEntry, RemoteFile, SourceFile, Tombstone, name_key

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
    install: str = ""  # the install id of the machine that made it (jobsync.node)

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


LOCAL = "local"


@dataclass(frozen=True)
class PeerFolder:
    """A peer's folder as takeover read it: its job files, its manifest, the copies it hashed."""

    files: tuple[RemoteFile, ...]
    manifest: Manifest
    hashes: Mapping[str, str | None] = field(default_factory=dict)  # name key -> SHA-256

    @cached_property
    def by_key(self) -> dict[str, list[RemoteFile]]:
        """The job files by name key (two or more: names that differ only in case)."""
        grouped: dict[str, list[RemoteFile]] = {}
        for f in self.files:
            grouped.setdefault(name_key(f.name), []).append(f)
        return grouped


@dataclass(frozen=True)
class Choice:
    """The authoritative version of one job and where it is."""

    file: str  # the job's name as the version has it
    version: Version
    where: str  # LOCAL or a peer name
    sha256: str | None = None  # the content of a present version
    entry: ManifestEntry | None = None  # its record, for a present version held by a peer
    tombstone: Tombstone | None = None  # for a deletion
    listed: str = ""  # the copy's name in its folder (the case may differ from ``file``)


@dataclass(frozen=True)
class Action:
    """One change takeover makes to the local folder."""

    file: str  # a pull: the name the job gets; a delete: the local file
    kind: Literal["pull", "delete"]
    choice: Choice
    replaces: str = ""  # a pull: the local file it replaces, in whatever case it has


def to_read(view_files: Sequence[RemoteFile], manifest: Manifest) -> list[RemoteFile]:
    """The peer copies whose content takeover must hash: recorded, but changed since."""
    return [
        f
        for f in view_files
        if (entry := manifest.get(f.name)) is not None
        and (entry.size, entry.mtime_ns) != (f.size, f.mtime_ns)
    ]


def plan_takeover(
    source: Sequence[SourceFile],
    local: Manifest,
    views: Mapping[str, PeerFolder],
    *,
    node: str,
    epoch: int,
    leave: Collection[str] = frozenset(),
) -> tuple[list[Choice], list[Action]]:
    """Choose the authoritative version of every job; the actions bring the local folder there.

    Names whose key is in ``leave`` (local files that were not read, or that differ only in
    case from another) are not looked at.
    """
    owner = owns_own_folder(
        local, node=node, epoch=epoch, others=tuple(v.manifest for v in views.values())
    )
    by_key = {name_key(f.name): f for f in source}
    names: dict[str, str] = {name_key(f.name): f.name for f in source}
    for manifest in [local, *(v.manifest for v in views.values())]:
        names.update({k: t.name for k, t in manifest.tombstones.items() if k not in names})
    for view in views.values():
        names.update(
            {name_key(f.name): f.name for f in view.files if name_key(f.name) not in names}
        )
    choices, actions = [], []
    for key in sorted(names.keys() - set(leave)):
        name, src = names[key], by_key.get(key)
        mine = _local_candidate(name, src, local, node=node, epoch=epoch, owner=owner)
        others = [_peer_candidate(name, where, view) for where, view in sorted(views.items())]
        candidates = [c for c in [mine, *others] if c is not None]
        if not candidates:
            continue
        # max() keeps the first of equals: the local version wins a tie, so a tie changes nothing.
        best = max(candidates, key=lambda c: version_key(c.version))
        choices.append(best)
        action = _action(best, src)
        if action is not None:
            actions.append(action)
    return choices, actions


def _action(best: Choice, src: SourceFile | None) -> Action | None:
    if best.where == LOCAL:
        return None
    if best.version.deleted:
        return Action(src.name, "delete", best) if src is not None else None
    if src is not None and src.sha256 == best.sha256:
        return None
    return Action(best.file, "pull", best, replaces=src.name if src is not None else "")


def _local_candidate(
    name: str, src: SourceFile | None, local: Manifest, *, node: str, epoch: int, owner: bool
) -> Choice | None:
    version = local_version(name, src, local, node=node, epoch=epoch, owner=owner)
    if version is None:
        return None
    return Choice(
        src.name if src is not None else name,
        version,
        LOCAL,
        sha256=src.sha256 if src is not None else None,
        tombstone=local.tombstone(name) if src is None else None,
    )


def _peer_candidate(name: str, where: str, view: PeerFolder) -> Choice | None:
    copies = view.by_key.get(name_key(name), [])
    if len(copies) > 1:
        return None  # names that differ only in case on a case-sensitive peer: no version
    listed = copies[0] if copies else None
    entry = view.manifest.get(name)
    sha = None if listed is None else copy_sha(listed, entry, view.hashes)
    version = copy_version(name, listed, sha, view.manifest)
    if version is None:
        return None
    if version.deleted:
        return Choice(name, version, where, tombstone=view.manifest.tombstone(name))
    assert entry is not None  # noqa: S101 - a present version has a record
    assert listed is not None  # noqa: S101 - and a copy
    return Choice(entry.name, version, where, sha256=sha, entry=entry, listed=listed.name)
