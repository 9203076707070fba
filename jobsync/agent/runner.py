"""The agent: the source followed, one worker per peer, rescans, role checks, health and state.

The main thread only keeps time: it rescans every ``rescan_seconds`` (at once when the watcher
reports trouble), checks the role every ``check_seconds``, restarts a dead watcher or worker
and writes the state file. Everything that touches a peer happens on that peer's worker
(:mod:`~jobsync.agent.workers`); the source is followed by :mod:`~jobsync.agent.source_feed`, and
what the agent knows is kept in its :mod:`~jobsync.agent.view`. With ``[failover]``, where
Integrify's services run is checked on a thread of its own (:mod:`~jobsync.agent.fleet_watch`);
with ``[fleet_check]``, the services node runs the fleet check on another, now and then.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone

from jobsync import __version__
from jobsync.agent.fleet_watch import FleetWatch, SingletonGuard
from jobsync.agent.health import health_of, health_server
from jobsync.agent.metrics import AgentMetrics
from jobsync.agent.page import render_page
from jobsync.agent.source_feed import SourceFeed
from jobsync.agent.view import (
    AgentView,
    EventRing,
    PeerTally,
    pruned_text,
    state_document,
    state_path,
    write_state,
)
from jobsync.agent.workers import Crew, workers_for
from jobsync.config.model import Config
from jobsync.epoch import LocalFence
from jobsync.errors import PeerError
from jobsync.failover.steps import ServicesNodes
from jobsync.logs import Redactor, get_logger
from jobsync.node import WorkLock, local_identity, publish, published_addresses
from jobsync.result import PeerResult, read_last
from jobsync.retention import PRUNE_EVERY_SECONDS, prune_kept
from jobsync.role import Role, RoleDetector, RoleTracker
from jobsync.scan import SourceScan
from jobsync.transport import Opener, check_installation, default_opener
from jobsync.transport.local import LocalPeer

log = get_logger(__name__)

WATCHER_CHECK_SECONDS = 2.0


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
        self.metrics = AgentMetrics()
        self.metrics.watch_failover(lambda: read_last(config.state_dir))
        self.events = EventRing()
        self.identity = local_identity(config, addresses=published_addresses(config))
        self.fence = LocalFence(config.source, config.node, identity=self.identity)
        self._feed = SourceFeed(
            config,
            metrics=self.metrics,
            events=self.events,
            changed=self._wake_workers,
            trouble=self.request_rescan,
        )
        self.index = self._feed.index
        self.ledger = Ledger(
            config,
            metrics=self.metrics,
            events=self.events,
            fence=self.fence,
            snapshot=self.snapshot,
        )
        self._local_pruner = LocalPruner(config, metrics=self.metrics, events=self.events)
        self._redactor = Redactor()
        self._redactor.add(config.secrets())
        self._wakeup = threading.Event()
        self._rescan_reason: str | None = None
        self._rescans = 0
        self._detector = detector or RoleDetector(config.active)
        self._detector.validate()  # a mode that cannot work here stops the start (exit 2)
        self._tracker: RoleTracker | None = None
        self._crew = Crew(
            workers_for(config, self, fence=self.fence, opener=opener),
            metrics=self.metrics,
            events=self.events,
        )
        self._guard = SingletonGuard.for_config(
            config, metrics=self.metrics, events=self.events, changed=self._save_state
        )
        self._fleet = FleetWatch.for_config(
            config, active=lambda: self.active, metrics=self.metrics, changed=self._save_state
        )
        self._health = health_server(
            config, live=self.live, health=self.health, metrics=self.metrics.render, page=self.page
        )

    # -- what workers, the health server and signal handlers call ---------------------------

    @property
    def active(self) -> bool:
        """Whether this node is the services node now."""
        return self._tracker is not None and self._tracker.active

    def snapshot(self) -> SourceScan:
        """The newest view of the source."""
        return self._feed.snapshot()

    def report(self, result: PeerResult, *, synced: SourceScan | None) -> None:
        """Record one pass of a worker."""
        self.ledger.record(result, synced=synced)
        self._save_state()

    def request_rescan(self, reason: str) -> None:
        """Rescan the source soon (the watcher may have lost events)."""
        self._rescan_reason = reason
        self._wakeup.set()

    def stop(self) -> None:
        """Ask the agent to stop, from any thread (signals come through :class:`StopSignals`)."""
        self.stopping.set()
        self._wakeup.set()

    def live(self) -> tuple[bool, dict[str, object]]:
        """``/livez``: alive until asked to stop; nothing else (no peer, no folder) counts."""
        alive = not self.stopping.is_set()
        return alive, {
            "status": "alive" if alive else "stopping",
            "node": self.config.node,
            "version": __version__,
        }

    def health(self) -> tuple[bool, dict[str, object]]:
        """``/healthz``: whether this node does its duty; peers left behind only degrade it."""
        return health_of(
            self.view(),
            max_lag=self.config.health.max_lag_seconds,
            hide=self._redactor.text,
            services=self.services_nodes(),
        )

    def services_nodes(self) -> ServicesNodes | None:
        """The last check of where Integrify's services run; ``None`` without ``[failover]``."""
        return None if self._guard is None else self._guard.last

    def view(self, *, running: bool = True) -> AgentView:
        """What the agent holds now, as one value (no peer is asked anything)."""
        tracker = self._tracker
        role = (
            Role("starting")
            if tracker is None
            else Role("active" if tracker.active else "standby", tracker.reason)
        )
        running = running and not self.stopping.is_set()
        return self.ledger.view(
            role,
            running=running,
            source_error=self._feed.error,
            stalled=tuple(self._crew.stalled(self.stopping)),
        )

    def page(self) -> bytes:
        """The status page (``GET /``)."""
        return render_page(
            self.view(),
            hide=self._redactor.text,
            max_lag=self.config.health.max_lag_seconds,
            services=self.services_nodes(),
            failover=read_last(self.config.state_dir),
            fleet=None if self._fleet is None else self._fleet.last,
        )

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
        self._publish_identity()
        tracker = RoleTracker(
            self._detector.probe(), confirmations=self.config.active.confirmations
        )
        self._tracker = tracker
        role, jobs = ("active" if tracker.active else "standby"), len(self.snapshot().files)
        self.metrics.active.set(1 if tracker.active else 0)
        self.metrics.source_files.set(jobs)
        self.metrics.epoch.set(self.fence.epoch())
        self.events.add("start", f"agent started, {role} ({tracker.reason}), {jobs} jobs")
        log.info(
            "agent_started",
            node=self.config.node,
            role=role,
            reason=tracker.reason,
            peers=self._crew.names,
            jobs=jobs,
        )
        if self._health is not None:
            self._health.start()
        self._feed.start()
        self._crew.start()
        for checker in (self._guard, self._fleet):
            if checker is not None:
                checker.start()
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
                if self._feed.check_watcher():
                    self.request_rescan("watcher restarted")
                self._crew.revive(self.stopping)
                next_watcher_check = now + WATCHER_CHECK_SECONDS
            reason, self._rescan_reason = self._rescan_reason, None
            if reason is not None or now >= next_rescan:
                self._rescan(reason or "periodic")
                next_rescan = now + watch.rescan_seconds
            if now >= next_role:
                self._check_role()
                next_role = now + self.config.active.check_seconds

    def _rescan(self, reason: str) -> None:
        changed = self._feed.rescan(reason)
        if changed is None:
            return  # the source cannot be read: nothing is pushed, nothing deleted
        self._rescans += 1
        # Events may have been lost: every peer may lack something. Even with no change at the
        # source, a full pass now and then repairs peers that drifted.
        eventful = changed or reason != "periodic"
        due = self._crew.names if eventful else self._crew.due(self._rescans)
        self._wake_workers(only=due)
        self.metrics.epoch.set(self.fence.epoch())
        self._local_pruner.prune_if_due(active=self.active)
        log.debug("source_rescanned", reason=reason, changed=changed, peers_checked=due)

    def _publish_identity(self) -> None:
        """Say in this node's own folder which machine it is; another one by its name fences it."""
        try:
            problem = publish(self.config.source, self.identity)
        except OSError as exc:
            log.warning("identity_not_published", error=str(exc))
            return
        if problem is not None:
            self.fence.saw_clash(problem)
            log.error("node_name_clash", reason=problem)
            self.events.add("clash", problem)

    def _check_role(self) -> None:
        tracker = self._tracker
        if tracker is None or not tracker.observe(self._detector.probe()):
            return
        role = "active" if tracker.active else "standby"
        log.warning("role_changed", role=role, reason=tracker.reason)
        self.events.add("role", f"became {role}: {tracker.reason}")
        self.metrics.active.set(1 if tracker.active else 0)
        if tracker.active:
            self._wake_workers()  # becoming active starts with a full push
        if self._fleet is not None:
            self._fleet.wake()  # it runs only while active
        self._save_state()

    def _wake_workers(
        self, names: set[str] | None = None, *, only: list[str] | None = None
    ) -> None:
        """Ask the workers (``only`` these peers) for a pass over ``names``, or everything."""
        if self.active and not self._feed.error:
            self._crew.wake(names, only=only)

    def _shutdown(self) -> None:
        self.stopping.set()
        self._feed.stop()
        for checker in (self._guard, self._fleet):
            if checker is not None:
                checker.stop()
        self._crew.stop()
        if self._health is not None:
            self._health.stop()
        self._save_state(running=False)
        log.info("agent_stopped")

    def _save_state(self, *, running: bool = True) -> None:
        self.ledger.save(lambda: self.view(running=running), extra=self._state_extra)

    def _state_extra(self) -> dict[str, object]:
        services, fleet = self.services_nodes(), self._fleet
        return {
            "services_nodes": None if services is None else services.document(),
            "fleet_check": None if fleet is None else fleet.last.document(self._redactor.text),
        }


