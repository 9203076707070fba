"""``jobsync takeover``: make this node current before its scheduler starts, and fence the old one.

1. Read the local jobs folder (with the manifest the previous owner's pushes left in it) and
   every reachable peer's manifest and listing.
2. For each job choose the authoritative version: the highest epoch, then the latest write by
   its origin; a deletion recorded by the owner (a tombstone) is a version too, so a job the
   previous owner deleted stays deleted. Copies edited by hand are never authoritative.
3. Pull those versions into the local folder atomically, verified against the SHA-256 their
   manifest records; local files that get replaced are kept in the local ``.jobsync/backup/``,
   local files that get deleted in ``.jobsync/trash/``.
4. Start a new epoch, higher than any seen, and record it locally and on every reachable peer:
   from then on the old owner's pushes are refused.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from jobsync.config import Config, PeerConfig
from jobsync.drift import Version
from jobsync.engine import Opener, default_opener, read_manifest, write_manifest
from jobsync.epoch import Claim, read_claim, read_local_manifest, write_claim
from jobsync.errors import ExitCode, PeerError
from jobsync.manifest import Manifest, ManifestEntry, Tombstone
from jobsync.names import (
    BACKUP_DIR,
    MANIFEST,
    TMP_DIR,
    TRASH_DIR,
    compile_pattern,
    name_key,
    stamp_name,
)
from jobsync.plan import is_vouched
from jobsync.result import FileFailure
from jobsync.scan import SourceFile, SourceScan, scan_source
from jobsync.transport import FileWrite, Peer, RemoteFile
from jobsync.transport.local import LocalPeer

LOCAL = "local"


@dataclass(frozen=True)
class PeerView:
    """What takeover reads from one peer."""

    files: tuple[RemoteFile, ...]
    manifest: Manifest


@dataclass(frozen=True)
class Choice:
    """The authoritative version of one job and where it is."""

    file: str
    version: Version
    where: str  # "local" or a peer name
    entry: ManifestEntry | None = None  # for a present version held by a peer
    tombstone: Tombstone | None = None  # for a deletion


@dataclass(frozen=True)
class Action:
    """One change takeover makes to the local folder."""

    file: str
    kind: str  # "pull" or "delete"
    choice: Choice


@dataclass(frozen=True, kw_only=True)
class TakeoverResult:
    """What a takeover saw and did."""

    node: str
    epoch: int
    previous_owner: str
    previous_epoch: int
    actions: tuple[Action, ...] = ()
    failed: tuple[FileFailure, ...] = ()
    unreachable: tuple[tuple[str, str], ...] = ()
    recorded_on: tuple[str, ...] = ()
    refused: str | None = None
    dry_run: bool = False

    @property
    def exit_code(self) -> ExitCode:
        """0 when it is safe to start the services, 3 when something was not seen, 4 refused."""
        if self.refused:
            return ExitCode.REFUSED
        if self.unreachable or self.failed:
            return ExitCode.PEER_FAILED
        return ExitCode.OK


def local_candidate(
    name: str, src: SourceFile | None, local: Manifest, *, node: str, epoch: int
) -> Choice | None:
    """The local folder's version of ``name``: as recorded, a local edit, or a tombstone."""
    if src is not None:
        entry = local.get(name)
        if entry is not None and entry.sha256 == src.sha256:
            return Choice(name, Version(entry.epoch, entry.mtime_ns, entry.origin), LOCAL, entry)
        return Choice(name, Version(epoch, src.mtime_ns, node), LOCAL)
    tomb = local.tombstone(name)
    if tomb is not None:
        version = Version(tomb.epoch, tomb.deleted_ns, tomb.origin, deleted=True)
        return Choice(name, version, LOCAL, tombstone=tomb)
    return None


def peer_candidate(name: str, where: str, view: PeerView) -> Choice | None:
    """A peer's version of ``name``: a vouched-for copy or a tombstone; hand edits are none."""
    listed = next((f for f in view.files if name_key(f.name) == name_key(name)), None)
    entry = view.manifest.get(name)
    if listed is not None:
        if entry is not None and is_vouched(listed, entry):
            return Choice(name, Version(entry.epoch, entry.mtime_ns, entry.origin), where, entry)
        return None
    tomb = view.manifest.tombstone(name)
    if tomb is not None:
        version = Version(tomb.epoch, tomb.deleted_ns, tomb.origin, deleted=True)
        return Choice(name, version, where, tombstone=tomb)
    return None


