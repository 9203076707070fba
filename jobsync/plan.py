"""What one peer needs, and how it drifted, decided from plain values.

The planner compares the source scan with a peer's listing and manifest. A peer file is known
without reading it when its size and write time still match what the manifest recorded;
otherwise the pass reads it and hands the planner its SHA-256. From that:

* a source file missing on the peer is copied;
* a file whose peer content differs is copied; when that content is not what jobsync last wrote
  there (edited on the peer, or never recorded), it is backed up first;
* a peer job file that is no longer in the source is moved to the peer's trash, unless that would
  remove more than ``max_delete_ratio`` of the peer's jobs (the mass-delete guard);
* names the source did not push this time (skipped, or differing only in case from another
  job's) and names two peer files share (a case-sensitive peer) are left as they are.

Drift between the source and a peer, and which side holds the newer version: pure values.
Which version is newer, and what vouches for a peer copy, is decided in :mod:`jobsync.versions`;
this module lists the files that differ and asks it for each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from jobsync.jobs_folder import Manifest, ManifestEntry, RemoteFile, SourceFile, name_key
from jobsync.versions import (
    Newer,
    copy_sha,
    copy_version,
    is_vouched,
    local_version,
    owns_own_folder,
    which_is_newer,
)


class Reason(str, Enum):
    """Why a file is copied."""

    MISSING = "missing"  # not on the peer
    CHANGED = "changed"  # the peer holds an older version jobsync wrote
    EDITED = "edited"  # the peer holds content jobsync did not write: kept in backup first


@dataclass(frozen=True)
class Copy:
    """Copy one source file to the peer."""

    source: SourceFile
    reason: Reason
    backup_of: RemoteFile | None = None  # the peer file to keep before it is replaced
    # The peer's name for the job when its case differs from the source's: the copy replaces
    # that file in one step (under the source's case, a case-sensitive peer would keep both).
    peer_name: str = ""

    @property
    def target(self) -> str:
        """The name the copy is written under on the peer."""
        return self.peer_name or self.source.name


@dataclass(frozen=True)
class PeerPlan:
    """Everything a push does to one peer."""

    copies: tuple[Copy, ...] = ()
    deletes: tuple[RemoteFile, ...] = ()
    unchanged: tuple[SourceFile, ...] = ()
    unreadable: tuple[RemoteFile, ...] = ()  # differ, but could not be read to keep a copy
    refusal: str | None = None  # deletions held back by the mass-delete guard
    held: tuple[str, ...] = ()  # names left alone on request (the peer holds a newer version)
    collisions: tuple[str, ...] = ()  # peer files whose names differ only in case: left alone

    @property
    def is_noop(self) -> bool:
        """Whether the peer already matches the source."""
        return not (
            self.copies
            or self.deletes
            or self.unreadable
            or self.refusal
            or self.held
            or self.collisions
        )


def files_to_read(
    source: Sequence[SourceFile], peer_files: Sequence[RemoteFile], manifest: Manifest
) -> list[RemoteFile]:
    """Peer files whose content the planner must know: in the source, but not vouched for.

    A vouched-for file whose recorded SHA-256 differs from the source is simply replaced, and a
    file that is not in the source goes to the trash whole, so neither needs reading.
    """
    in_source = {name_key(f.name) for f in source}
    return [
        f
        for f in peer_files
        if name_key(f.name) in in_source and not is_vouched(f, manifest.get(f.name))
    ]


def plan_peer(
    source: Sequence[SourceFile],
    peer_files: Sequence[RemoteFile],
    manifest: Manifest,
    *,
    peer_hashes: Mapping[str, str | None],
    max_delete_ratio: float,
    allow_mass_delete: bool = False,
    hold: frozenset[str] = frozenset(),
    leave: frozenset[str] = frozenset(),
) -> PeerPlan:
    """Decide what the peer needs.

    ``peer_hashes`` maps the name key of each file returned by :func:`files_to_read` to its
    SHA-256, or to ``None`` when it could not be read. Names whose key is in ``hold`` (reported
    as held) or in ``leave`` (the source's skipped names) are neither copied nor deleted, nor
    are names two peer files share (reported as collisions).
    """
    counts = Counter(name_key(f.name) for f in peer_files)
    collided = frozenset(key for key, count in counts.items() if count > 1)
    collisions = tuple(sorted(f.name for f in peer_files if name_key(f.name) in collided))
    on_peer = {name_key(f.name): f for f in peer_files}
    names = [f.name for f in source] + [f.name for f in peer_files]
    held = sorted({name for name in names if name_key(name) in hold})
    untouched = hold | leave | collided
    source = [f for f in source if name_key(f.name) not in untouched]
    copies: list[Copy] = []
    unchanged: list[SourceFile] = []
    unreadable: list[RemoteFile] = []
    for src in source:
        key = name_key(src.name)
        peer_file = on_peer.get(key)
        if peer_file is None:
            copies.append(Copy(src, Reason.MISSING))
            continue
        entry = manifest.get(peer_file.name)
        other_case = peer_file.name if peer_file.name != src.name else ""
        if is_vouched(peer_file, entry):
            assert entry is not None  # noqa: S101 - is_vouched checked it
            if entry.sha256 == src.sha256:
                unchanged.append(src)
            else:
                copies.append(Copy(src, Reason.CHANGED, peer_name=other_case))
            continue
        if key not in peer_hashes:
            raise ValueError(f"plan_peer needs the hash of {peer_file.name}: see files_to_read")
        peer_sha = peer_hashes[key]
        if peer_sha is None:
            unreadable.append(peer_file)  # cannot keep a copy, so it is not replaced
        elif peer_sha == src.sha256:
            unchanged.append(src)
        else:
            copies.append(Copy(src, Reason.EDITED, backup_of=peer_file, peer_name=other_case))

    in_source = {name_key(f.name) for f in source}
    deletes = [
        f for key, f in sorted(on_peer.items()) if key not in in_source and key not in untouched
    ]
    refusal = None
    if deletes and not allow_mass_delete and len(deletes) > max_delete_ratio * len(peer_files):
        refusal = (
            f"would delete {len(deletes)} of the peer's {len(peer_files)} job files, more than "
            f"max_delete_ratio = {max_delete_ratio:g}; nothing was deleted "
            "(use --allow-mass-delete if this is intended)"
        )
        deletes = []
    return PeerPlan(
        copies=tuple(copies),
        deletes=tuple(deletes),
        unchanged=tuple(unchanged),
        unreadable=tuple(unreadable),
        refusal=refusal,
        held=tuple(held),
        collisions=collisions,
    )


def plan_names(
    keys: Collection[str],
    source: Mapping[str, SourceFile],
    manifest: Manifest,
    *,
    peer_hashes: Mapping[str, str | None],
    max_delete_ratio: float,
    allow_mass_delete: bool = False,
) -> PeerPlan | None:
    """What the peer needs for a few names only, or ``None`` when only a full plan can say.

    Valid only while ``manifest`` records exactly the peer's jobs (true after a clean full pass
    when nothing else wrote there): its entries stand for the peer's listing. ``keys`` are the
    name keys to look at; ``source`` maps name keys to the source files among them;
    ``peer_hashes`` maps the key of each of those source files to the SHA-256 of the peer's copy
    (``None``: the peer has none). Anything this shortcut cannot decide safely (a copy that is not
    what jobsync last wrote there, which needs a backup or a record; a file that vanished from
    the peer; a name whose case changed; a deletion the mass-delete guard must weigh) answers
    ``None``.
    """
    copies: list[Copy] = []
    unchanged: list[SourceFile] = []
    deletes: list[RemoteFile] = []
    for key in sorted(keys):
        src, entry = source.get(key), manifest.entries.get(key)
        if src is None:
            if entry is not None:  # on the peer, deleted at the source
                deletes.append(RemoteFile(entry.name, entry.size, entry.mtime_ns))
            continue
        if key not in peer_hashes:
            raise ValueError(f"plan_names needs the peer's hash of {src.name}")
        decided = _decide_one(src, entry, peer_hashes[key])
        if decided is None:
            return None
        if isinstance(decided, Copy):
            copies.append(decided)
        else:
            unchanged.append(decided)
    guarded = deletes and not allow_mass_delete
    if guarded and len(deletes) > max_delete_ratio * len(manifest.entries):
        return None
    return PeerPlan(copies=tuple(copies), deletes=tuple(deletes), unchanged=tuple(unchanged))


def _decide_one(
    src: SourceFile, entry: ManifestEntry | None, peer_sha: str | None
) -> Copy | SourceFile | None:
    """A copy, the source file when the peer already holds it, or ``None``: a full plan decides."""
    if entry is not None and entry.name != src.name:
        return None  # renamed to another case: the full plan handles both names
    if peer_sha is None:
        # Recorded but gone from the peer means someone else was at work there.
        return None if entry is not None else Copy(src, Reason.MISSING)
    if entry is None or entry.sha256 != peer_sha:
        # Not what jobsync last wrote there: the full plan keeps it in backup or adopts it, so
        # the manifest goes on recording exactly the peer's jobs.
        return None
    return src if peer_sha == src.sha256 else Copy(src, Reason.CHANGED)


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
