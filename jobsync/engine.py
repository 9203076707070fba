"""Carrying out a push: every peer concurrently and independently, each through its transport.

For one peer: clear temp files an interrupted run left, read the manifest (a corrupt one is set
aside, never trusted), read the peer files the manifest cannot vouch for, plan, then keep
copies of hand edits in ``.jobsync/backup/``, write the changed files (temp name, read back,
rename), move files deleted at the source into ``.jobsync/trash/``, and record what landed.
A failure on one peer never stops the others.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import structlog

from jobsync.config import Config, PeerConfig
from jobsync.epoch import LocalFence, fence_reason
from jobsync.errors import (
    PeerError,
    PeerFileNotFoundError,
    PeerIOError,
    PeerSessionLostError,
    SafetyRefusalError,
)
from jobsync.manifest import (
    Manifest,
    ManifestCorruptError,
    ManifestEntry,
    Tombstone,
    manifest_from_bytes,
    manifest_to_bytes,
)
from jobsync.names import (
    BACKUP_DIR,
    MANIFEST,
    STATE_DIR,
    TMP_DIR,
    TRASH_DIR,
    compile_pattern,
    is_job_temp_name,
    job_temp_name,
    name_key,
    stamp_name,
)
from jobsync.plan import Copy, PeerPlan, files_to_read, plan_names, plan_peer
from jobsync.result import FileFailure, PeerResult, PushResult
from jobsync.retention import prune_kept
from jobsync.scan import SourceFile, SourceScan, UnstableFileError, read_content, scan_source
from jobsync.transport import FileWrite, Peer, RemoteFile, WriteOutcome, open_peer
from jobsync.transport.local import LocalPeer
from jobsync.versions import local_version, manifest_claim

log = structlog.get_logger(__name__)

BATCH = 256  # files per transport call: bounds memory and paces progress reports

Opener = Callable[[PeerConfig, float], Peer]
Progress = Callable[[str, int, int], None]


def default_opener(config: PeerConfig, timeout: float) -> Peer:
    """Open a peer with the transport its path calls for."""
    return open_peer(config, timeout=timeout)


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


@dataclass(frozen=True, kw_only=True)
class PushOptions:
    """How a push behaves."""

    dry_run: bool = False
    allow_mass_delete: bool = False
    hold: frozenset[str] = frozenset()  # name keys to leave alone (a peer holds a newer version)
    distrust: frozenset[str] = frozenset()  # name keys whose manifest record is ignored: the
    # peer file is read, and kept in backup before it is replaced


def push(
    config: Config,
    *,
    peers: Sequence[PeerConfig],
    options: PushOptions,
    opener: Opener = default_opener,
    now: Callable[[], datetime] = utc_now,
    progress: Progress | None = None,
) -> PushResult:
    """Scan the source once, then bring every peer in ``peers`` up to date, concurrently."""
    started = time.monotonic()
    fence = LocalFence(config.source, config.node)
    fenced = fence.reason()
    if fenced:
        raise SafetyRefusalError(f"push refused: {fenced}")
    scan = scan_source(config.source, config.pattern)
    log.debug("source_scanned", files=len(scan.files), skipped=len(scan.skipped))
    syncs = [
        PeerSync(
            peer,
            config=config,
            options=options,
            fence=fence,
            now=now,
            progress=progress,
            prune_every=0.0,
        )
        for peer in peers
    ]
    with ThreadPoolExecutor(max_workers=max(1, len(peers)), thread_name_prefix="push") as pool:
        futures = [pool.submit(sync.run_once, scan, opener) for sync in syncs]
        results = tuple(f.result() for f in futures)
    local = LocalPeer(config.node, config.source)
    pruned_local = prune_kept(local, config.retention, now=now(), dry_run=options.dry_run)
    result = PushResult(
        node=config.node,
        source_files=len(scan.files),
        peers=results,
        skipped=scan.skipped,
        dry_run=options.dry_run,
        seconds=time.monotonic() - started,
        pruned_local=pruned_local,
    )
    log.info(
        "push_finished",
        peers=len(results),
        copied=sum(len(r.copied) for r in results),
        deleted=sum(len(r.deleted) for r in results),
        failed_peers=sum(1 for r in results if r.error),
        dry_run=options.dry_run,
        seconds=round(result.seconds, 3),
    )
    return result


def manifest_listing(peer: Peer) -> RemoteFile | None:
    """The peer's manifest file as listed (size, write time), or ``None`` when it has none."""
    return next((f for f in peer.list_files(STATE_DIR) if f.name == "manifest.json"), None)