def plan_takeover(
    source: Sequence[SourceFile],
    local: Manifest,
    views: Mapping[str, PeerView],
    *,
    node: str,
    epoch: int,
) -> tuple[list[Choice], list[Action]]:
    """Choose the authoritative version of every job; the actions bring the local folder there."""
    by_key = {name_key(f.name): f for f in source}
    names: dict[str, str] = {name_key(f.name): f.name for f in source}
    for manifest in [local, *(v.manifest for v in views.values())]:
        names.update({k: t.name for k, t in manifest.tombstones.items()})
    for view in views.values():
        names.update({name_key(f.name): f.name for f in view.files})
    choices, actions = [], []
    for key in sorted(names):
        name, src = names[key], by_key.get(key)
        mine = local_candidate(name, src, local, node=node, epoch=epoch)
        others = [peer_candidate(name, where, view) for where, view in sorted(views.items())]
        candidates = [c for c in [mine, *others] if c is not None]
        if not candidates:
            continue
        # max() keeps the first of equals: the local version wins a tie, so a tie changes nothing.
        best = max(candidates, key=lambda c: (c.version.epoch, c.version.time_ns))
        choices.append(best)
        if best.where == LOCAL:
            continue
        if best.version.deleted:
            if src is not None:
                actions.append(Action(src.name, "delete", best))
        elif best.entry is not None and (src is None or src.sha256 != best.entry.sha256):
            actions.append(Action(best.entry.name, "pull", best))
    return choices, actions


def takeover(
    config: Config,
    *,
    dry_run: bool = False,
    require_all: bool = False,
    opener: Opener = default_opener,
) -> TakeoverResult:
    """Make this node the owner: adopt the newest version of every job, then fence the rest."""
    local = read_local_manifest(config.source)
    claim = read_claim(config.source)
    mine = claim.epoch if claim and name_key(claim.node) == name_key(config.node) else 0
    scan = scan_source(config.source, config.pattern)
    peers, views, unreachable = _open_all(config, opener)
    try:
        seen = [local.highest_epoch, claim.epoch if claim else 0]
        seen += [v.manifest.highest_epoch for v in views.values()]
        new_epoch = max(seen) + 1
        choices, actions = plan_takeover(scan.files, local, views, node=config.node, epoch=mine)
        result = TakeoverResult(
            node=config.node,
            epoch=new_epoch,
            previous_owner=local.owner,
            previous_epoch=local.epoch,
            actions=tuple(actions),
            unreachable=tuple(unreachable),
            dry_run=dry_run,
        )
        if require_all and unreachable:
            names = ", ".join(name for name, _ in unreachable)
            refusal = f"--require-all: cannot see {names}; nothing was changed"
            return replace(result, refused=refusal)
        if dry_run:
            return result
        failed = _apply(config, actions, peers)
        _record_locally(config, scan_source(config.source, config.pattern), choices, new_epoch)
        recorded, record_failures = _record_on_peers(config, peers, views, new_epoch)
        return replace(
            result,
            failed=tuple(failed + record_failures),
            recorded_on=tuple(recorded),
        )
    finally:
        for peer in peers.values():
            peer.close()


def _open_all(
    config: Config, opener: Opener
) -> tuple[dict[str, Peer], dict[str, PeerView], list[tuple[str, str]]]:
    matcher = compile_pattern(config.pattern)

    def visit(peer_config: PeerConfig) -> tuple[str, Peer | None, PeerView | str]:
        try:
            peer = opener(peer_config, config.timeout_seconds)
        except PeerError as exc:
            return peer_config.name, None, str(exc)
        try:
            files = tuple(f for f in peer.list_files() if matcher.fullmatch(f.name))
            manifest, _problem = read_manifest(peer)
        except PeerError as exc:
            peer.close()
            return peer_config.name, None, str(exc)
        return peer_config.name, peer, PeerView(files, manifest)

    targets = config.target_peers
    with ThreadPoolExecutor(
        max_workers=max(1, len(targets)), thread_name_prefix="takeover"
    ) as pool:
        visits = list(pool.map(visit, targets))
    peers = {name: peer for name, peer, _ in visits if peer is not None}
    views = {name: view for name, _, view in visits if isinstance(view, PeerView)}
    unreachable = [(name, view) for name, _, view in visits if isinstance(view, str)]
    return peers, views, unreachable


