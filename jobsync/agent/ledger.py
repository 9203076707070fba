"""What the agent knows of its peers, kept as passes report, and the views it makes of it.

Workers report each pass here (from their own threads); the health check, the status page and
the state file read views of it (:class:`~jobsync.result.AgentView`), built under one lock
from what the agent already holds: no peer is asked anything. :mod:`~jobsync.agent.verdict`
judges them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from jobsync.agent.events import EventRing
from jobsync.agent.metrics import AgentMetrics
from jobsync.agent.state import state_path, write_state
from jobsync.agent.tally import PeerTally
from jobsync.config import Config
from jobsync.epoch import LocalFence
from jobsync.logs import get_logger
from jobsync.result import AgentView, PeerResult, state_document
from jobsync.scan import SourceScan

log = get_logger(__name__)


@dataclass(frozen=True)
class Role:
    """The agent's role as the view shows it."""

    name: str  # "active", "standby", or "starting" before the first role check
    reason: str | None = None


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
