"""``jobsync takeover``: make this node current before its scheduler starts, and fence the old one.

1. Read the local jobs folder (with the manifest the previous owner's pushes left in it) and
   every reachable peer's manifest and listing, hashing the recorded copies whose size or write
   time changed since they were recorded.
2. For each job choose the authoritative version (:mod:`jobsync.versions`); a deletion
   recorded by the owner (a tombstone) is a version too, so a job the previous owner deleted
   stays deleted. Copies edited by hand are never authoritative.
3. Pull those versions into the local folder atomically, verified against the SHA-256 their
   manifest records; local files that get replaced (whatever the case of their names) are kept
   in the local ``.jobsync/backup/``, local files that get deleted in ``.jobsync/trash/``.
4. Start a new epoch, higher than any seen, and record it locally and on every reachable peer:
   from then on the old owner's pushes are refused. A manifest that does not parse is set aside
   (kept) before the new one is written.

It says how many of the cluster's nodes it reached: a takeover that did not reach a majority
can lose to another one made at the same time on the other side of a partition.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from jobsync.config.model import Config, PeerConfig
from jobsync.epoch import (
    folder_clash,
    manifest_clash,
    owner_identity,
    read_claim,
    write_claim,
)
from jobsync.errors import PeerError
from jobsync.jobs_folder import (
    BACKUP_DIR,
    MANIFEST,
    TMP_DIR,
    TRASH_DIR,
    Manifest,
    ManifestEntry,
    compile_pattern,
    is_job_temp_name,
    job_temp_name,
    name_key,
    stamp_name,
)
from jobsync.logs import get_logger
from jobsync.node import NODE_FILE, Identity, clash, identity_from_bytes, local_identity
from jobsync.result import FileFailure, TakeoverResult
from jobsync.scan import SourceFile, SourceScan, scan_source
from jobsync.sync.manifests import (
    Distrust,
    ManifestProblem,
    read_manifest,
    set_manifest_aside,
    state_listing,
    write_manifest,
)
from jobsync.transport import Opener, default_opener, each_peer
from jobsync.transport.base import FileWrite, Peer
from jobsync.transport.local import LocalPeer
from jobsync.versions import Action, Choice, Claim, PeerFolder, plan_takeover, to_read

log = get_logger(__name__)


@dataclass(frozen=True)
class _Reached:
    """The peers takeover could read."""

    peers: dict[str, Peer]
    views: dict[str, PeerFolder]
    corrupt: frozenset[str]  # peers whose manifest did not parse
    newer: frozenset[str]  # peers whose manifest a newer jobsync wrote
    unreachable: list[tuple[str, str]]
    identities: dict[str, Identity]  # whose folder each peer says it is (its node.json)


def takeover(
    config: Config,
    *,
    dry_run: bool = False,
    require_all: bool = False,
    first: bool = False,
    opener: Opener = default_opener,
) -> TakeoverResult:
    """Make this node the owner: adopt the newest version of every job, then fence the rest.

    ``first`` (``jobsync init``): only where no node owns the jobs yet; a folder that names
    another owner refuses, so a reinstall never moves the services by accident.
    """
    me = local_identity(config)
    here = LocalPeer(config.node, config.source)
    local, local_problem = read_manifest(here)
    claim = read_claim(config.source)
    mine = claim.epoch if claim and name_key(claim.node) == name_key(config.node) else 0
    scan = scan_source(config.source, config.pattern)
    reached = _open_all(config, opener)
    try:
        seen = [local.highest_epoch, claim.epoch if claim else 0]
        seen += [v.manifest.highest_epoch for v in reached.views.values()]
        new_epoch = max(seen) + 1
        choices, actions = plan_takeover(
            scan.files,
            local,
            reached.views,
            node=config.node,
            epoch=mine,
            leave=scan.skipped_keys,
        )
        cluster = {name_key(config.node)} | {name_key(p.name) for p in config.peers}
        result = TakeoverResult(
            node=config.node,
            epoch=new_epoch,
            previous_owner=local.owner,
            previous_epoch=local.epoch,
            actions=tuple(actions),
            failed=tuple(FileFailure(s.name, f"left alone: {s.reason}") for s in scan.skipped),
            unreachable=tuple(reached.unreachable),
            dry_run=dry_run,
            reached=(config.node, *sorted(reached.views)),
            cluster=len(cluster),
        )
        if not result.majority:
            log.warning("takeover_without_majority", reached=len(result.reached), of=len(cluster))
        newer = sorted(reached.newer)
        if local_problem is not None and local_problem.kind is Distrust.NEWER:
            newer.insert(0, "this node's own jobs folder")
        if newer:
            refusal = (
                f"a newer jobsync wrote the manifest of {', '.join(newer)}: upgrade jobsync on "
                "this node before it takes over; nothing was changed"
            )
            return replace(result, refused=refusal)
        refused = _identity_refusal(me, local, reached, here_folder=config.source) or (
            _owned_refusal(config, local, reached) if first else None
        )
        if refused is not None:
            return replace(result, refused=refused)
        if require_all and reached.unreachable:
            names = ", ".join(name for name, _ in reached.unreachable)
            refusal = f"--require-all: cannot see {names}; nothing was changed"
            return replace(result, refused=refusal)
        if dry_run:
            return result
        stamp = _stamp()
        if local_problem is not None and local_problem.kind is Distrust.CORRUPT:
            kept_as = set_manifest_aside(here, stamp)
            log.warning("manifest_not_trusted", reason=str(local_problem), kept_as=kept_as)
        failed = _apply(here, scan, actions, reached.peers, stamp)
        _record_locally(config, here, choices, local, epoch=new_epoch, me=me)
        recorded, record_failures = _record_on_peers(config, reached, new_epoch, stamp, me=me)
        log.warning(
            "took_over",
            node=config.node,
            epoch=new_epoch,
            previous_owner=local.owner or None,
            recorded_on=recorded,
            unreachable=[name for name, _ in reached.unreachable],
        )
        return replace(
            result,
            failed=result.failed + tuple(failed + record_failures),
            recorded_on=tuple(recorded),
        )
    finally:
        for peer in reached.peers.values():
            peer.close()


# A peer as takeover found it: its name, the open peer, its view or why it is unreachable, why
# its manifest is not trusted, and whose folder it says it is (its node.json).
_Visit = tuple[str, Peer | None, PeerFolder | str, ManifestProblem | None, Identity | None]


def _open_all(config: Config, opener: Opener) -> _Reached:
    matcher = compile_pattern(config.pattern)

    def visit(peer_config: PeerConfig) -> _Visit:
        try:
            peer = opener(peer_config, config.timeout_seconds)
        except PeerError as exc:
            return peer_config.name, None, str(exc), None, None
        try:
            files = tuple(f for f in peer.list_files() if matcher.fullmatch(f.name))
            state = state_listing(peer)
            manifest, problem = read_manifest(peer, listed="manifest.json" in state)
            changed = to_read(files, manifest)
            wanted = [f.name for f in changed] + ([NODE_FILE] if "node.json" in state else [])
            contents = dict(peer.read_files(wanted)) if wanted else {}
            found = contents.pop(NODE_FILE, None)
        except PeerError as exc:
            peer.close()
            return peer_config.name, None, str(exc), None, None
        hashes = {
            name_key(n): hashlib.sha256(d).hexdigest() if isinstance(d, bytes) else None
            for n, d in contents.items()
        }
        identity = identity_from_bytes(found) if isinstance(found, bytes) else None
        return peer_config.name, peer, PeerFolder(files, manifest, hashes), problem, identity

    visits = each_peer(config.target_peers, visit, name="takeover")
    distrusted = {name: problem.kind for name, _, _, problem, _ in visits if problem is not None}
    return _Reached(
        peers={name: peer for name, peer, _, _, _ in visits if peer is not None},
        views={name: view for name, _, view, _, _ in visits if isinstance(view, PeerFolder)},
        corrupt=frozenset(n for n, kind in distrusted.items() if kind is Distrust.CORRUPT),
        newer=frozenset(n for n, kind in distrusted.items() if kind is Distrust.NEWER),
        unreachable=[(name, view) for name, _, view, _, _ in visits if isinstance(view, str)],
        identities={name: found for name, _, _, _, found in visits if found is not None},
    )


def _temp(stamp: str, what: str) -> str:
    return f"{TMP_DIR}/takeover-{stamp}-{what}.tmp"


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def _apply(
    here: LocalPeer,
    scan: SourceScan,
    actions: Sequence[Action],
    peers: Mapping[str, Peer],
    stamp: str,
) -> list[FileFailure]:
    """Pull the chosen versions and delete what the owner deleted, keeping what is replaced.

    The scan says which jobs are there; the one listing here finds the temp files a killed
    run left beside the jobs. Pulled jobs are written beside the jobs too, so they carry the
    jobs folder's permissions.
    """
    here.make_dirs(TMP_DIR)
    stale = [f.name for f in here.list_files() if is_job_temp_name(f.name)]
    if stale:
        here.remove_files(stale)
    run = secrets.token_hex(4)
    temps = (job_temp_name(run, count) for count in itertools.count(1))
    present = scan.by_name
    failures: list[FileFailure] = []
    pulls = [a for a in actions if a.kind == "pull"]
    deletes = [a for a in actions if a.kind == "delete"]
    for where in sorted({a.choice.where for a in pulls}):
        group = [a for a in pulls if a.choice.where == where]
        contents = peers[where].read_files([a.choice.listed for a in group])
        for action in group:
            data = contents[action.choice.listed]
            if (
                not isinstance(data, bytes)
                or hashlib.sha256(data).hexdigest() != action.choice.sha256
            ):
                reason = data if not isinstance(data, bytes) else "content changed since listing"
                failures.append(FileFailure(action.file, f"not pulled from {where}: {reason}"))
                continue
            old = present.get(action.replaces)
            failures += _replace_locally(here, action, data, old, stamp, temp=next(temps))
    if deletes:
        here.make_dirs(TRASH_DIR)
        moves = [(a.file, f"{TRASH_DIR}/{stamp_name(a.file, stamp)}") for a in deletes]
        for src, error in here.move_files(moves).items():
            if error is not None:
                failures.append(FileFailure(src, str(error)))
    return failures


def _replace_locally(
    here: LocalPeer, action: Action, data: bytes, old: SourceFile | None, stamp: str, *, temp: str
) -> list[FileFailure]:
    """Write a pulled version, keeping the local file it replaces (whatever its case) first."""
    name = action.file
    entry = action.choice.entry
    assert entry is not None  # noqa: S101 - a pull always comes from a recorded version
    if old is not None:
        here.make_dirs(BACKUP_DIR)
        kept_as = f"{BACKUP_DIR}/{stamp_name(old.name, stamp)}"
        if old.name == name:  # replaced in one step below: keep a copy first
            kept = _copy_aside(here, old, kept_as, _temp(stamp, f"{name_key(name)}.backup"))
        else:  # another case: a case-sensitive folder would keep both, so move it out of the way
            kept = here.move_files([(old.name, kept_as)])[old.name]
        if kept is not None:
            return [FileFailure(old.name, f"not replaced: cannot keep the local copy: {kept}")]
    write = FileWrite(path=name, temp=temp, data=data, mtime_ns=entry.mtime_ns)
    (outcome,) = here.write_files([write])
    return [] if outcome.error is None else [FileFailure(name, str(outcome.error))]


def _copy_aside(here: LocalPeer, old: SourceFile, kept_as: str, temp: str) -> PeerError | None:
    content = here.read_files([old.name])[old.name]
    if not isinstance(content, bytes):
        return content
    write = FileWrite(path=kept_as, temp=temp, data=content, mtime_ns=old.mtime_ns)
    (outcome,) = here.write_files([write])
    return outcome.error


def _record_locally(
    config: Config,
    here: LocalPeer,
    choices: Sequence[Choice],
    old: Manifest,
    *,
    epoch: int,
    me: Identity,
) -> None:
    """Write the claim, and a local manifest describing the versions now held here."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    scan = scan_source(config.source, config.pattern)
    chosen = {name_key(c.file): c for c in choices}
    # Files left alone (unreadable, or a case collision) keep what was known of them.
    entries = {k: e for k, e in old.entries.items() if k in scan.skipped_keys}
    for src in scan.files:
        choice = chosen.get(name_key(src.name))
        if choice is not None and not choice.version.deleted and choice.sha256 == src.sha256:
            origin, version_epoch = choice.version.origin, choice.version.epoch
        else:
            origin, version_epoch = config.node, epoch  # known only here: this node's version
        # The local copy's own record (its size and time as read here); a push records a
        # peer's copy as it landed there (sync/records.py).
        entries[name_key(src.name)] = ManifestEntry(
            name=src.name,
            sha256=src.sha256,
            size=src.size,
            mtime_ns=src.mtime_ns,
            origin=origin,
            written=now,
            epoch=version_epoch,
        )
    tombstones = {
        name_key(c.file): c.tombstone
        for c in choices
        if c.tombstone is not None and name_key(c.file) not in entries
    }
    manifest = Manifest(
        node=config.node,
        updated=now,
        entries=entries,
        epoch=epoch,
        owner=config.node,
        owner_since=now,
        owner_install=me.install,
        owner_host=me.host,
        tombstones=tombstones,
    )
    write_claim(config.source, Claim(node=config.node, epoch=epoch, since=now, install=me.install))
    here.make_dirs(TMP_DIR)
    outcome = write_manifest(here, manifest, temp=_temp(_stamp(), "manifest"))
    if outcome.error is not None:
        raise outcome.error


