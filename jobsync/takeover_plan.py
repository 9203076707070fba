"""What a takeover adopts: the authoritative version of every job, from plain values.

The local folder and each reachable peer offer a candidate version of every job (see
:mod:`jobsync.versions` for what counts as one and which is newer); the newest wins, the local
one on a tie, so a tie changes nothing. The actions bring the local folder to the winners:
pull a version from the peer that holds it, or delete a job its owner deleted.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from jobsync.manifest import Manifest, ManifestEntry, Tombstone
from jobsync.names import name_key
from jobsync.source import SourceFile
from jobsync.transport.base import RemoteFile
from jobsync.versions import (
    Version,
    copy_sha,
    copy_version,
    local_version,
    owns_own_folder,
    version_key,
)

LOCAL = "local"


@dataclass(frozen=True)
class PeerView:
    """What takeover read from one peer: its job files, its manifest, and the copies it hashed."""

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
    kind: str  # "pull" or "delete"
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
    views: Mapping[str, PeerView],
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


def _peer_candidate(name: str, where: str, view: PeerView) -> Choice | None:
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
