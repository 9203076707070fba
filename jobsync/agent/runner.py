"""The agent: watcher, debouncer, one worker per peer, rescans, role checks, health and state.

The main thread only keeps time: it rescans every ``rescan_seconds`` (at once when the watcher
reports trouble), checks the role every ``check_seconds``, restarts a dead watcher and writes
the state file. Everything that touches a peer happens on that peer's worker.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import structlog

from jobsync.agent.events import EventRing
from jobsync.agent.health import HealthServer
from jobsync.agent.local_retention import PRUNE_EVERY_SECONDS, LocalPruner
from jobsync.agent.metrics import AgentMetrics
from jobsync.agent.page import render_page
from jobsync.agent.role import RoleDetector, RoleTracker
from jobsync.agent.source_index import SourceIndex
from jobsync.agent.state import state_path, write_state
from jobsync.agent.tally import PeerTally
from jobsync.agent.watcher import Debouncer, SourceWatcher
from jobsync.agent.worker import PeerWorker
from jobsync.config import Config
from jobsync.epoch import LocalFence
from jobsync.errors import ConfigError, SourceError
from jobsync.lock import WorkLock
from jobsync.logs import Redactor
from jobsync.result import AgentView, PeerResult, state_document
from jobsync.result import iso as _iso
from jobsync.scan import SourceScan
from jobsync.sync import PeerSync, PushOptions
from jobsync.transport import Opener, check_installation, default_opener

log = structlog.get_logger(__name__)

WATCHER_CHECK_SECONDS = 2.0
# A rescan that finds the source as the events left it re-checks each peer only every this
# many rescans (a check lists the whole peer folder), the peers in turn so that one rescan
# lists few of them; changes, watcher trouble and role changes check every peer at once.
PEER_CHECK_EVERY_RESCANS = 5
STOP_GRACE_SECONDS = 5.0  # then connections are cut, so shutdown stays well under 10 s


class Agent:
    """``jobsync watch``: keeps every peer current while this node is the services node."""

    def __init__(
        self,
        config: Config,
        *,
        opener: Opener = default_opener,
        detector: RoleDetector | None = None,
    ) -> None:
        """Build the agent; nothing runs until :meth:`run`."""
        check_installation(config.target_peers)
        self.config = config
        self.stopping = threading.Event()
        self.index = SourceIndex(config.source, config.pattern)
        self.metrics = AgentMetrics()
        self.events = EventRing()
        self._local_pruner = LocalPruner(config, metrics=self.metrics, events=self.events)
        self._redactor = Redactor()
        self._redactor.add(config.secrets())
        self._wakeup = threading.Event()
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()  # state files are written in the order views are taken
        self._rescan_reason: str | None = None
        self._rescans = 0
        self._source_error: str | None = None
        self._detector = detector or RoleDetector(config.active)
        self._tracker: RoleTracker | None = None
        self._started = time.time()
        self._status = {p.name: PeerTally(p.name, p.location) for p in config.target_peers}
        self._state_path = state_path(config.state_dir)
        self.fence = LocalFence(config.source, config.node)
        self._workers = [
            PeerWorker(
                PeerSync(
                    peer,
                    config=config,
                    options=PushOptions(),
                    fence=self.fence,
                    defer_manifest=True,
                    prune_every=PRUNE_EVERY_SECONDS,
                ),
                self,
                opener=opener,
                timeout=config.timeout_seconds,
                retry_max=config.watch.retry_max_seconds,
            )
            for peer in config.target_peers
        ]
        self._debouncer = Debouncer(config.watch.debounce_ms / 1000, self._on_settled)
        self._watcher = SourceWatcher(
            config.source,
            matches=self.index.matches,
            on_name=self._debouncer.touch,
            on_trouble=self.request_rescan,
        )
        self._running = False  # the workers have been started
        self.metrics.add_peers(self._status)
        self.metrics.watch_lag(self._lags)
        self._health: HealthServer | None = None
        if config.health.listen:
            host, port = config.health.listen
            try:
                self._health = HealthServer(
                    config.health.listen,
                    health=self.health,
                    metrics=self.metrics.render,
                    page=self.page,
                )
            except OSError as exc:
                raise ConfigError(
                    f"{config.path}: [health] listen: cannot listen on {host}:{port}: "
                    f"{exc.strerror or exc}"
                ) from None

    # -- what workers, the health server and signal handlers call ---------------------------

    @property
    def active(self) -> bool:
        """Whether this node is the services node now."""
        return self._tracker is not None and self._tracker.active

    def snapshot(self) -> SourceScan:
        """The newest view of the source."""
        return self.index.snapshot()

    def report(self, result: PeerResult, *, synced: SourceScan | None) -> None:
        """Record one pass of a worker."""
        now = time.time()
        self.metrics.record(result, now=now)
        with self._lock:
            self._status[result.peer].record(result, synced=synced, now=now)
        self.events.record_pass(result)
        self._save_state()

    def request_rescan(self, reason: str) -> None:
        """Rescan the source soon (the watcher may have lost events)."""
        self._rescan_reason = reason
        self._wakeup.set()

    def stop(self) -> None:
        """Ask the agent to stop; safe from a signal handler."""
        self.stopping.set()
        self._wakeup.set()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy when running and every peer succeeded within ``max_lag_seconds``."""
        now = time.time()
        max_lag = self.config.health.max_lag_seconds
        reasons: list[str] = []
        peers: dict[str, Any] = {}
        with self._lock:
            for name, status in self._status.items():
                since = status.last_success or self._started
                lag = now - since
                peers[name] = {
                    "last_success": _iso(status.last_success),
                    "seconds_since_success": None if status.last_success is None else round(lag, 1),
                    "pending": self._pending(status),
                    "last_error": status.last_error,
                }
                if self.active and lag > max_lag:
                    reasons.append(f"peer {name}: no successful pass for {lag:.0f} s")
        reasons += [
            f"peer {w.name}: its worker is not running"
            for w in self._workers
            if self._running and not w.alive and not self.stopping.is_set()
        ]
        if self.stopping.is_set():
            reasons.append("the agent is stopping")
        if self._source_error:
            reasons.append(self._source_error)
        body = {
            "status": "ok" if not reasons else "failing",
            "node": self.config.node,
            "role": "active" if self.active else "standby",
            "reasons": reasons,
            "peers": peers,
        }
        return not reasons, body

    # -- the main loop ------------------------------------------------------------------------

    def run(self) -> None:
        """Run until :meth:`stop`; raises SourceError if the source is missing at start."""
        lock = WorkLock(self.config.state_dir, who="the jobsync agent")
        if not lock.acquire(wait=0):
            log.warning("agent_waiting", reason=f"{lock.holder()} is at work on this node")
            if not lock.acquire(wait=float("inf"), stop=self.stopping):
                return  # asked to stop before the other one finished
        try:
            self._run()
        finally:
            lock.release()

    def _run(self) -> None:
        self.index.rescan()
        self._tracker = RoleTracker(
            self._detector.probe(), confirmations=self.config.active.confirmations
        )
        self.metrics.active.set(1 if self.active else 0)
        self.metrics.source_files.set(len(self.snapshot().files))
        self.metrics.epoch.set(self.fence.epoch())
        self.events.add(
            "start",
            f"agent started, {'active' if self.active else 'standby'} ({self._tracker.reason}), "
            f"{len(self.snapshot().files)} jobs",
        )
        log.info(
            "agent_started",
            node=self.config.node,
            role="active" if self.active else "standby",
            reason=self._tracker.reason,
            peers=[w.name for w in self._workers],
            jobs=len(self.snapshot().files),
        )
        if self._health is not None:
            self._health.start()
        self._debouncer.start()
        self._start_watcher()
        for worker in self._workers:
            worker.start()
        self._running = True
        self._wake_workers()  # the start is a full push
        self._local_pruner.prune_if_due(active=self.active)
        self._save_state()
        try:
            self._loop()
        finally:
            self._shutdown()

    def _loop(self) -> None:
        watch = self.config.watch
        now = time.monotonic()
        next_rescan = now + watch.rescan_seconds
        next_role = now + self.config.active.check_seconds
        next_watcher_check = now + WATCHER_CHECK_SECONDS
        while not self.stopping.is_set():
            timeout = max(0.0, min(next_rescan, next_role, next_watcher_check) - time.monotonic())
            self._wakeup.wait(timeout)
            self._wakeup.clear()
            if self.stopping.is_set():
                break
            now = time.monotonic()
            if now >= next_watcher_check:
                self._check_watcher()
                self._check_workers()
                next_watcher_check = now + WATCHER_CHECK_SECONDS
            reason, self._rescan_reason = self._rescan_reason, None
            if reason is not None or now >= next_rescan:
                self._rescan(reason or "periodic")
                next_rescan = now + watch.rescan_seconds
            if now >= next_role:
                self._check_role()
                next_role = now + self.config.active.check_seconds

    def _rescan(self, reason: str) -> None:
        self.metrics.rescans.inc()
        try:
            refresh = self.index.rescan()
        except SourceError as exc:
            self._source_problem(str(exc))
            return
        self._source_problem(None)
        self.metrics.source_files.set(len(self.snapshot().files))
        self._rescans += 1
        if refresh.changed or reason != "periodic":
            due = self._workers  # events were lost: every peer may lack something
        else:
            # Even with no change at the source, a full pass repairs peers that drifted.
            turn = self._rescans % PEER_CHECK_EVERY_RESCANS
            due = [w for i, w in enumerate(self._workers) if i % PEER_CHECK_EVERY_RESCANS == turn]
        self._wake_workers(workers=due)
        if refresh.changed or reason != "periodic":
            found = "found changes" if refresh.changed else "found no change"
            self.events.add("rescan", f"rescanned the source ({reason}): {found}")
        self.metrics.epoch.set(self.fence.epoch())
        self._local_pruner.prune_if_due(active=self.active)
        log.debug(
            "source_rescanned",
            reason=reason,
            changed=refresh.changed,
            peers_checked=[w.name for w in due],
        )

    def _on_settled(self, names: set[str]) -> None:
        """Names that have been quiet for the debounce window: read them and wake the workers."""
        try:
            refresh = self.index.refresh(names)
        except SourceError as exc:
            self._source_problem(str(exc))
            return
        for name in refresh.unstable:
            self._debouncer.touch(name)  # still being written: look again after another window
        if refresh.changed:
            self.metrics.source_files.set(len(self.snapshot().files))
            log.debug("source_changed", files=sorted(names))
            self._wake_workers(names)

    def _source_problem(self, problem: str | None) -> None:
        if problem != self._source_error:
            if problem:
                log.error("source_unavailable", error=problem, action="nothing will be deleted")
                self.events.add("source", f"source folder unavailable: {problem}")
            else:
                log.info("source_available")
                self.events.add("rescan", "source folder available again")
        self._source_error = problem

    def _check_role(self) -> None:
        tracker = self._tracker
        if tracker is None:
            return
        if tracker.observe(self._detector.probe()):
            role = "active" if tracker.active else "standby"
            log.warning("role_changed", role=role, reason=tracker.reason)
            self.events.add("role", f"became {role}: {tracker.reason}")
            self.metrics.active.set(1 if tracker.active else 0)
            if tracker.active:
                self._wake_workers()  # becoming active starts with a full push
            self._save_state()

    def _start_watcher(self) -> None:
        try:
            self._watcher.start()
        except OSError as exc:
            # One line for the operator: the reason says it all, a traceback would not help.
            log.error(  # noqa: TRY400
                "watcher_failed", error=str(exc), action="relying on rescans until it starts"
            )

    def _check_watcher(self) -> None:
        if self._watcher.alive:
            return
        self.metrics.watcher_restarts.inc()
        log.warning("watcher_restarted")
        self.events.add("restart", "the folder watcher had stopped and was restarted")
        self._watcher.stop()
        self._start_watcher()
        self.request_rescan("watcher restarted")

    def _check_workers(self) -> None:
        """Start again a worker whose thread died: faults are contained, but never say never."""
        for worker in self._workers:
            if worker.alive or self.stopping.is_set():
                continue
            self.metrics.worker_restarts.labels(worker.name).inc()
            log.error("worker_restarted", peer=worker.name)
            self.events.add(
                "restart", "the peer's worker had stopped and was restarted", peer=worker.name
            )
            worker.restart()

    def _wake_workers(
        self, names: set[str] | None = None, *, workers: list[PeerWorker] | None = None
    ) -> None:
        """Ask the workers (default: all) for a pass over ``names``, or the whole folder."""
        if not self.active or self._source_error:
            return
        for worker in self._workers if workers is None else workers:
            worker.wake(names)

    def _shutdown(self) -> None:
        self.stopping.set()
        self._watcher.stop()
        self._debouncer.stop()
        for worker in self._workers:
            worker.wake()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        for worker in self._workers:
            worker.abort()  # a peer still mid-pass is cut off; its temp file never matches
        for worker in self._workers:
            worker.join(2.0)
        if self._health is not None:
            self._health.stop()
        self._save_state(running=False)
        log.info("agent_stopped")

    # -- state --------------------------------------------------------------------------------

    def _pending(self, status: PeerTally) -> int:
        return status.pending(self.snapshot())

    def view(self, *, running: bool = True) -> AgentView:
        """What the agent holds now, as one value (no peer is asked anything)."""
        tracker, owner, snapshot = self._tracker, self.fence.manifest(), self.snapshot()
        with self._lock:
            peers = tuple(status.view(snapshot) for status in self._status.values())
        return AgentView(
            node=self.config.node,
            pid=os.getpid(),
            running=running and not self.stopping.is_set(),
            started=self._started,
            at=time.time(),
            role="starting" if tracker is None else "active" if tracker.active else "standby",
            role_reason=tracker.reason if tracker else None,
            epoch=self.fence.epoch(),
            owner=owner.owner,
            owner_epoch=owner.epoch,
            source_folder=str(self.config.source),
            source_files=len(snapshot.files),
            source_error=self._source_error,
            peers=peers,
            events=self.events.recent(),
        )

    def page(self) -> bytes:
        """The status page (``GET /``)."""
        return render_page(self.view(), hide=self._redactor.text)

    def _lags(self) -> dict[str, float]:
        """Seconds since each peer's last successful pass (since the start when none)."""
        now = time.time()
        with self._lock:
            return {n: now - (s.last_success or self._started) for n, s in self._status.items()}

    def _save_state(self, *, running: bool = True) -> None:
        with self._save_lock:
            view = self.view(running=running)
            for peer in view.peers:
                self.metrics.pending.labels(peer.name).set(peer.pending)
            try:
                write_state(self._state_path, state_document(view))
            except OSError as exc:
                log.warning("state_not_saved", path=str(self._state_path), error=str(exc))