def _record_on_peers(
    config: Config, reached: _Reached, epoch: int, stamp: str, *, me: Identity
) -> tuple[list[str], list[FileFailure]]:
    """Write the new epoch and owner into every reachable peer's manifest."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    recorded, failures = [], []
    for name, peer in sorted(reached.peers.items()):
        old = reached.views[name].manifest
        manifest = replace(
            old,
            node=config.node,
            updated=now,
            epoch=epoch,
            owner=config.node,
            owner_since=now,
            owner_install=me.install,
            owner_host=me.host,
        )
        try:
            if name in reached.corrupt:
                set_manifest_aside(peer, stamp)
            peer.make_dirs(TMP_DIR)
            outcome = write_manifest(peer, manifest, temp=_temp(_stamp(), "manifest"))
        except PeerError as exc:
            failures.append(FileFailure(MANIFEST, f"epoch not recorded on {name}: {exc}"))
            continue
        if outcome.error is None:
            recorded.append(name)
        else:
            failures.append(FileFailure(MANIFEST, f"epoch not recorded on {name}: {outcome.error}"))
    return recorded, failures


def _identity_refusal(
    me: Identity, local: Manifest, reached: _Reached, *, here_folder: Path
) -> str | None:
    """Why not: a manifest or a node.json names another machine that goes by this node's name."""
    found = [
        (f"by the manifest on {n}", owner_identity(v.manifest)) for n, v in reached.views.items()
    ]
    found += [(f"by node.json in its jobs folder on {n}", i) for n, i in reached.identities.items()]
    for where, other in sorted(found, key=lambda item: item[0]):
        if problem := clash(me, other, where=where):
            return problem
    here = "by the manifest in this node's own jobs folder"
    return manifest_clash(local, me, where=here) or folder_clash(here_folder, me)


def _owned_refusal(config: Config, local: Manifest, reached: _Reached) -> str | None:
    """Why ``jobsync init`` must not claim the jobs: a folder names another owner."""
    owners = [("this node's own jobs folder", local)]
    owners += [(name, v.manifest) for name, v in sorted(reached.views.items())]
    for where, manifest in owners:
        if manifest.owner and name_key(manifest.owner) != name_key(config.node):
            return (
                f"{manifest.owner} owns the jobs at epoch {manifest.epoch} (recorded in {where}); "
                "nothing was changed: to make this node the services node, run jobsync takeover "
                "here"
            )
    return None
