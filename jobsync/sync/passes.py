"""One pass over one peer: the whole folder, or only some changed names.

A full pass clears temp files a killed run left, lists the peer, reads the files its manifest
cannot vouch for, plans (:mod:`jobsync.plan`), then keeps hand edits in backup, copies, trashes
and records. A pass over names reads just those files: their bytes show whether the peer holds
the source's version, the one jobsync last wrote, or somebody else's edit; anything unusual is
handed to a full pass before anything changes.

What every step of one pass over one peer shares: the peer, who pushes, names and clocks.

The steps of a pass that change a peer: keep hand edits, copy jobs, move deleted ones to trash.
Each step does its part through the peer's transport, records what landed, and returns an
:class:`~jobsync.sync.passes.Outcome`; the pass folds the outcomes into its result.

What one pass did, step after step, folded into its :class:`PeerResult` in one place.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from structlog.stdlib import BoundLogger

from jobsync.config.model import Config
from jobsync.epoch import LocalFence
from jobsync.errors import PeerIOError
from jobsync.jobs_folder import (
    BACKUP_DIR,
    TMP_DIR,
    TRASH_DIR,
    Manifest,
    compile_pattern,
    is_job_temp_name,
    job_temp_name,
    name_key,
    stamp_name,
)
from jobsync.plan import Copy, PeerPlan, files_to_read, plan_names, plan_peer
from jobsync.result import FileFailure, PeerResult
from jobsync.scan import SourceFile, SourceScan, UnstableFileError, read_content
from jobsync.sync.manifests import Author, Records, carried_records, is_not_found
from jobsync.transport.base import FileWrite, Peer

Progress = Callable[[str, int, int], None]


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


def fresh_temp() -> str:
    """A temp name under ``.jobsync`` for a write outside any pass (a deferred manifest)."""
    return f"{TMP_DIR}/{secrets.token_hex(4)}-1.tmp"


@dataclass(frozen=True, kw_only=True)
class PushOptions:
    """How a push behaves."""

    dry_run: bool = False
    allow_mass_delete: bool = False
    hold: frozenset[str] = frozenset()  # name keys to leave alone (a peer holds a newer version)
    distrust: frozenset[str] = frozenset()  # name keys whose manifest record is ignored: the
    # peer file is read, and kept in backup before it is replaced


@dataclass(kw_only=True)
class Pass:
    """One pass over one open peer: the whole folder (:meth:`over_all`) or some names only.

    What every step of the pass shares lives here; temp names are unique to the pass (its run
    id). ``save`` leaves the records the pass built on the peer, now or later.
    """

    peer: Peer
    node: str
    epoch: int
    fence: LocalFence
    now: Callable[[], datetime]
    log: BoundLogger  # bound to the peer
    config: Config
    options: PushOptions
    tally: Tally
    save: Save
    progress: Progress | None = None
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    # Whether a file created in .jobsync/tmp gets the permissions of one created in the jobs
    # folder, so jobs may be written there (None: not probed yet; the first copy does). Beside
    # the jobs costs a Samba server twice the look-ups per new job in a large folder.
    temps_alike: bool | None = None
    _temps: int = 0

    @property
    def name(self) -> str:
        """The peer's name."""
        return self.peer.name

    def temp(self) -> str:
        """A temp name for a file jobsync keeps under ``.jobsync`` (a backup, the manifest)."""
        self._temps += 1
        return f"{TMP_DIR}/{self.run_id}-{self._temps}.tmp"

    def job_temp(self) -> str:
        """A temp name for a job, which must land with the jobs folder's permissions.

        A renamed file keeps the permissions it was created with: it is written in
        ``.jobsync/tmp`` only when a file created there is known to get the same ones.
        """
        if self.temps_alike is True:
            return self.temp()
        self._temps += 1
        return job_temp_name(self.run_id, self._temps)

    def stamp(self) -> str:
        """The time a trashed or backed-up file is named with."""
        return self.now().strftime("%Y%m%dT%H%M%S.%fZ")

    def written(self) -> str:
        """The time a manifest record says its file was written."""
        return self.now().isoformat(timespec="seconds")

    def over_all(self, manifest: Manifest, scan: SourceScan, *, foreign_owner: bool) -> None:
        """Compare the whole source with the whole peer and bring the peer in line."""
        peer, dry = self.peer, self.options.dry_run
        if self.options.distrust:
            trusted = {k: e for k, e in manifest.entries.items() if k not in self.options.distrust}
            manifest = replace(manifest, entries=trusted)
        # Another owner's records vouch for nothing this push replaces (what it wrote may date from
        # a partition): every copy is read, and what is replaced is kept in backup first. The
        # records of the files left alone are carried over all the same.
        planned = replace(manifest, entries={}) if foreign_owner else manifest
        listing = peer.list_files()
        if not dry:
            peer.make_dirs(TMP_DIR)
            _clear_temps(self, [f.name for f in listing if is_job_temp_name(f.name)])
        matcher = compile_pattern(self.config.pattern)
        peer_jobs = [f for f in listing if matcher.fullmatch(f.name)]
        unknown = files_to_read(scan.files, peer_jobs, planned)
        contents = peer.read_files([f.name for f in unknown]) if unknown else {}
        plan = plan_peer(
            scan.files,
            peer_jobs,
            planned,
            peer_hashes=_hashes(contents),
            max_delete_ratio=self.config.max_delete_ratio,
            allow_mass_delete=self.options.allow_mass_delete,
            hold=self.options.hold,
            leave=scan.skipped_keys,
        )
        _count_what_is_left(self, plan, contents)
        if dry:
            self.tally.copied += [c.source.name for c in plan.copies]
            self.tally.deleted += [f.name for f in plan.deletes]
            self.tally.backed_up += [c.source.name for c in plan.copies if c.backup_of]
            return
        author = author_of(self)
        records = carried_records(manifest, peer_jobs, plan, author=author, when=self.written())
        stamp = self.stamp()
        try:
            kept, blocked = keep_backups(self, plan, contents, stamp)
            self.tally.add("backed_up", kept)
            copies = [c for c in plan.copies if name_key(c.source.name) not in blocked]
            copied = copy_jobs(self, copies, source=scan.folder, records=records, author=author)
            self.tally.add("copied", copied)
            self.tally.add("deleted", trash_jobs(self, plan, stamp, records=records, author=author))
        finally:
            self.save(self, manifest, records, defer=False)

    def over_names(
        self,
        manifest: Manifest,
        scan: SourceScan,
        names: Collection[str],
        *,
        defer_manifest: bool,
    ) -> bool:
        """Bring only ``names`` in line; ``False`` (before changing anything): a full pass must."""
        keys = {name_key(n) for n in names} - scan.skipped_keys  # left as they are
        by_key = scan.by_key
        wanted = {k: by_key[k] for k in sorted(keys) if k in by_key}
        hashes = _peer_hashes(self.peer, list(wanted.values()))
        if hashes is None:
            return False
        plan = plan_names(
            keys,
            wanted,
            manifest,
            peer_hashes=hashes,
            max_delete_ratio=self.config.max_delete_ratio,
            allow_mass_delete=self.options.allow_mass_delete,
        )
        if plan is None:
            return False
        self.tally.unchanged = len(plan.unchanged)
        author = author_of(self)
        records = Records(dict(manifest.entries), dict(manifest.tombstones))
        try:
            copied = copy_jobs(
                self, plan.copies, source=scan.folder, records=records, author=author
            )
            self.tally.add("copied", copied)
            self.tally.add(
                "deleted", trash_jobs(self, plan, self.stamp(), records=records, author=author)
            )
        finally:
            # Deletions are recorded at once: their tombstones are what a takeover goes by.
            self.save(
                self,
                manifest,
                records,
                defer=defer_manifest and not plan.deletes and not self.tally.failed,
            )
        return True