def read_manifest(peer: Peer, *, listed: bool | None = None) -> tuple[Manifest, str | None]:
    """A peer's manifest, and why it cannot be trusted (then it is empty); changes nothing.

    ``listed`` says whether the caller already saw the file in a listing (saves one).
    """
    if listed is None:
        listed = manifest_listing(peer) is not None
    if not listed:
        return Manifest(), None
    data = peer.read_files([MANIFEST])[MANIFEST]
    if isinstance(data, PeerIOError):
        return Manifest(), f"unreadable: {data}"
    try:
        return manifest_from_bytes(data), None
    except ManifestCorruptError as exc:
        return Manifest(), f"corrupt: {exc}"


def set_manifest_aside(peer: Peer, stamp: str) -> str:
    """Move a manifest that does not parse out of the way, keeping it; return where it went."""
    aside = f"{STATE_DIR}/{stamp_name('manifest.json', stamp)}.corrupt"
    peer.move_files([(MANIFEST, aside)])
    return aside


def is_not_found(error: PeerIOError) -> bool:
    """Whether a failed read says the file is not there; any other error costs a full pass."""
    return isinstance(error, PeerFileNotFoundError)


def write_manifest(peer: Peer, manifest: Manifest, *, temp: str) -> WriteOutcome:
    """Replace a folder's manifest atomically (temp name, read back, rename)."""
    write = FileWrite(
        path=MANIFEST, temp=temp, data=manifest_to_bytes(manifest), mtime_ns=time.time_ns()
    )
    (outcome,) = peer.write_files([write])
    return outcome


