"""The steps of a pass that change a peer: keep hand edits, copy jobs, move deleted ones to trash.

Each step does its part through the peer's transport, records what landed, and returns an
:class:`~jobsync.sync.tally.Outcome`; the pass folds the outcomes into its result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from jobsync.errors import PeerIOError
from jobsync.names import BACKUP_DIR, TMP_DIR, TRASH_DIR, job_temp_name, name_key, stamp_name
from jobsync.plan import Copy, PeerPlan
from jobsync.result import FileFailure
from jobsync.scan import UnstableFileError, read_content
from jobsync.sync.context import PassContext
from jobsync.sync.records import Author, Records
from jobsync.sync.tally import Outcome
from jobsync.transport import FileWrite, Peer

BATCH = 256  # files per transport call: bounds memory and paces progress reports


def keep_backups(
    ctx: PassContext, plan: PeerPlan, contents: Mapping[str, bytes | PeerIOError], stamp: str
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
    ctx: PassContext,
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
    ctx: PassContext, copies: Sequence[Copy], source: Path, failures: list[FileFailure]
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
    ctx: PassContext, plan: PeerPlan, stamp: str, *, records: Records, author: Author
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