@dataclass(frozen=True)
class Outcome:
    """What one step did: the files it handled, and those it could not handle and why."""

    done: tuple[str, ...] = ()
    failed: tuple[FileFailure, ...] = ()


@dataclass
class Tally:
    """The outcomes of a pass so far; :meth:`result` turns them into the peer's result."""

    copied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    backed_up: list[str] = field(default_factory=list)
    failed: list[FileFailure] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    pruned: tuple[str, ...] = ()
    unchanged: int = 0

    def add(self, step: str, outcome: Outcome) -> None:
        """Count the outcome of ``step``: ``copied``, ``deleted``, ``backed_up`` or ``failed``."""
        if step != "failed":
            getattr(self, step).extend(outcome.done)
        self.failed.extend(outcome.failed)

    def fail(self, failures: list[FileFailure]) -> None:
        """Files the pass could not handle before any step ran."""
        self.failed.extend(failures)

    def refuse(self, reason: str) -> None:
        """Something held back for safety."""
        self.refused.append(reason)

    def result(self, peer: str, *, error: str | None = None) -> PeerResult:
        """The peer's result, with the whole pass's ``error`` if it failed."""
        return PeerResult(
            peer=peer,
            copied=tuple(self.copied),
            deleted=tuple(self.deleted),
            backed_up=tuple(self.backed_up),
            unchanged=self.unchanged,
            failed=tuple(self.failed),
            error=error,
            refused="; ".join(self.refused) or None,
            pruned=self.pruned,
        )