def _manifest_temp() -> str:
    return f"{TMP_DIR}/takeover-manifest-{time.time_ns()}.tmp"


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def _apply(
    config: Config, actions: Sequence[Action], peers: Mapping[str, Peer]
) -> list[FileFailure]:
    """Pull the chosen versions and delete what the owner deleted, keeping what is replaced."""
    local = LocalPeer(config.node, config.source)
    local.make_dirs(TMP_DIR)
    stamp, failures = _stamp(), []
    pulls = [a for a in actions if a.kind == "pull"]
    deletes = [a for a in actions if a.kind == "delete"]
    for where in sorted({a.choice.where for a in pulls}):
        group = [a for a in pulls if a.choice.where == where]
        contents = peers[where].read_files([a.file for a in group])
        for action in group:
            entry, data = action.choice.entry, contents[action.file]
            assert entry is not None  # noqa: S101 - a pull always comes from a present version
            if not isinstance(data, bytes) or hashlib.sha256(data).hexdigest() != entry.sha256:
                reason = data if not isinstance(data, bytes) else "content changed since listing"
                failures.append(FileFailure(action.file, f"not pulled from {where}: {reason}"))
                continue
            failures += _replace_locally(local, action.file, data, entry.mtime_ns, stamp)
    if deletes:
        local.make_dirs(TRASH_DIR)
        moves = [(a.file, f"{TRASH_DIR}/{stamp_name(a.file, stamp)}") for a in deletes]
        for src, error in local.move_files(moves).items():
            if error is not None:
                failures.append(FileFailure(src, str(error)))
    return failures


def _replace_locally(
    local: LocalPeer, name: str, data: bytes, mtime_ns: int, stamp: str
) -> list[FileFailure]:
    existing = {f.name: f for f in local.list_files()}
    if name in existing:
        old = local.read_files([name])[name]
        if not isinstance(old, bytes):
            return [FileFailure(name, f"not replaced: cannot keep the local copy: {old}")]
        local.make_dirs(BACKUP_DIR)
        backup = FileWrite(
            path=f"{BACKUP_DIR}/{stamp_name(name, stamp)}",
            temp=f"{TMP_DIR}/takeover-{stamp}-{name_key(name)}.backup",
            data=old,
            mtime_ns=existing[name].mtime_ns,
        )
        (kept,) = local.write_files([backup])
        if kept.error is not None:
            return [FileFailure(name, f"not replaced: cannot keep the local copy: {kept.error}")]
    write = FileWrite(
        path=name,
        temp=f"{TMP_DIR}/takeover-{stamp}-{name_key(name)}.tmp",
        data=data,
        mtime_ns=mtime_ns,
    )
    (outcome,) = local.write_files([write])
    return [] if outcome.error is None else [FileFailure(name, str(outcome.error))]


def _record_locally(
    config: Config, scan: SourceScan, choices: Sequence[Choice], epoch: int
) -> None:
    """Write the claim and a local manifest describing the versions now held here."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    chosen = {name_key(c.file): c for c in choices}
    entries, tombstones = {}, {}
    for src in scan.files:
        choice = chosen.get(name_key(src.name))
        entry = choice.entry if choice else None
        if entry is not None and entry.sha256 == src.sha256:
            origin, version_epoch = entry.origin, entry.epoch
        else:
            origin, version_epoch = config.node, epoch  # known only here: this node's version
        entries[name_key(src.name)] = ManifestEntry(
            name=src.name,
            sha256=src.sha256,
            size=src.size,
            mtime_ns=src.mtime_ns,
            origin=origin,
            written=now,
            epoch=version_epoch,
        )
    present = set(entries)
    for choice in choices:
        if choice.tombstone is not None and name_key(choice.file) not in present:
            tombstones[name_key(choice.file)] = choice.tombstone
    manifest = Manifest(
        node=config.node,
        updated=now,
        entries=entries,
        epoch=epoch,
        owner=config.node,
        owner_since=now,
        tombstones=tombstones,
    )
    write_claim(config.source, Claim(node=config.node, epoch=epoch, since=now))
    local = LocalPeer(config.node, config.source)
    local.make_dirs(TMP_DIR)
    outcome = write_manifest(local, manifest, temp=_manifest_temp())
    if outcome.error is not None:
        raise outcome.error


def _record_on_peers(
    config: Config, peers: Mapping[str, Peer], views: Mapping[str, PeerView], epoch: int
) -> tuple[list[str], list[FileFailure]]:
    """Write the new epoch and owner into every reachable peer's manifest."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    recorded, failures = [], []
    for name, peer in sorted(peers.items()):
        old = views[name].manifest
        manifest = Manifest(
            node=config.node,
            updated=now,
            entries=old.entries,
            epoch=epoch,
            owner=config.node,
            owner_since=now,
            tombstones=old.tombstones,
        )
        try:
            peer.make_dirs(TMP_DIR)
            outcome = write_manifest(peer, manifest, temp=_manifest_temp())
        except PeerError as exc:
            failures.append(FileFailure(MANIFEST, f"epoch not recorded on {name}: {exc}"))
            continue
        if outcome.error is None:
            recorded.append(name)
        else:
            failures.append(FileFailure(MANIFEST, f"epoch not recorded on {name}: {outcome.error}"))
    return recorded, failures
