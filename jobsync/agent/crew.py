"""The peers' workers as one crew: started, woken, watched for a dead thread, stopped in time."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection

from jobsync.agent.events import EventRing
from jobsync.agent.metrics import AgentMetrics
from jobsync.agent.worker import PeerWorker
from jobsync.logs import get_logger

log = get_logger(__name__)

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
