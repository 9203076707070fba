"""The peers' workers: one thread per peer, a slow or frozen peer never delays the rest.

A worker sleeps until woken (the source changed, a rescan ran, the node became active), then
brings its peer in line with the newest snapshot of the source. A wake for some changed names
makes a pass over those names only, when the last pass ended clean (see ``PeerSync.sync``);
any other wake, and every retry, compares the whole source with the peer, so work is never
dropped: whatever a failed pass did not finish, the next one does, deletions included. Failed
passes are retried with exponential backoff and jitter (tenacity), capped at
``retry_max_seconds``; each retry takes the newest snapshot again.

The peer's manifest (a record per job) is not rewritten after every pass over a few names: it
is saved once the peer has had no work for ``MANIFEST_QUIET_SECONDS``, at the latest
``MANIFEST_MAX_DEFER_SECONDS`` after the first pass it lags behind, and when the agent stops.

The peers' workers as one crew: started, woken, watched for a dead thread, stopped in time.

Giving freed memory back to the system after a large pass.
A full pass over 10,000 jobs reads and parses the peer's manifest and listing (megabytes that
are freed right after). CPython returns such blocks to the C allocator, and glibc keeps them
mapped, so a long-running agent would sit at the peak of its busiest pass. ``malloc_trim``
asks glibc to release what is free. Other C libraries (Windows, musl) manage this themselves
or lack the call; there it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable
from typing import Protocol

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential_jitter

from jobsync.agent.metrics import AgentMetrics
from jobsync.agent.view import EventRing
from jobsync.config.model import Config
from jobsync.epoch import LocalFence
from jobsync.errors import JobsyncError
from jobsync.logs import get_logger
from jobsync.result import PeerResult
from jobsync.retention import PRUNE_EVERY_SECONDS
from jobsync.scan import SourceScan
from jobsync.sync.passes import PushOptions
from jobsync.sync.peer_sync import PeerSync
from jobsync.transport import Opener
from jobsync.transport.base import Peer

_trim: Callable[[int], int] | None = None
if sys.platform == "linux":
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _trim = _libc.malloc_trim
    except (OSError, AttributeError):
        _trim = None


def release_freed_memory() -> None:
    """Hand freed heap pages back to the system, where the C library allows it."""
    if _trim is not None:
        _trim(0)


log = get_logger(__name__)

MANIFEST_QUIET_SECONDS = 1.0
MANIFEST_MAX_DEFER_SECONDS = 5.0


class AgentLink(Protocol):
    """What a worker needs from the agent."""

    stopping: threading.Event

    @property
    def active(self) -> bool:
        """Whether this node should push now."""
        ...

    def snapshot(self) -> SourceScan:
        """The newest view of the source."""
        ...

    def report(self, result: PeerResult, *, synced: SourceScan | None) -> None:
        """Record a pass; ``synced`` is the snapshot the peer now fully matches, if any."""
        ...


class PassFailedError(Exception):
    """A pass left work undone; the worker retries after a backoff."""


class PeerWorker:
    """Keeps one peer current, on a thread of its own."""

    def __init__(
        self, sync: PeerSync, link: AgentLink, *, opener: Opener, timeout: float, retry_max: float
    ) -> None:
        """Prepare (not start) the worker for ``sync``'s peer."""
        self.name = sync.peer_config.name
        self._sync = sync
        self._link = link
        self._opener = opener
        self._timeout = timeout
        self._retry_max = retry_max
        self._wake = threading.Event()
        self._work_lock = threading.Lock()  # guards the two fields below, set with _wake
        self._full = False  # a whole-folder pass is asked for
        self._names: set[str] = set()  # the changed names asked for otherwise
        self._peer: Peer | None = None
        self._peer_lock = threading.Lock()
        self._log = log.bind(peer=self.name)
        self._thread = self._new_thread()

    def _new_thread(self) -> threading.Thread:
        return threading.Thread(target=self._run, name=f"peer-{self.name}", daemon=True)

    def start(self) -> None:
        """Start the thread; it waits for the first wake."""
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the worker's thread runs (it only ends when the agent stops, or by a bug)."""
        return self._thread.is_alive()

    def restart(self) -> None:
        """Start a new thread for a worker whose thread died, with a whole-folder pass."""
        if self._thread.is_alive():
            return
        self._thread = self._new_thread()
        self._thread.start()
        self.wake()

    def wake(self, names: Iterable[str] | None = None) -> None:
        """Ask for a pass over ``names``, or the whole folder (wakes before a pass add up)."""
        with self._work_lock:
            if names is None:
                self._full = True
            else:
                self._names.update(names)
            self._wake.set()

    def _take_work(self) -> set[str] | None:
        """The names asked for since the last pass, or ``None`` for a whole-folder pass."""
        with self._work_lock:
            self._wake.clear()
            full, names = self._full, self._names
            self._full, self._names = False, set()
        return None if full else names

    def join(self, timeout: float) -> bool:
        """Wait for the thread to end; returns whether it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def abort(self) -> None:
        """Cut the peer connection so a pass that is waiting on the network ends now."""
        with self._peer_lock:
            if self._peer is not None:
                self._peer.abort()

    def _run(self) -> None:
        try:
            while not self._link.stopping.is_set():
                try:
                    self._serve_one_wake()
                except Exception as exc:  # noqa: BLE001 - contained: the worker lives on
                    self._fault(exc)
        finally:
            self._save_deferred()
            self._close()

    def _serve_one_wake(self) -> None:
        if not self._wake.wait(self._quiet_wait()):
            self._save_deferred()  # quiet for a while: the manifest catches up
            return
        names = self._take_work()
        if self._link.stopping.is_set() or not self._link.active:
            return
        self._pass_with_retries(names)

    def _fault(self, exc: Exception) -> None:
        """Something outside a pass failed (a bug): report it, drop the connection, go on."""
        error = f"peer {self.name}: jobsync failed internally ({type(exc).__name__}: {exc})"
        self._log.error("worker_fault", error=error)
        self._log.debug("worker_fault", exc_info=True)
        self._close()
        self._link.report(PeerResult(peer=self.name, error=error), synced=None)
        self.wake()  # what this wake asked for is still to do; the next one looks at everything
        self._link.stopping.wait(self._retry_max)  # and not in a tight loop

    def _quiet_wait(self) -> float | None:
        return None if self._sync.unsaved_since is None else MANIFEST_QUIET_SECONDS

    def _save_deferred(self) -> None:
        if self._peer is not None:
            self._sync.save_deferred(self._peer)

    def _pass_with_retries(self, names: set[str] | None) -> None:
        retrying = Retrying(
            wait=wait_exponential_jitter(initial=1, max=self._retry_max, jitter=1),
            retry=retry_if_exception_type(PassFailedError),
            stop=self._should_stop,
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    # A retry looks at everything: it cannot know what the failure left undone.
                    first = attempt.retry_state.attempt_number == 1
                    self._one_pass(names if first else None)
        except PassFailedError:
            pass  # stopping or no longer active: the next wake starts over

    def _sleep(self, seconds: float) -> None:
        self._link.stopping.wait(seconds)  # a backoff ends at once when the agent stops

    def _should_stop(self, _state: RetryCallState) -> bool:
        return self._link.stopping.is_set() or not self._link.active

    def _before_sleep(self, state: RetryCallState) -> None:
        delay = state.next_action.sleep if state.next_action else 0.0
        self._log.info(
            "peer_retry_scheduled", attempt=state.attempt_number, in_seconds=round(delay, 1)
        )

    def _one_pass(self, names: set[str] | None) -> None:
        peer = self._connect()
        scan = self._link.snapshot()
        result = self._sync.sync(peer, scan, names=names)
        if names is None:
            release_freed_memory()  # a full pass frees megabytes at 10,000 jobs
        # A pass over some names matches the whole snapshot only if no other name is waiting.
        complete = result.status == "ok" and (names is None or not self._wake.is_set())
        self._link.report(result, synced=scan if complete else None)
        since = self._sync.unsaved_since
        if since is not None and time.monotonic() - since >= MANIFEST_MAX_DEFER_SECONDS:
            self._sync.save_deferred(peer)
        if result.error:
            self._close()
            raise PassFailedError(result.error)
        if result.failed:
            raise PassFailedError(f"{len(result.failed)} file(s) failed")

    def _connect(self) -> Peer:
        if self._peer is not None:
            return self._peer
        try:
            peer = self._opener(self._sync.peer_config, self._timeout)
        except JobsyncError as exc:
            self._log.warning("peer_unavailable", error=str(exc))
            self._link.report(PeerResult(peer=self.name, error=str(exc)), synced=None)
            raise PassFailedError(str(exc)) from exc
        with self._peer_lock:
            self._peer = peer
        return peer

    def _close(self) -> None:
        with self._peer_lock:
            peer, self._peer = self._peer, None
        if peer is not None:
            peer.close()


def workers_for(
    config: Config, link: AgentLink, *, fence: LocalFence, opener: Opener
) -> list[PeerWorker]:
    """One worker per peer this node pushes to, prepared (not started)."""
    return [
        PeerWorker(
            PeerSync(
                peer,
                config=config,
                options=PushOptions(),
                fence=fence,
                defer_manifest=True,
                prune_every=PRUNE_EVERY_SECONDS,
            ),
            link,
            opener=opener,
            timeout=config.timeout_seconds,
            retry_max=config.watch.retry_max_seconds,
        )
        for peer in config.target_peers
    ]


# A rescan that finds the source as the events left it re-checks each peer only every this
# many rescans (a check lists the whole peer folder), the peers in turn so that one rescan
# lists few of them; changes, watcher trouble and role changes check every peer at once.
PEER_CHECK_EVERY_RESCANS = 5
STOP_GRACE_SECONDS = 5.0  # then connections are cut, so shutdown stays well under 10 s


class Crew:
    """One worker per peer, each on a thread of its own."""

    def __init__(
        self, workers: list[PeerWorker], *, metrics: AgentMetrics, events: EventRing
    ) -> None:
        """Take charge of ``workers`` (not started yet)."""
        self._workers = workers
        self._metrics = metrics
        self._events = events
        self._started = False

    @property
    def names(self) -> list[str]:
        """The peers, in order."""
        return [w.name for w in self._workers]

    def start(self) -> None:
        """Start every worker; each waits for its first wake."""
        for worker in self._workers:
            worker.start()
        self._started = True

    def wake(self, names: Collection[str] | None = None, *, only: list[str] | None = None) -> None:
        """Ask the workers (``only`` these peers) for a pass over ``names``, or everything."""
        for worker in self._workers:
            if only is None or worker.name in only:
                worker.wake(names)

    def due(self, rescans: int) -> list[str]:
        """The peers a quiet rescan re-checks: every fifth rescan each, in turn."""
        turn = rescans % PEER_CHECK_EVERY_RESCANS
        return [w.name for i, w in enumerate(self._workers) if i % PEER_CHECK_EVERY_RESCANS == turn]

    def stalled(self, stopping: threading.Event) -> list[str]:
        """Peers whose worker thread is not running (while it should be)."""
        if not self._started or stopping.is_set():
            return []
        return [w.name for w in self._workers if not w.alive]

    def revive(self, stopping: threading.Event) -> None:
        """Start again a worker whose thread died: faults are contained, but never say never."""
        for worker in self._workers:
            if worker.alive or stopping.is_set():
                continue
            self._metrics.worker_restarts.labels(worker.name).inc()
            log.error("worker_restarted", peer=worker.name)
            self._events.add(
                "restart", "the peer's worker had stopped and was restarted", peer=worker.name
            )
            worker.restart()

    def stop(self) -> None:
        """Let passes under way finish for a few seconds, then cut their connections."""
        for worker in self._workers:
            worker.wake()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        for worker in self._workers:
            worker.abort()  # a peer still mid-pass is cut off; its temp file never matches
        for worker in self._workers:
            worker.join(2.0)
