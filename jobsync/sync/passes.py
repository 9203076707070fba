"""The two kinds of pass over a peer: the whole folder, or only some changed names.

A full pass clears temp files a killed run left, lists the peer, reads the files its manifest
cannot vouch for, plans (:mod:`jobsync.plan`), then keeps hand edits in backup, copies, trashes
and records. A pass over names reads just those files: their bytes show whether the peer holds
the source's version, the one jobsync last wrote, or somebody else's edit; anything unusual is
handed to a full pass before anything changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from jobsync.config import Config
from jobsync.errors import PeerIOError
from jobsync.manifest import Manifest
from jobsync.names import TMP_DIR, compile_pattern, is_job_temp_name, name_key
from jobsync.plan import PeerPlan, files_to_read, plan_names, plan_peer
from jobsync.result import FileFailure
from jobsync.scan import SourceFile, SourceScan
from jobsync.sync.context import PassContext, PushOptions
from jobsync.sync.records import Author, Records, carried_records
from jobsync.sync.steps import copy_jobs, keep_backups, trash_jobs
from jobsync.sync.tally import Tally
from jobsync.transport import Peer
from jobsync.transport.manifests import is_not_found


class Save(Protocol):
    """Saves the records a pass built over the manifest it started from.

    Called even when a step failed: what landed, landed. ``defer``: it may wait in memory.
    """

    def __call__(self, old: Manifest, records: Records, *, defer: bool) -> None:
        """Leave the records on the peer, now or later."""


def full_pass(
    ctx: PassContext,
    manifest: Manifest,
    scan: SourceScan,
    *,
    config: Config,
    options: PushOptions,
    tally: Tally,
    foreign_owner: bool,
    save: Save,
) -> None:
    """Compare the whole source with the whole peer and bring the peer in line."""
    peer, dry = ctx.peer, options.dry_run
    if options.distrust:
        trusted = {k: e for k, e in manifest.entries.items() if k not in options.distrust}
        manifest = replace(manifest, entries=trusted)
    # Another owner's records vouch for nothing this push replaces (what it wrote may date from
    # a partition): every copy is read, and what is replaced is kept in backup first. The
    # records of the files left alone are carried over all the same.
    planned = replace(manifest, entries={}) if foreign_owner else manifest
    listing = peer.list_files()
    if not dry:
        peer.make_dirs(TMP_DIR)
        _clear_temps(ctx, [f.name for f in listing if is_job_temp_name(f.name)])
    matcher = compile_pattern(config.pattern)
    peer_jobs = [f for f in listing if matcher.fullmatch(f.name)]
    unknown = files_to_read(scan.files, peer_jobs, planned)
    contents = peer.read_files([f.name for f in unknown]) if unknown else {}
    plan = plan_peer(
        scan.files,
        peer_jobs,
        planned,
        peer_hashes=_hashes(contents),
        max_delete_ratio=config.max_delete_ratio,
        allow_mass_delete=options.allow_mass_delete,
        hold=options.hold,
        leave=scan.skipped_keys,
    )
    _count_what_is_left(ctx, plan, contents, tally)
    if dry:
        tally.copied += [c.source.name for c in plan.copies]
        tally.deleted += [f.name for f in plan.deletes]
        tally.backed_up += [c.source.name for c in plan.copies if c.backup_of]
        return
    author = author_of(ctx)
    records = carried_records(manifest, peer_jobs, plan, author=author, when=ctx.written())
    stamp = ctx.stamp()
    try:
        kept, blocked = keep_backups(ctx, plan, contents, stamp)
        tally.add("backed_up", kept)
        copies = [c for c in plan.copies if name_key(c.source.name) not in blocked]
        copied = copy_jobs(ctx, copies, source=scan.folder, records=records, author=author)
        tally.add("copied", copied)
        tally.add("deleted", trash_jobs(ctx, plan, stamp, records=records, author=author))
    finally:
        save(manifest, records, defer=False)


def _count_what_is_left(
    ctx: PassContext, plan: PeerPlan, contents: Mapping[str, bytes | PeerIOError], tally: Tally
) -> None:
    """Files the plan leaves alone, and why: unreadable edits, collisions, refusals."""
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


def names_pass(
    ctx: PassContext,
    manifest: Manifest,
    scan: SourceScan,
    names: Collection[str],
    *,
    config: Config,
    options: PushOptions,
    tally: Tally,
    defer_manifest: bool,
    save: Save,
) -> bool:
    """Bring only ``names`` in line; ``False`` (before changing anything): a full pass must."""
    keys = {name_key(n) for n in names} - scan.skipped_keys  # left as they are
    by_key = scan.by_key
    wanted = {k: by_key[k] for k in sorted(keys) if k in by_key}
    hashes = _peer_hashes(ctx.peer, list(wanted.values()))
    if hashes is None:
        return False
    plan = plan_names(
        keys,
        wanted,
        manifest,
        peer_hashes=hashes,
        max_delete_ratio=config.max_delete_ratio,
        allow_mass_delete=options.allow_mass_delete,
    )
    if plan is None:
        return False
    tally.unchanged = len(plan.unchanged)
    author = author_of(ctx)
    records = Records(dict(manifest.entries), dict(manifest.tombstones))
    try:
        copied = copy_jobs(ctx, plan.copies, source=scan.folder, records=records, author=author)
        tally.add("copied", copied)
        tally.add("deleted", trash_jobs(ctx, plan, ctx.stamp(), records=records, author=author))
    finally:
        # Deletions are recorded at once: their tombstones are what a takeover goes by.
        save(manifest, records, defer=defer_manifest and not plan.deletes and not tally.failed)
    return True


def author_of(ctx: PassContext) -> Author:
    """Who writes this pass's records."""
    me = ctx.fence.identity
    return Author(
        node=ctx.node,
        epoch=ctx.epoch,
        local=ctx.fence.manifest(),
        install=me.install if me is not None else "",
        host=me.host if me is not None else "",
    )


def _clear_temps(ctx: PassContext, job_temps: list[str]) -> None:
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
