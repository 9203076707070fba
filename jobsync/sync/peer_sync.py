"""Bringing peers in line: one peer once or pass after pass, and ``jobsync push``.

A pass is fenced first (a peer whose manifest names an owner that outranks this node changes
nothing), then made over some changed names when that is known to be enough, else over the
whole folder (:mod:`jobsync.sync.passes`). Whatever a pass raises is that pass failing, never
the caller's thread; a session the server ended is logged on again and the pass redone.

``jobsync push``: scan the source once, then bring every peer in line, concurrently.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Literal

from jobsync.config.model import Config, PeerConfig
from jobsync.epoch import LocalFence, fence_verdict
from jobsync.errors import ManifestTooNewError, PeerError, PeerSessionLostError, SafetyRefusalError
from jobsync.jobs_folder import Manifest, name_key
from jobsync.logs import get_logger
from jobsync.node import clash, local_identity, publish, published_addresses
from jobsync.result import PeerResult, PushResult
from jobsync.retention import prune_kept
from jobsync.scan import SourceScan, scan_source
from jobsync.sync.manifests import ManifestCache, Records, next_manifest
from jobsync.sync.passes import (
    Pass,
    Progress,
    PushOptions,
    Tally,
    author_of,
    fresh_temp,
    utc_now,
)
from jobsync.transport import Opener, default_opener, each_peer
from jobsync.transport.base import Peer
from jobsync.transport.local import LocalPeer

log = get_logger(__name__)


Scope = Literal["names", "all"]  # what a pass went over: some changed names, or the folder


class PeerSync:
    """Keeps one peer in line with a source scan, remembering its manifest between passes.

    With ``defer_manifest``, a pass over names that only wrote files (no deletion, no failure)
    leaves the manifest in memory until :meth:`save_deferred`: a manifest that lags behind
    only makes the next pass read those files again, while rewriting it (a record per job)
    costs more than the copy. ``prune_every``: a full pass also removes kept copies past their
    retention, at most once per this many seconds (``None``: never).
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
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Prepare to sync ``peer``; ``monotonic`` is the clock its pruning schedule reads."""
        self.peer_config = peer
        self._config = config
        self._options = options
        self._fence = fence
        self._now = now
        self._progress = progress
        self._defer_manifest = defer_manifest
        self._prune_every = prune_every
        self._monotonic = monotonic
        self._pruned_at: float | None = None  # monotonic() of the last pruning
        self._log = log.bind(peer=peer.name)
        self._cache = ManifestCache(self._log)
        self._clean = False  # whether the cached manifest records exactly the peer's jobs
        self._temps_alike: bool | None = None  # what the last probe showed (see Pass)

    @property
    def unsaved_since(self) -> float | None:
        """Since when (``time.monotonic()``) the peer's manifest lags behind, if it does."""
        return self._cache.unsaved_since

    def run_once(self, scan: Callable[[], SourceScan], opener: Opener) -> PeerResult:
        """Connect, then sync with ``scan()`` (which may still be reading), then disconnect.

        Never raises for a peer problem; what ``scan`` raises (the source folder vanished) is
        raised before anything on the peer changes.
        """
        started = time.monotonic()
        try:
            peer = opener(self.peer_config, self._config.timeout_seconds)
        except PeerError as exc:
            self._log.error("peer_failed", error=str(exc))
            failed = PeerResult(peer=self.peer_config.name, error=str(exc))
            return self._finish(replace(failed, seconds=time.monotonic() - started), "all")
        try:
            return self.sync(peer, scan())
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
        started, logons = time.monotonic(), 0
        while True:
            tally, error = Tally(), None
            scope: Scope = "all" if names is None else "names"
            try:
                scope = self._pass(peer, scan, names, tally)
            except PeerSessionLostError as exc:
                self._forget()
                if not logons:
                    # An expired Kerberos ticket or a closed share: the peer logs on again at
                    # its next request, and a full pass redoes what this one left half done.
                    logons, names = 1, None
                    self._log.info("peer_session_renewed", reason=str(exc))
                    continue
                error = str(exc)
            except PeerError as exc:
                self._forget()  # the peer's state is unknown now
                error = str(exc)
            except Exception as exc:  # noqa: BLE001 - one pass fails, never the caller's thread
                self._forget()
                # The cause in one line; its traceback for whoever runs with -v.
                self._log.debug("peer_pass_crashed", exc_info=True)
                error = (
                    f"peer {self.peer_config.name}: jobsync failed internally "
                    f"({type(exc).__name__}: {exc}); the pass is retried"
                )
            break
        if error is not None:
            self._log.error("peer_failed", error=error)
        result = tally.result(self.peer_config.name, error=error)
        # Only a clean pass leaves a manifest that stands for the peer's whole listing.
        self._clean = result.status == "ok" and self._cache.manifest is not None
        elapsed = time.monotonic() - started
        return self._finish(replace(result, seconds=elapsed, logons=logons), scope)

    def _pass(
        self, peer: Peer, scan: SourceScan, names: Collection[str] | None, tally: Tally
    ) -> Scope:
        """Fence, then pass over ``names`` or the whole folder; returns which it did."""
        options = self._options
        cached = self._cache.manifest
        if names is not None and cached is not None and self._names_will_do(peer):
            ctx = self._context(peer, cached, tally, temps_alike=self._temps_alike)
            if ctx is None:
                return "names"
            done = ctx.over_names(cached, scan, names, defer_manifest=self._defer_manifest)
            self._temps_alike = ctx.temps_alike
            if done:
                return "names"
        stamp = None if options.dry_run else self._now().strftime("%Y%m%dT%H%M%S.%fZ")
        try:
            manifest = self._cache.load(peer, set_aside=stamp)
        except ManifestTooNewError as exc:
            tally.refuse(str(exc))
            self._log.warning("push_refused", reason=str(exc))
            return "all"
        # A full pass probes again where jobs may be written: permissions can change.
        ctx = self._context(peer, manifest, tally, temps_alike=None)
        if ctx is None:
            return "all"
        ctx.over_all(manifest, scan, foreign_owner=self._foreign_owner(manifest))
        self._temps_alike = ctx.temps_alike
        self._prune_if_due(peer, tally)
        return "all"

    def _names_will_do(self, peer: Peer) -> bool:
        """Whether a pass over some names only is safe: it changes nothing a full pass must see."""
        options = self._options
        if not self._clean or options.dry_run or options.hold or options.distrust:
            return False
        # A manifest another jobsync wrote (a takeover?) is reread and fenced by a full pass.
        return self._cache.is_current(peer)

    def _context(
        self, peer: Peer, manifest: Manifest, tally: Tally, *, temps_alike: bool | None
    ) -> Pass | None:
        """The pass's context, or ``None`` when the peer or this node names a winning owner."""
        node, me = self._config.node, self._fence.identity
        where = f"its jobs folder on peer {self.peer_config.name}"
        verdict = fence_verdict(
            manifest,
            epoch=self._fence.epoch(),
            node=node,
            me=me,
            where=f"by the manifest in {where}",
        )
        if verdict.winner is not None:
            self._fence.saw(verdict.winner)  # fenced on every peer from now on, not only here
        found = self._cache.identity
        if me is not None and (problem := clash(me, found, where=f"by node.json in {where}")):
            self._fence.saw_clash(problem)
        if verdict.clash is not None:
            self._fence.saw_clash(verdict.clash)
        reason = self._fence.reason() or verdict.reason
        if reason is not None:
            tally.refuse(reason)
            self._log.warning("push_fenced", reason=reason)
            return None
        return Pass(
            peer=peer,
            node=node,
            epoch=verdict.epoch,
            fence=self._fence,
            now=self._now,
            log=self._log,
            config=self._config,
            options=self._options,
            tally=tally,
            save=self._save,
            progress=self._progress,
            temps_alike=temps_alike,
        )

    def _foreign_owner(self, manifest: Manifest) -> bool:
        """Whether the folder names another owner (one this node outranks, or it is fenced)."""
        return bool(manifest.owner) and name_key(manifest.owner) != name_key(self._config.node)

    def _save(self, ctx: Pass, old: Manifest, records: Records, *, defer: bool) -> None:
        """Leave the pass's records on the peer: now, or (``defer``) in memory until later."""
        cache = self._cache
        manifest = next_manifest(
            old, records, author=author_of(ctx), since=self._fence.since(), now=ctx.written()
        )
        if manifest is None:
            if cache.unsaved_since is None:
                return  # nothing changed: leave the peer untouched
            manifest = old  # what an earlier pass deferred
        if defer:
            cache.defer(manifest)
            return
        failure = cache.save(ctx.peer, manifest, temp=ctx.temp())
        if failure is not None:
            ctx.tally.fail([failure])

    def _prune_if_due(self, peer: Peer, tally: Tally) -> None:
        """Remove kept copies past their retention, unless done recently."""
        every, last = self._prune_every, self._pruned_at
        if every is None:
            return
        if last is not None and self._monotonic() - last < every:
            return
        dry = self._options.dry_run
        tally.pruned = prune_kept(peer, self._config.retention, now=self._now(), dry_run=dry)
        if not dry:
            self._pruned_at = self._monotonic()

    def _forget(self) -> None:
        self._cache.forget()
        self._clean = False
        self._temps_alike = None

    def save_deferred(self, peer: Peer) -> None:
        """Write the manifest passes deferred, unless another jobsync rewrote it meanwhile."""
        if self._cache.unsaved_since is None:
            return
        self._cache.save_deferred(peer, temp=fresh_temp())

    def _finish(self, result: PeerResult, scope: Scope) -> PeerResult:
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
            scope=scope,
            seconds=round(r.seconds, 3),
        )
        return r


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
