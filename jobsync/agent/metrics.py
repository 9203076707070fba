"""The agent's Prometheus metrics, in a registry of its own (one per agent, none global)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Info,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from jobsync import __version__
from jobsync.failover.steps import ServicesNodes
from jobsync.result import FleetReport, LastFailover, PeerResult
from jobsync.retention import kind_of

PASS_STATUSES = ("ok", "failed", "refused")
FLEET_VALUES = {"PASS": 1, "FAIL": 0, "CANNOT CHECK": -1}  # jobsync_fleet_check's values
KEPT_KINDS = ("trash", "backup")


class AgentMetrics:
    """Counters and gauges served at ``/metrics``, all prefixed ``jobsync_``."""

    def __init__(self) -> None:
        """Create every metric in a fresh registry."""
        disable_created_metrics()  # type: ignore[no-untyped-call] # *_created repeats the start time
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        build = Info("jobsync_build", "The jobsync version this agent runs", registry=r)
        build.info({"version": __version__})  # jobsync_build_info{version="..."} 1
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
        self.logons = Counter(
            "jobsync_peer_logons_renewed",
            "Times a peer was logged on again because its server ended the session "
            "(an expired Kerberos ticket, a closed share); not failures",
            ["peer"],
            registry=r,
        )
        self.worker_restarts = Counter(
            "jobsync_worker_restarts",
            "Times a peer's worker thread had died and was started again",
            ["peer"],
            registry=r,
        )
        self.rescans = Counter("jobsync_rescans", "Full rescans of the source folder", registry=r)
        self.source_files = Gauge("jobsync_source_files", "Job files in the source", registry=r)
        self.epoch = Gauge(
            "jobsync_epoch",
            "The epoch this node pushes in (that of its last takeover; 0 before any)",
            registry=r,
        )
        self.pruned = Counter(
            "jobsync_kept_copies_removed",
            "Kept copies removed from trash or backup past [retention] (peer: the folder's node)",
            ["peer", "kind"],
            registry=r,
        )

        self.services_nodes = Gauge(
            "jobsync_services_nodes",
            "Nodes the Integrify services run on, by this node's last check; -1 while it cannot "
            "tell (a node could not be asked, no check yet, or no [failover])",
            registry=r,
        )
        self.services_nodes.set(-1)
        self.services_running = Gauge(
            "jobsync_services_running",
            "1 while a configured Integrify service runs on the node, else 0, by this node's "
            "last check (absent while the node cannot be asked)",
            ["node"],
            registry=r,
        )
        self.services_checked = Gauge(
            "jobsync_services_check_timestamp_seconds",
            "When this node last asked every node where the Integrify services run (Unix time)",
            registry=r,
        )
        self.fleet_check = Gauge(
            "jobsync_fleet_check",
            "The last jobsync check --fleet on this node, per item and node: 1 PASS, 0 FAIL, "
            "-1 CANNOT CHECK (the worst of the item's lines there)",
            ["item", "node"],
            registry=r,
        )
        self.fleet_checked = Gauge(
            "jobsync_fleet_check_timestamp_seconds",
            "When the last fleet check on this node ended (Unix time; 0 before any)",
            registry=r,
        )

    def add_peers(self, names: Iterable[str]) -> None:
        """Start every per-peer series at zero, so rates and alerts see them from the start."""
        for peer in names:
            for metric in (self.pushed, self.deleted, self.failed, self.logons):
                metric.labels(peer)
            for status in PASS_STATUSES:
                self.passes.labels(peer, status)
            for kind in KEPT_KINDS:
                self.pruned.labels(peer, kind)

    def watch_failover(self, last: Callable[[], LastFailover | None]) -> None:
        """Serve the last failover run on this node, asked of ``last`` at each scrape."""
        self.registry.register(_FailoverCollector(last))

    def watch_lag(self, lags: Callable[[], Mapping[str, float]]) -> None:
        """Serve ``jobsync_peer_lag_seconds``, asked of ``lags`` at each scrape."""
        self.registry.register(_LagCollector(lags))

    def count_pruned(self, peer: str, paths: Sequence[str]) -> None:
        """Count kept copies removed from ``peer``'s folder (or this node's own)."""
        for path in paths:
            self.pruned.labels(peer, kind_of(path)).inc()

    def record(self, result: PeerResult, *, now: float) -> None:
        """Count one pass over one peer."""
        peer = result.peer
        self.pushed.labels(peer).inc(len(result.copied))
        self.deleted.labels(peer).inc(len(result.deleted))
        self.failed.labels(peer).inc(len(result.failed))
        self.passes.labels(peer, result.status).inc()
        self.logons.labels(peer).inc(result.logons)
        if result.status == "ok":
            self.last_success.labels(peer).set(now)
        self.count_pruned(peer, result.pruned)

    def record_services(self, found: ServicesNodes) -> None:
        """Show one check of where the services run."""
        self.services_nodes.set(found.count)
        if found.error is not None:
            self.services_running.clear()  # no node was asked: none is shown
        for answer in found.answers:
            if answer.error is None:
                self.services_running.labels(answer.node).set(1 if answer.running else 0)
            else:
                with suppress(KeyError):  # it never answered
                    self.services_running.remove(answer.node)
        if found.at is not None:
            self.services_checked.set(found.at)

    def record_fleet(self, report: FleetReport) -> None:
        """Show one fleet check: one series per item and node, none left from the last one."""
        self.fleet_check.clear()
        for (item, node), verdict in report.worst().items():
            self.fleet_check.labels(item, node).set(FLEET_VALUES[verdict])
        self.fleet_checked.set(report.at)

    def render(self) -> bytes:
        """The metrics in Prometheus text format."""
        return generate_latest(self.registry)


class _LagCollector(Collector):
    """Seconds since each peer's last successful pass, computed when scraped."""

    NAME = "jobsync_peer_lag_seconds"
    HELP = (
        "Seconds since the peer's last successful pass (since the agent started when none); "
        "matters on the active node"
    )

    def __init__(self, lags: Callable[[], Mapping[str, float]]) -> None:
        self._lags = lags

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(self.NAME, self.HELP, labels=["peer"])]

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=["peer"])
        for peer, lag in sorted(self._lags().items()):
            family.add_metric([peer], round(lag, 3))
        return [family]


class _FailoverCollector(Collector):
    """The last ``jobsync failover`` on this node: when, its exit code, each step's outcome."""

    def __init__(self, last: Callable[[], LastFailover | None]) -> None:
        self._last = last

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "jobsync_failover_last_timestamp_seconds",
                "When the last jobsync failover on this node ended (Unix time)",
            ),
            GaugeMetricFamily(
                "jobsync_failover_last_exit_code",
                "The exit code of the last jobsync failover on this node (0: moved and proven)",
            ),
            GaugeMetricFamily(
                "jobsync_failover_step_ok",
                "1 if the step of the last failover here held, 0 if it failed",
                labels=["step"],
            ),
            GaugeMetricFamily(
                "jobsync_failover_step_seconds",
                "How long the step of the last failover here took",
                labels=["step"],
            ),
        )

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        when, code, ok, seconds = families = self._families()
        last = self._last()
        if last is not None:
            when.add_metric([], last.finished)
            code.add_metric([], last.exit_code)
            for step in last.steps:
                ok.add_metric([step.step], 1 if step.ok else 0)
                seconds.add_metric([step.step], step.seconds)
        return families
