"""``jobsync push``: scan the source once, then bring every peer in line, concurrently."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime

import structlog

from jobsync.config import Config, PeerConfig
from jobsync.epoch import LocalFence
from jobsync.errors import SafetyRefusalError
from jobsync.fanout import each_peer
from jobsync.result import PushResult
from jobsync.retention import prune_kept
from jobsync.scan import scan_source
from jobsync.sync.context import Progress, PushOptions, utc_now
from jobsync.sync.peer_sync import PeerSync
from jobsync.transport import Opener, default_opener
from jobsync.transport.local import LocalPeer

log = structlog.get_logger(__name__)


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

    def one(peer: PeerConfig) -> PeerSync:
        return PeerSync(
            peer,
            config=config,
            options=options,
            fence=fence,
            now=now,
            progress=progress,
            prune_every=0.0,
        )

    results = tuple(each_peer(peers, lambda p: one(p).run_once(scan, opener), name="push"))
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
