"""``jobsync reconcile``: what differs between the source and each peer, and repairing it.

Reporting reads only: listings, manifests, and the content of files the manifest cannot vouch
for (every file with ``--deep``). ``--apply`` then makes each peer match the source through the
same steps as a push (trash, backups, mass-delete guard, fencing), except files where the peer
holds the newer version, which are left alone unless ``--force`` (and then kept in backup).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from jobsync.config.model import Config, PeerConfig
from jobsync.epoch import LocalFence
from jobsync.errors import PeerError
from jobsync.jobs_folder import compile_pattern, name_key
from jobsync.node import local_identity
from jobsync.plan import find_drift
from jobsync.result import PeerDrift, ReconcileResult
from jobsync.scan import SourceScan, scan_source
from jobsync.sync.manifests import read_manifest
from jobsync.sync.passes import PushOptions
from jobsync.sync.peer_sync import PeerSync
from jobsync.transport import Opener, default_opener, each_peer
from jobsync.versions import Newer, is_vouched


@dataclass(frozen=True, kw_only=True)
class ReconcileOptions:
    """How reconcile behaves."""

    deep: bool = False
    apply: bool = False
    force: bool = False


def reconcile(
    config: Config,
    *,
    peers: Sequence[PeerConfig],
    options: ReconcileOptions,
    opener: Opener = default_opener,
) -> ReconcileResult:
    """Compare the source with every peer, concurrently; repair with ``options.apply``."""
    fence = LocalFence(config.source, config.node, identity=local_identity(config))
    scan = scan_source(config.source, config.pattern)
    results = tuple(
        each_peer(
            peers,
            lambda peer: _reconcile_peer(
                peer, config=config, scan=scan, fence=fence, options=options, opener=opener
            ),
            name="reconcile",
        )
    )
    return ReconcileResult(
        node=config.node, source_files=len(scan.files), peers=results, applied=options.apply
    )


def _reconcile_peer(
    peer_config: PeerConfig,
    *,
    config: Config,
    scan: SourceScan,
    fence: LocalFence,
    options: ReconcileOptions,
    opener: Opener,
) -> PeerDrift:
    name = peer_config.name
    try:
        peer = opener(peer_config, config.timeout_seconds)
    except PeerError as exc:
        return PeerDrift(peer=name, reachable=False, error=str(exc))
    try:
        matcher = compile_pattern(config.pattern)
        jobs = [f for f in peer.list_files() if matcher.fullmatch(f.name)]
        manifest, problem = read_manifest(peer)
        to_read = [f for f in jobs if options.deep or not is_vouched(f, manifest.get(f.name))]
        contents = peer.read_files([f.name for f in to_read]) if to_read else {}
        hashes = {
            name_key(n): hashlib.sha256(d).hexdigest() if isinstance(d, bytes) else None
            for n, d in contents.items()
        }
        drift = find_drift(
            scan.files,
            fence.manifest(),
            jobs,
            manifest,
            peer_hashes=hashes,
            node=config.node,
            epoch=fence.epoch(),
            collided=scan.collided,
        )
        applied = None
        if options.apply and drift:
            newer = frozenset(name_key(d.file) for d in drift if d.newer is Newer.PEER)
            edited = frozenset(name_key(d.file) for d in drift if d.edited_on_peer)
            push_options = PushOptions(
                hold=frozenset() if options.force else newer,
                # Files --deep found edited despite a matching record, and newer versions that
                # --force replaces, are read and kept in backup first.
                distrust=edited | (newer if options.force else frozenset()),
            )
            sync = PeerSync(peer_config, config=config, options=push_options, fence=fence)
            applied = sync.sync(peer, scan)
        return PeerDrift(
            peer=name,
            reachable=True,
            drift=tuple(drift),
            manifest_problem=None if problem is None else str(problem),
            applied=applied,
        )
    except PeerError as exc:
        return PeerDrift(peer=name, reachable=False, error=str(exc))
    finally:
        peer.close()