# The agent's daily clean-up of this node's own .jobsync/trash and .jobsync/backup. Peers are
# pruned by their workers (a full pass, at most daily); this node's own jobs folder is no peer,
# so the main thread prunes it, only while the node is active: on a standby the active node
# prunes this folder as one of its peers.
class LocalPruner:
    """Prunes the source folder's kept copies at most once per ``PRUNE_EVERY_SECONDS``."""

    def __init__(self, config: Config, *, metrics: AgentMetrics, events: EventRing) -> None:
        """Prune ``config.source``, counting in ``metrics`` and noting in ``events``."""
        self._config = config
        self._metrics = metrics
        self._events = events
        self._last: float | None = None  # time.monotonic() of the last pruning

    def prune_if_due(self, *, active: bool) -> None:
        """Prune now if the node is active and the last pruning was a day ago or more."""
        last = self._last
        if not active or (last is not None and time.monotonic() - last < PRUNE_EVERY_SECONDS):
            return
        self._last = time.monotonic()
        config = self._config
        try:
            local = LocalPeer(config.node, config.source)
        except PeerError:
            return  # the source folder is gone: the rescan reports it
        pruned = prune_kept(local, config.retention, now=datetime.now(timezone.utc))
        if pruned:
            self._metrics.count_pruned(config.node, pruned)
            self._events.add("retention", f"{pruned_text(pruned)} (this node's folder)")