BATCH = 256  # files per transport call: bounds memory and paces progress reports


def keep_backups(
    ctx: Pass, plan: PeerPlan, contents: Mapping[str, bytes | PeerIOError], stamp: str
) -> tuple[Outcome, set[str]]:
    """Copy every hand-edited peer file into the backup folder; also the keys it failed for.

    A job whose edit could not be kept is not replaced (the caller leaves it out).
    """
    edited = [c.backup_of for c in plan.copies if c.backup_of is not None]
    if not edited:
        return Outcome(), set()
    ctx.peer.make_dirs(BACKUP_DIR)
    writes = []
    for f in edited:
        data = contents[f.name]
        assert isinstance(data, bytes)  # noqa: S101 - unreadable files are never planned as copies
        writes.append(
            FileWrite(
                path=f"{BACKUP_DIR}/{stamp_name(f.name, stamp)}",
                temp=ctx.temp(),
                data=data,
                mtime_ns=f.mtime_ns,
            )
        )
    blocked: set[str] = set()
    kept: list[str] = []
    failures: list[FileFailure] = []
    for f, outcome in zip(edited, ctx.peer.write_files(writes), strict=True):
        if outcome.error is None:
            kept.append(f.name)
            ctx.log.info("file_backed_up", file=f.name, kept_as=outcome.path)
        else:
            blocked.add(name_key(f.name))
            failures.append(
                FileFailure(f.name, f"not replaced: keeping a copy failed: {outcome.error}")
            )
    return Outcome(tuple(kept), tuple(failures)), blocked


def temps_alike(peer: Peer, token: str) -> bool:
    """Whether a file created in ``.jobsync/tmp`` gets the permissions of one in the jobs folder.

    Both are created (and deleted at once) and their owner, group and access list compared as
    the server reports them. Unknown or different: jobs are written beside the jobs.
    """
    here, there = job_temp_name(token, 0), f"{TMP_DIR}/{token}-0.tmp"
    found = peer.new_file_permissions([here, there])
    return found[here] is not None and found[here] == found[there]


def copy_jobs(
    ctx: Pass,
    copies: Sequence[Copy],
    *,
    source: Path,
    records: Records,
    author: Author,
) -> Outcome:
    """Write each copy (under a temp name, read back, renamed) and record what landed."""
    total, done = len(copies), 0
    if copies and ctx.temps_alike is None:
        ctx.temps_alike = temps_alike(ctx.peer, ctx.run_id)
        ctx.log.debug("job_temps", folder=TMP_DIR if ctx.temps_alike else "beside the jobs")
    written = ctx.written()
    copied: list[str] = []
    failures: list[FileFailure] = []
    for start in range(0, total, BATCH):
        chunk = copies[start : start + BATCH]
        batch = _load(ctx, chunk, source, failures)
        writes = [
            FileWrite(path=c.target, temp=ctx.job_temp(), data=data, mtime_ns=c.source.mtime_ns)
            for c, data in batch
        ]
        for (c, _), outcome in zip(batch, ctx.peer.write_files(writes), strict=True):
            src = c.source
            if outcome.landed is None:
                failures.append(FileFailure(src.name, str(outcome.error)))
                ctx.log.warning("file_failed", file=src.name, error=str(outcome.error))
                continue
            copied.append(src.name)
            records.landed(src, name=c.target, file=outcome.landed, author=author, when=written)
            ctx.log.debug("file_pushed", file=src.name, sha256=src.sha256, reason=c.reason.value)
        done += len(chunk)
        if ctx.progress is not None:
            ctx.progress(ctx.name, done, total)
    return Outcome(tuple(copied), tuple(failures))