class PeerSync:
    """Brings one peer in line with a source scan: once (push) or pass after pass (the agent).

    Between passes it remembers the peer's manifest and the size and write time it had, so a
    pass re-reads the manifest only when something else changed it. With ``defer_manifest``,
    a pass over names that only wrote files (no deletion, no failure) leaves the manifest in
    memory until :meth:`save_deferred`: a manifest that lags behind only makes the next pass
    read those files again, while rewriting it (a record per job) costs more than the copy.
    """

    def __init__(
        self,
        peer: PeerConfig,
        *,
        config: Config,
        options: PushOptions,
        fence: LocalFence,
        now: Callable[[], datetime] = utc_now,
        progress: Progress | None = None,
        defer_manifest: bool = False,
        prune_every: float | None = None,
    ) -> None:
        """Prepare to sync ``peer``.

        ``prune_every``: a full pass also removes kept copies past their retention, at most
        once per this many seconds (``None``: never).
        """
        self._defer_manifest = defer_manifest
        self._prune_every = prune_every
        self._pruned_at: float | None = None  # time.monotonic() of the last pruning
        self._was_fenced = False
        self._unsaved_since: float | None = None  # when memory got ahead of the peer's manifest
        self.peer_config = peer
        self._config = config
        self._options = options
        self._fence = fence
        self._epoch = 0
        self._now = now
        self._progress = progress
        self._log = log.bind(peer=peer.name)
        self._manifest: Manifest | None = None
        self._manifest_stamp: tuple[int, int] | None = None
        self._scan = SourceScan(folder=config.source, files=())
        self._run_id = ""
        self._temp_count = 0
        self._result = PeerResult(peer=peer.name)
        self._clean = False  # whether the manifest in memory records exactly the peer's jobs
        self._scope = "all"  # what the last pass looked at: "all" jobs or changed "names"

    def run_once(self, scan: SourceScan, opener: Opener) -> PeerResult:
        """Connect, sync, disconnect; never raises for a peer problem."""
        started = time.monotonic()
        peer: Peer | None = None
        try:
            peer = opener(self.peer_config, self._config.timeout_seconds)
        except PeerError as exc:
            result = PeerResult(peer=self.peer_config.name, error=str(exc))
            self._log.error("peer_failed", error=str(exc))
            return self._finish(replace(result, seconds=time.monotonic() - started))
        try:
            return self.sync(peer, scan)
        finally:
            peer.close()

    def sync(
        self, peer: Peer, scan: SourceScan, *, names: Collection[str] | None = None
    ) -> PeerResult:
        """One pass over an open peer; a lost connection is reported in the result's error.

        With ``names``, only those jobs are looked at when that is known to be enough (the
        last pass ended clean and the peer's manifest is still the one it left); otherwise,
        and without ``names``, the whole source is compared with the whole peer.
        """
        started = time.monotonic()
        self._scan = scan
        renewed = False
        logons = 0
        while True:
            self._run_id = secrets.token_hex(4)
            self._temp_count = 0
            self._result = PeerResult(peer=self.peer_config.name)
            try:
                self._pass(peer, names)
            except PeerSessionLostError as exc:
                self._forget_manifest()
                if not renewed:
                    # An expired Kerberos ticket or a closed share: the peer logs on again at
                    # its next request, and a full pass redoes what this one left half done.
                    renewed, names, logons = True, None, 1
                    self._log.info("peer_session_renewed", reason=str(exc))
                    continue
                self._failed(str(exc))
            except PeerError as exc:
                self._forget_manifest()  # the peer's state is unknown now
                self._failed(str(exc))
            except Exception as exc:  # noqa: BLE001 - one pass fails, never the caller's thread
                self._forget_manifest()
                # The cause in one line; its traceback for whoever runs with -v.
                self._log.debug("peer_pass_crashed", exc_info=True)
                self._failed(
                    f"peer {self.peer_config.name}: jobsync failed internally "
                    f"({type(exc).__name__}: {exc}); the pass is retried"
                )
            break
        # Only a clean pass leaves a manifest that stands for the peer's whole listing.
        self._clean = self._result.status == "ok" and self._manifest is not None
        elapsed = time.monotonic() - started
        return self._finish(replace(self._result, seconds=elapsed, logons=logons))

    def _pass(self, peer: Peer, names: Collection[str] | None) -> None:
        self._scope = "names"
        if names is None or not self._push_names(peer, names):
            self._scope = "all"
            self._push(peer)
            self._prune_if_due(peer)

    def _failed(self, error: str) -> None:
        self._result = replace(self._result, error=error)
        self._log.error("peer_failed", error=error)

    def _finish(self, result: PeerResult) -> PeerResult:
        r = result
        # A pass that changed nothing is routine (the agent makes one every rescan).
        eventful = r.copied or r.deleted or r.failed or r.error or r.refused or r.pruned
        (self._log.info if eventful else self._log.debug)(
            "peer_pushed",
            copied=len(r.copied),
            deleted=len(r.deleted),
            backed_up=len(r.backed_up),
            pruned=len(r.pruned),
            unchanged=r.unchanged,
            failed=len(r.failed),
            status=r.status,
            scope=self._scope,
            seconds=round(r.seconds, 3),
        )
        return r

    # -- steps ------------------------------------------------------------------------------

    def _push_names(self, peer: Peer, names: Collection[str]) -> bool:
        """Bring only ``names`` in line; ``False`` (before changing anything): a full pass must.

        Instead of listing the peer, it reads just these files: their bytes show whether the
        peer holds the source's version, the one jobsync last wrote, or somebody else's edit.
        """
        manifest = self._manifest
        if manifest is None or not self._names_will_do(peer):
            return False
        if self._fenced(manifest):
            return True
        keys = {name_key(n) for n in names} - self._scan.skipped_keys  # left as they are
        by_key = self._scan.by_key
        wanted = {k: by_key[k] for k in sorted(keys) if k in by_key}
        hashes = self._peer_hashes(peer, list(wanted.values()))
        if hashes is None:
            return False
        plan = plan_names(
            keys,
            wanted,
            manifest,
            peer_hashes=hashes,
            max_delete_ratio=self._config.max_delete_ratio,
            allow_mass_delete=self._options.allow_mass_delete,
        )
        if plan is None:
            return False
        self._result = replace(self._result, unchanged=len(plan.unchanged))
        entries, tombstones = dict(manifest.entries), dict(manifest.tombstones)
        try:
            self._copy(peer, plan, set(), entries, tombstones)
            self._trash(peer, plan, self._stamp(), entries, tombstones)
        finally:
            # Deletions are recorded at once: their tombstones are what a takeover goes by.
            defer = self._defer_manifest and not plan.deletes and not self._result.failed
            self._save_manifest(peer, manifest, entries, tombstones, defer=defer)
        return True

    def _names_will_do(self, peer: Peer) -> bool:
        """Whether a pass over some names only is safe: see :meth:`_push_names`."""
        options = self._options
        if not self._clean or options.dry_run or options.hold or options.distrust:
            return False
        listed = manifest_listing(peer)
        # A manifest another jobsync wrote (a takeover?) is reread and fenced by a full pass.
        return listed is not None and (listed.size, listed.mtime_ns) == self._manifest_stamp

    def _peer_hashes(self, peer: Peer, files: Sequence[SourceFile]) -> dict[str, str | None] | None:
        """The SHA-256 of the peer's copy of each file, ``None`` for a file it does not have.

        ``None`` as the whole answer: some copy exists but cannot be read (a full pass decides).
        """
        contents = peer.read_files([f.name for f in files]) if files else {}
        hashes: dict[str, str | None] = {}
        for f in files:
            data = contents[f.name]
            if isinstance(data, bytes):
                hashes[name_key(f.name)] = hashlib.sha256(data).hexdigest()
            elif is_not_found(data):
                hashes[name_key(f.name)] = None
            else:
                return None
        return hashes

    def _push(self, peer: Peer) -> None:
        dry = self._options.dry_run
        manifest = self._load_manifest(peer, dry=dry)
        if self._fenced(manifest):
            return
        if self._options.distrust:
            kept = {k: e for k, e in manifest.entries.items() if k not in self._options.distrust}
            manifest = replace(manifest, entries=kept)
        # Another owner's records vouch for nothing this push replaces (see _foreign_owner);
        # those of the files it leaves alone are carried over all the same.
        planned = replace(manifest, entries={}) if self._foreign_owner(manifest) else manifest
        matcher = compile_pattern(self._config.pattern)
        listing = peer.list_files()
        if not dry:
            peer.make_dirs(TMP_DIR)
            self._clear_temps(peer, [f.name for f in listing if is_job_temp_name(f.name)])
        peer_jobs = [f for f in listing if matcher.fullmatch(f.name)]
        unknown = files_to_read(self._scan.files, peer_jobs, planned)
        contents = peer.read_files([f.name for f in unknown]) if unknown else {}
        hashes = {
            name_key(name): hashlib.sha256(data).hexdigest() if isinstance(data, bytes) else None
            for name, data in contents.items()
        }
        plan = plan_peer(
            self._scan.files,
            peer_jobs,
            planned,
            peer_hashes=hashes,
            max_delete_ratio=self._config.max_delete_ratio,
            allow_mass_delete=self._options.allow_mass_delete,
            hold=self._options.hold,
            leave=self._scan.skipped_keys,
        )
        failures = [
            FileFailure(
                f.name,
                f"not replaced: it differs and cannot be read to keep a copy: {contents[f.name]!s}",
            )
            for f in plan.unreadable
        ] + [
            FileFailure(
                name,
                "left alone: another file on the peer has a name that differs only in case; "
                "remove one of them by hand",
            )
            for name in plan.collisions
        ]
        refusals = [plan.refusal] if plan.refusal else []
        if plan.held:
            refusals.append(
                f"left alone, the peer holds a newer version: {', '.join(plan.held)} "
                "(use --force to replace it)"
            )
        self._result = replace(
            self._result,
            unchanged=len(plan.unchanged),
            refused="; ".join(refusals) or None,
            failed=tuple(failures),
        )
        if plan.refusal:
            self._log.warning("mass_delete_refused", reason=plan.refusal)
        if dry:
            self._result = replace(
                self._result,
                copied=tuple(c.source.name for c in plan.copies),
                deleted=tuple(f.name for f in plan.deletes),
                backed_up=tuple(c.source.name for c in plan.copies if c.backup_of),
            )
            return
        stamp = self._stamp()
        entries = self._carried_entries(manifest, peer_jobs, plan)
        tombstones = dict(manifest.tombstones)
        try:
            blocked = self._keep_backups(peer, plan, contents, stamp)
            self._copy(peer, plan, blocked, entries, tombstones)
            self._trash(peer, plan, stamp, entries, tombstones)
        finally:
            self._save_manifest(peer, manifest, entries, tombstones)

    def _fenced(self, manifest: Manifest) -> bool:
        """Refuse the whole pass when this node, or this peer, names an owner that outranks it."""
        mine = self._fence.epoch()
        # A node whose claim was lost still owns what it owns: keep the peer's epoch then.
        same_owner = name_key(manifest.owner) == name_key(self._config.node)
        self._epoch = max(mine, manifest.epoch) if same_owner else mine
        peer_reason = fence_reason(manifest, epoch=mine, node=self._config.node)
        winner = manifest_claim(manifest)
        if peer_reason is not None and winner is not None:
            self._fence.saw(winner)  # fenced on every peer from now on, not only this one
        reason = self._fence.reason() or peer_reason
        self._was_fenced = reason is not None
        if reason:
            self._result = replace(self._result, refused=reason)
            self._log.warning("push_fenced", reason=reason)
        return reason is not None

    def _prune_if_due(self, peer: Peer) -> None:
        """Remove kept copies past their retention, unless fenced or done recently."""
        every, last = self._prune_every, self._pruned_at
        if every is None or self._was_fenced:
            return
        if last is not None and time.monotonic() - last < every:
            return
        dry = self._options.dry_run
        pruned = prune_kept(peer, self._config.retention, now=self._now(), dry_run=dry)
        self._result = replace(self._result, pruned=pruned)
        if not dry:
            self._pruned_at = time.monotonic()

    def _foreign_owner(self, manifest: Manifest) -> bool:
        """Whether the folder names another owner (one this node outranks, or it would be fenced).

        What that owner wrote is not this node's to vouch for (it may have written while it
        believed it owned the jobs, in a partition): every copy is read, and what is replaced
        is kept in backup first.
        """
        return bool(manifest.owner) and name_key(manifest.owner) != name_key(self._config.node)

    def _clear_temps(self, peer: Peer, job_temps: list[str]) -> None:
        """Remove what a killed run was writing: job temps, and anything in ``.jobsync/tmp``."""
        stale = job_temps + [f"{TMP_DIR}/{f.name}" for f in peer.list_files(TMP_DIR)]
        if stale:
            outcome = peer.remove_files(stale)
            self._log.info(
                "temp_files_removed", count=sum(1 for e in outcome.values() if e is None)
            )

    def _load_manifest(self, peer: Peer, *, dry: bool) -> Manifest:
        listed = manifest_listing(peer)
        if listed is None:
            return Manifest()
        if self._manifest is not None and self._manifest_stamp == (listed.size, listed.mtime_ns):
            return self._manifest  # unchanged since this sync last read or wrote it
        manifest, problem = read_manifest(peer, listed=True)
        self._unsaved_since = None  # whatever memory held is superseded by the peer's own
        if problem is not None:
            aside = None
            if not dry and problem.startswith("corrupt"):
                aside = set_manifest_aside(peer, self._stamp())
            self._log.warning("manifest_not_trusted", reason=problem, kept_as=aside)
            return Manifest()
        self._manifest, self._manifest_stamp = manifest, (listed.size, listed.mtime_ns)
        return manifest

    def _carried_entries(
        self, manifest: Manifest, peer_jobs: Sequence[RemoteFile], plan: PeerPlan
    ) -> dict[str, ManifestEntry]:
        """Manifest entries still true before anything is written, keyed by name key."""
        on_peer = {name_key(f.name): f for f in peer_jobs}
        entries = {k: e for k, e in manifest.entries.items() if k in on_peer}
        written = self._now().isoformat(timespec="seconds")
        local = self._fence.manifest()
        for src in plan.unchanged:
            key = name_key(src.name)
            current = on_peer[key]
            old = entries.get(key)
            if old is None or (old.size, old.mtime_ns, old.sha256) != (
                current.size,
                current.mtime_ns,
                src.sha256,
            ):
                # Same bytes as the source, not (correctly) recorded yet: adopt it.
                origin, epoch = (
                    (old.origin, old.epoch)
                    if old and old.sha256 == src.sha256
                    else self._version_of(src, local)
                )
                entries[key] = ManifestEntry(
                    name=current.name,
                    sha256=src.sha256,
                    size=current.size,
                    mtime_ns=current.mtime_ns,
                    origin=origin,
                    written=old.written if old else written,
                    epoch=epoch,
                )
        return entries

    def _version_of(self, src: SourceFile, local: Manifest) -> tuple[str, int]:
        """Origin and epoch of a source file's bytes: as recorded locally, else a local edit."""
        node, epoch = self._config.node, self._epoch
        version = local_version(src.name, src, local, node=node, epoch=epoch, owner=True)
        return (version.origin, version.epoch) if version is not None else (node, epoch)

    def _keep_backups(
        self, peer: Peer, plan: PeerPlan, contents: Mapping[str, bytes | PeerIOError], stamp: str
    ) -> set[str]:
        """Copy every hand-edited peer file into the backup folder; return the ones that failed."""
        edited = [c.backup_of for c in plan.copies if c.backup_of is not None]
        if not edited:
            return set()
        peer.make_dirs(BACKUP_DIR)
        writes = []
        for f in edited:
            data = contents[f.name]
            assert isinstance(data, bytes)  # noqa: S101 - unreadable files are never planned as copies
            writes.append(
                FileWrite(
                    path=f"{BACKUP_DIR}/{stamp_name(f.name, stamp)}",
                    temp=self._temp(),
                    data=data,
                    mtime_ns=f.mtime_ns,
                )
            )
        blocked: set[str] = set()
        kept: list[str] = []
        failures: list[FileFailure] = []
        for f, outcome in zip(edited, peer.write_files(writes), strict=True):
            if outcome.error is None:
                kept.append(f.name)
                self._log.info("file_backed_up", file=f.name, kept_as=outcome.path)
            else:
                blocked.add(name_key(f.name))
                failures.append(
                    FileFailure(f.name, f"not replaced: keeping a copy failed: {outcome.error}")
                )
        self._result = replace(
            self._result,
            backed_up=self._result.backed_up + tuple(kept),
            failed=self._result.failed + tuple(failures),
        )
        return blocked

    def _copy(
        self,
        peer: Peer,
        plan: PeerPlan,
        blocked: set[str],
        entries: dict[str, ManifestEntry],
        tombstones: dict[str, Tombstone],
    ) -> None:
        copies = [c for c in plan.copies if name_key(c.source.name) not in blocked]
        total, done = len(copies), 0
        written = self._now().isoformat(timespec="seconds")
        local = self._fence.manifest()
        for start in range(0, total, BATCH):
            chunk = copies[start : start + BATCH]
            batch, failures = self._load(chunk)
            writes = [
                FileWrite(
                    path=c.target,
                    temp=self._job_temp(),
                    data=data,
                    mtime_ns=c.source.mtime_ns,
                )
                for c, data in batch
            ]
            copied = []
            for (c, _), outcome in zip(batch, peer.write_files(writes), strict=True):
                src = c.source
                if outcome.landed is None:
                    failures.append(FileFailure(src.name, str(outcome.error)))
                    self._log.warning("file_failed", file=src.name, error=str(outcome.error))
                    continue
                copied.append(src.name)
                origin, epoch = self._version_of(src, local)
                entries[name_key(src.name)] = ManifestEntry(
                    name=c.target,
                    sha256=src.sha256,
                    size=outcome.landed.size,
                    mtime_ns=outcome.landed.mtime_ns,
                    origin=origin,
                    written=written,
                    epoch=epoch,
                )
                tombstones.pop(name_key(src.name), None)
                self._log.debug(
                    "file_pushed", file=src.name, sha256=src.sha256, reason=c.reason.value
                )
            self._result = replace(
                self._result,
                copied=self._result.copied + tuple(copied),
                failed=self._result.failed + tuple(failures),
            )
            done += len(chunk)
            if self._progress is not None:
                self._progress(self.peer_config.name, done, total)

    def _load(self, copies: Sequence[Copy]) -> tuple[list[tuple[Copy, bytes]], list[FileFailure]]:
        """The bytes of each copy, read now when the scan did not keep them."""
        loaded, failures = [], []
        for c in copies:
            try:
                loaded.append((c, read_content(self._scan.folder, c.source)))
            except (UnstableFileError, OSError) as exc:
                reason = (
                    "changed since it was read: the newer version is sent by a later pass"
                    if isinstance(exc, UnstableFileError)
                    else f"cannot be read now: {exc.strerror or exc}"
                )
                failures.append(FileFailure(c.source.name, reason))
                self._log.warning("file_failed", file=c.source.name, error=reason)
        return loaded, failures

    def _trash(
        self,
        peer: Peer,
        plan: PeerPlan,
        stamp: str,
        entries: dict[str, ManifestEntry],
        tombstones: dict[str, Tombstone],
    ) -> None:
        if not plan.deletes:
            return
        peer.make_dirs(TRASH_DIR)
        moves = [(f.name, f"{TRASH_DIR}/{stamp_name(f.name, stamp)}") for f in plan.deletes]
        outcome = peer.move_files(moves)
        deleted, failures = [], []
        for src, dst in moves:
            error = outcome[src]
            if error is None:
                deleted.append(src)
                entries.pop(name_key(src), None)
                tombstones[name_key(src)] = Tombstone(
                    name=src, origin=self._config.node, epoch=self._epoch, deleted_ns=time.time_ns()
                )
                self._log.info("file_trashed", file=src, kept_as=dst)
            else:
                failures.append(FileFailure(src, str(error)))
        self._result = replace(
            self._result,
            deleted=self._result.deleted + tuple(deleted),
            failed=self._result.failed + tuple(failures),
        )

    def _save_manifest(
        self,
        peer: Peer,
        old: Manifest,
        entries: dict[str, ManifestEntry],
        tombstones: dict[str, Tombstone],
        *,
        defer: bool = False,
    ) -> None:
        node, now = self._config.node, self._now().isoformat(timespec="seconds")
        same_owner = name_key(old.owner) == name_key(node) and old.epoch == self._epoch
        if same_owner and dict(old.entries) == entries and dict(old.tombstones) == tombstones:
            if self._unsaved_since is None:
                return  # nothing changed: leave the peer untouched
            manifest = old  # what an earlier pass deferred
        else:
            manifest = Manifest(
                node=node,
                updated=now,
                entries=entries,
                epoch=self._epoch,
                owner=node,
                owner_since=old.owner_since if same_owner else (self._fence.since() or now),
                tombstones=tombstones,
            )
        if defer:
            self._manifest = manifest
            if self._unsaved_since is None:
                self._unsaved_since = time.monotonic()
            return
        self._write_manifest(peer, manifest)

    def _write_manifest(self, peer: Peer, manifest: Manifest) -> None:
        try:
            outcome = write_manifest(peer, manifest, temp=self._temp())
        except PeerError as exc:
            self._forget_manifest()
            self._log.warning("manifest_not_saved", error=str(exc))
            return
        if outcome.landed is None:
            self._forget_manifest()
            failure = FileFailure(MANIFEST, f"manifest not saved: {outcome.error}")
            self._result = replace(self._result, failed=(*self._result.failed, failure))
            return
        self._manifest = manifest
        self._manifest_stamp = (outcome.landed.size, outcome.landed.mtime_ns)
        self._unsaved_since = None

    def _forget_manifest(self) -> None:
        """Know nothing of the peer's manifest: the next pass reads it and looks at everything."""
        self._manifest = self._manifest_stamp = self._unsaved_since = None
        self._clean = False

    # -- a deferred manifest --------------------------------------------------------------------

    @property
    def unsaved_since(self) -> float | None:
        """Since when (``time.monotonic()``) the peer's manifest lags behind, if it does."""
        return self._unsaved_since

    def save_deferred(self, peer: Peer) -> None:
        """Write the manifest passes deferred, unless another jobsync rewrote it meanwhile.

        Never raises: a failure leaves the manifest unknown, which the next pass repairs.
        """
        manifest = self._manifest
        if self._unsaved_since is None or manifest is None:
            return
        self._run_id, self._temp_count = secrets.token_hex(4), 0
        try:
            listed = manifest_listing(peer)
        except PeerError as exc:
            self._forget_manifest()
            self._log.warning("manifest_not_saved", error=str(exc))
            return
        if listed is None or (listed.size, listed.mtime_ns) != self._manifest_stamp:
            # Theirs stands (a takeover?): the next pass rereads it, fences, and looks again.
            self._forget_manifest()
            self._log.warning("manifest_not_saved", error="another jobsync rewrote it meanwhile")
            return
        self._write_manifest(peer, manifest)
        self._log.debug("manifest_saved", entries=len(manifest.entries))

    # -- names --------------------------------------------------------------------------------

    def _temp(self) -> str:
        """A temp name for a file jobsync keeps under ``.jobsync`` (a backup, the manifest)."""
        self._temp_count += 1
        return f"{TMP_DIR}/{self._run_id}-{self._temp_count}.tmp"

    def _job_temp(self) -> str:
        """A temp name beside the jobs: a job must carry the jobs folder's permissions."""
        self._temp_count += 1
        return job_temp_name(self._run_id, self._temp_count)

    def _stamp(self) -> str:
        return self._now().strftime("%Y%m%dT%H%M%S.%fZ")
