"""``jobsync push``: scan the source once, then bring every peer in line, concurrently."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from jobsync.config import Config, PeerConfig
from jobsync.epoch import LocalFence
from jobsync.errors import SafetyRefusalError
from jobsync.fanout import each_peer
from jobsync.identity import local_identity, publish, published_addresses
from jobsync.logs import get_logger
from jobsync.result import PeerResult, PushResult
from jobsync.retention import prune_kept
from jobsync.scan import scan_source
from jobsync.sync.context import Progress, PushOptions, utc_now
from jobsync.sync.peer_sync import PeerSync
from jobsync.transport import Opener, default_opener
from jobsync.transport.local import LocalPeer

log = get_logger(__name__)


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
    if not config.source.is_dir():
        scan_source(config.source, config.pattern)  # raises the SourceError that says why
    me = local_identity(config, addresses=published_addresses(config))
    fence = LocalFence(config.source, config.node, identity=me)
    fenced = fence.reason() or (None if options.dry_run else publish(config.source, me))
    if fenced:
        raise SafetyRefusalError(f"push refused: {fenced}")
    # The source is read while the peers are connected and logged on: both take a while.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="scan") as reader:
        reading = reader.submit(scan_source, config.source, config.pattern)

        def one(peer: PeerConfig) -> PeerResult:
            sync = PeerSync(
                peer,
                config=config,
                options=options,
                fence=fence,
                now=now,
                progress=progress,
                prune_every=0.0,
            )
            return sync.run_once(reading.result, opener)

        results = tuple(each_peer(peers, one, name="push"))
        scan = reading.result()
    log.debug("source_scanned", files=len(scan.files), skipped=len(scan.skipped))
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