# What the agent knows of its peers, kept as passes report, and the views it makes of it.
# Workers report each pass here (from their own threads); the health check, the status page
# and the state file read views of it, built under one lock from what the agent already
# holds: no peer is asked anything.
class Ledger:
    """Per-peer tallies, the event ring and the metrics, with the views made of them."""

    def __init__(
        self,
        config: Config,
        *,
        metrics: AgentMetrics,
        events: EventRing,
        fence: LocalFence,
        snapshot: Callable[[], SourceScan],
    ) -> None:
        """Nothing known yet of ``config``'s peers."""
        self._config = config
        self._metrics = metrics
        self._events = events
        self._fence = fence
        self._snapshot = snapshot
        self.started = time.time()
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()  # state files are written in the order views are taken
        self._tallies = {p.name: PeerTally(p.name, p.location) for p in config.target_peers}
        self._state_path = state_path(config.state_dir)
        metrics.add_peers(self._tallies)
        metrics.watch_lag(self.lags)

    def record(self, result: PeerResult, *, synced: SourceScan | None) -> None:
        """Count one pass of a worker; ``synced``: the snapshot the peer now fully matches."""
        now = time.time()
        self._metrics.record(result, now=now)
        with self._lock:
            self._tallies[result.peer].record(result, synced=synced, now=now)
        self._events.record_pass(result)

    def view(
        self,
        role: Role,
        *,
        running: bool,
        source_error: str | None,
        stalled: tuple[str, ...] = (),
    ) -> AgentView:
        """What the agent holds now, as one value; ``stalled``: peers whose worker is down."""
        owner, snapshot = self._fence.manifest(), self._snapshot()
        fenced = self._fence.reason()
        with self._lock:
            peers = tuple(tally.view(snapshot) for tally in self._tallies.values())
        return AgentView(
            node=self._config.node,
            pid=os.getpid(),
            running=running,
            started=self.started,
            at=time.time(),
            role=role.name,
            role_reason=role.reason,
            epoch=self._fence.epoch(),
            owner=owner.owner,
            owner_epoch=owner.epoch,
            source_folder=str(self._config.source),
            source_files=len(snapshot.files),
            source_error=source_error,
            peers=peers,
            events=self._events.recent(),
            fenced=fenced,
            stalled=stalled,
        )

    def lags(self) -> dict[str, float]:
        """Seconds since each peer's last successful pass (since the start when none)."""
        now = time.time()
        with self._lock:
            return {n: now - (t.last_success or self.started) for n, t in self._tallies.items()}

    def save(
        self,
        make_view: Callable[[], AgentView],
        *,
        extra: Callable[[], Mapping[str, object]] = dict,
    ) -> None:
        """Write the state file from a fresh view (and keep the pending gauges with it).

        ``extra``: more top-level keys, from what the view does not hold (where the services run).
        """
        with self._save_lock:
            view = make_view()
            for peer in view.peers:
                self._metrics.pending.labels(peer.name).set(peer.pending)
            try:
                write_state(self._state_path, {**state_document(view), **extra()})
            except OSError as exc:
                log.warning("state_not_saved", path=str(self._state_path), error=str(exc))


