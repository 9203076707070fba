"""The agent's Prometheus metrics, in a registry of its own (one per agent, none global)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)

from jobsync.result import PeerResult


class AgentMetrics:
    """Counters and gauges served at ``/metrics``, all prefixed ``jobsync_``."""

    def __init__(self) -> None:
        """Create every metric in a fresh registry."""
        disable_created_metrics()  # type: ignore[no-untyped-call] # *_created repeats the start time
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.pushed = Counter(
            "jobsync_files_pushed", "Job files written to a peer", ["peer"], registry=r
        )
        self.deleted = Counter(
            "jobsync_files_deleted", "Job files moved to a peer's trash", ["peer"], registry=r
        )
        self.failed = Counter(
            "jobsync_files_failed", "Job files a peer refused", ["peer"], registry=r
        )
        self.passes = Counter(
            "jobsync_peer_passes",
            "Sync passes per peer, by outcome",
            ["peer", "status"],
            registry=r,
        )
        self.last_success = Gauge(
            "jobsync_peer_last_success_timestamp_seconds",
            "When a pass last brought the peer fully up to date (Unix time)",
            ["peer"],
            registry=r,
        )
        self.pending = Gauge(
            "jobsync_peer_pending_changes",
            "Job files that differ between the source and what the peer last received",
            ["peer"],
            registry=r,
        )
        self.active = Gauge(
            "jobsync_active", "1 while this node is the services node, else 0", registry=r
        )
        self.watcher_restarts = Counter(
            "jobsync_watcher_restarts", "Times the folder watcher was restarted", registry=r
        )
        self.worker_restarts = Counter(
            "jobsync_worker_restarts",
            "Times a peer's worker thread had died and was started again",
            ["peer"],
            registry=r,
        )
        self.rescans = Counter("jobsync_rescans", "Full rescans of the source folder", registry=r)
        self.source_files = Gauge("jobsync_source_files", "Job files in the source", registry=r)

    def record(self, result: PeerResult, *, now: float) -> None:
        """Count one pass over one peer."""
        peer = result.peer
        self.pushed.labels(peer).inc(len(result.copied))
        self.deleted.labels(peer).inc(len(result.deleted))
        self.failed.labels(peer).inc(len(result.failed))
        self.passes.labels(peer, result.status).inc()
        if result.status == "ok":
            self.last_success.labels(peer).set(now)

    def render(self) -> bytes:
        """The metrics in Prometheus text format."""
        return generate_latest(self.registry)
