"""The agent's daily clean-up of this node's own ``.jobsync/trash`` and ``.jobsync/backup``.

Peers are pruned by their workers (a full pass, at most daily); this node's own jobs folder
is no peer, so the main thread prunes it, only while the node is active: on a standby the
active node prunes this folder as one of its peers.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from jobsync.agent.events import EventRing, pruned_text
from jobsync.agent.metrics import AgentMetrics
from jobsync.config import Config
from jobsync.errors import PeerError
from jobsync.retention import prune_kept
from jobsync.transport.local import LocalPeer

PRUNE_EVERY_SECONDS = 86_400.0  # kept copies expire by the day: pruning daily is enough


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