# -- how the service manager's stop reaches the agent ---------------------------------------

# Ctrl+C (WinSW's stop), Ctrl+Break, and SIGTERM where there is one.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGBREAK") if hasattr(signal, name)
)
STOP_SIGNAL_JOIN_SECONDS = 2.0


class StopSignals:
    """While entered, a stop signal calls ``stop`` on a thread of its own, never in a handler.

    A Python signal handler runs on the main thread between two bytecodes, maybe while that
    thread holds the lock inside a ``threading.Event`` it is waiting on; ``Event.set()`` there
    waits for that lock forever, and every later signal queues behind it (CPython issue 126434).
    An agent asked to stop once hung that way. So the handler does nothing: the interpreter's
    own C handler writes the signal's number to a socket (:func:`signal.set_wakeup_fd`; a socket,
    as Windows takes no other kind there), and a thread that reads it calls ``stop``.
    """

    def __init__(self, stop: Callable[[], None]) -> None:
        """Call ``stop`` for each stop signal (it may come more than once)."""
        self._stop = stop
        self._reader, self._writer = socket.socketpair()
        self._writer.setblocking(False)  # noqa: FBT003 - set_wakeup_fd wants a non-blocking fd
        self._numbers = frozenset(int(s) for s in STOP_SIGNALS)
        self._thread = threading.Thread(target=self._wait, name="stop-signals", daemon=True)
        self._previous: dict[int, object] = {}
        self._previous_fd = -1

    def __enter__(self) -> StopSignals:  # noqa: PYI034 - typing.Self needs Python 3.11
        """Take the stop signals over (from the main thread, as Python requires)."""
        self._thread.start()
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for number in STOP_SIGNALS:
            self._previous[number] = signal.signal(number, _noted)
        return self

    def __exit__(self, *_exc: object) -> None:
        """Give the signals back; the reading thread ends when its socket closes."""
        for number, handler in self._previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
        signal.set_wakeup_fd(self._previous_fd)
        self._writer.close()
        self._thread.join(STOP_SIGNAL_JOIN_SECONDS)
        self._reader.close()

    def _wait(self) -> None:
        while True:
            try:
                numbers = self._reader.recv(64)
            except OSError:
                return
            if not numbers:
                return  # the writer closed: no more signals for this agent
            for number in numbers:
                if number in self._numbers:  # other handled signals write here too
                    self._stop()


def _noted(_signum: int, _frame: object) -> None:
    """The Python-level handler: nothing (the wake-up socket has the signal already)."""