def _load(
    ctx: Pass, copies: Sequence[Copy], source: Path, failures: list[FileFailure]
) -> list[tuple[Copy, bytes]]:
    """The bytes of each copy, read now (the agent keeps hashes, not contents)."""
    loaded = []
    for c in copies:
        try:
            loaded.append((c, read_content(source, c.source)))
        except (UnstableFileError, OSError) as exc:
            reason = (
                "changed since it was read: the newer version is sent by a later pass"
                if isinstance(exc, UnstableFileError)
                else f"cannot be read now: {exc.strerror or exc}"
            )
            failures.append(FileFailure(c.source.name, reason))
            ctx.log.warning("file_failed", file=c.source.name, error=reason)
    return loaded


def trash_jobs(
    ctx: Pass, plan: PeerPlan, stamp: str, *, records: Records, author: Author
) -> Outcome:
    """Move each job deleted at the source into the peer's trash, and record its tombstone."""
    if not plan.deletes:
        return Outcome()
    ctx.peer.make_dirs(TRASH_DIR)
    moves = [(f.name, f"{TRASH_DIR}/{stamp_name(f.name, stamp)}") for f in plan.deletes]
    outcome = ctx.peer.move_files(moves)
    deleted: list[str] = []
    failures: list[FileFailure] = []
    for src, dst in moves:
        error = outcome[src]
        if error is None:
            deleted.append(src)
            records.trashed(src, author=author)
            ctx.log.info("file_trashed", file=src, kept_as=dst)
        else:
            failures.append(FileFailure(src, str(error)))
    return Outcome(tuple(deleted), tuple(failures))


class Save(Protocol):
    """Saves the records a pass built over the manifest it started from.

    Called even when a step failed: what landed, landed. ``defer``: it may wait in memory.
    """

    def __call__(self, ctx: Pass, old: Manifest, records: Records, *, defer: bool) -> None:
        """Leave the records on the peer, now or later."""


def _count_what_is_left(
    ctx: Pass, plan: PeerPlan, contents: Mapping[str, bytes | PeerIOError]
) -> None:
    """Files the plan leaves alone, and why: unreadable edits, collisions, refusals."""
    tally = ctx.tally
    tally.unchanged = len(plan.unchanged)
    tally.fail(
        [
            FileFailure(
                f.name,
                f"not replaced: it differs and cannot be read to keep a copy: {contents[f.name]!s}",
            )
            for f in plan.unreadable
        ]
        + [
            FileFailure(
                name,
                "left alone: another file on the peer has a name that differs only in case; "
                "remove one of them by hand",
            )
            for name in plan.collisions
        ]
    )
    if plan.refusal:
        tally.refuse(plan.refusal)
        ctx.log.warning("mass_delete_refused", reason=plan.refusal)
    if plan.held:
        tally.refuse(
            f"left alone, the peer holds a newer version: {', '.join(plan.held)} "
            "(use --force to replace it)"
        )


def author_of(ctx: Pass) -> Author:
    """Who writes this pass's records."""
    me = ctx.fence.identity
    return Author(
        node=ctx.node,
        epoch=ctx.epoch,
        local=ctx.fence.manifest(),
        install=me.install if me is not None else "",
        host=me.host if me is not None else "",
    )


def _clear_temps(ctx: Pass, job_temps: list[str]) -> None:
    """Remove what a killed run was writing: job temps, and anything in ``.jobsync/tmp``."""
    stale = job_temps + [f"{TMP_DIR}/{f.name}" for f in ctx.peer.list_files(TMP_DIR)]
    if stale:
        outcome = ctx.peer.remove_files(stale)
        ctx.log.info("temp_files_removed", count=sum(1 for e in outcome.values() if e is None))


def _hashes(contents: Mapping[str, bytes | PeerIOError]) -> dict[str, str | None]:
    return {
        name_key(name): hashlib.sha256(data).hexdigest() if isinstance(data, bytes) else None
        for name, data in contents.items()
    }


def _peer_hashes(peer: Peer, files: Sequence[SourceFile]) -> dict[str, str | None] | None:
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
