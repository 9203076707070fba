"""What the agent watches across the fleet: where the services run, and the fleet check.

The services singleton guard: where Integrify's services run, asked and judged.

With ``[failover]`` configured, the agent asks every node's service manager (MS-SCMR), this
node included, the way ``jobsync failover`` does (:func:`~jobsync.failover.steps.fence_node`,
dry): concurrently, each call bounded by ``timeout_seconds``. It runs on a thread of its own,
so a node that hangs delays the next check, never a sync pass. The answer
(:class:`~jobsync.failover.steps.ServicesNodes`) goes to the metrics at once and to
``/healthz``, the page and the state file when they are read; a change of verdict is logged
as a warning and kept as an event.

The fleet check on a schedule: with ``[fleet_check]``, the agent runs ``jobsync check --fleet``
(:func:`~jobsync.fleet_check.run_fleet_check`) every ``every_minutes``, only while this node is
the services node, the first run shortly after it becomes so. It too runs on a thread of its
own; the last report (:class:`FleetLast`) goes to the metrics at once and to the page and the
state file when they are read. A check that cannot run (a broken ``[fleet_check]``) is kept as
the last error, beside the last report that did finish.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from jobsync.agent.view import EventKind, FleetLast
from jobsync.config.model import Config, FailoverConfig
from jobsync.errors import ConfigError, JobsyncError
from jobsync.failover.nodes import FleetNode, ServiceOpener, fleet_nodes, open_services
from jobsync.failover.steps import NodeAnswer, ServicesNodes, fence_node
from jobsync.jobs_folder import name_key
from jobsync.logs import get_logger
from jobsync.result import FleetReport
from jobsync.transport import each_peer

if TYPE_CHECKING:
    from jobsync.agent.metrics import AgentMetrics
    from jobsync.agent.view import EventRing

log = get_logger(__name__)

STOP_GRACE_SECONDS = 2.0  # a check still under way then is left to end on its own (daemon)

Asker = Callable[[], tuple[NodeAnswer, ...]]


def ask_nodes(
    nodes: tuple[FleetNode, ...],
    failover: FailoverConfig,
    *,
    timeout: float,
    opener: ServiceOpener = open_services,
) -> tuple[NodeAnswer, ...]:
    """Which configured services run on each node, every node at once; never raises for one."""

    def ask(node: FleetNode) -> NodeAnswer:
        seen = fence_node(node, failover, timeout=timeout, dry_run=True, opener=opener)
        if seen.error is None:
            return NodeAnswer(node.name, running=seen.running)
        alive = f"; yet {seen.alive}: it may still run them" if seen.alive else ""
        return NodeAnswer(node.name, error=seen.error + alive)

    return tuple(each_peer(nodes, ask, name="jobsync-singleton"))


class SingletonGuard:
    """Checks now and then that the services run on exactly one node; keeps the last answer."""

    def __init__(
        self,
        failover: FailoverConfig,
        ask: Asker,
        *,
        metrics: AgentMetrics,
        events: EventRing,
        changed: Callable[[], None] = lambda: None,
    ) -> None:
        """Check with ``ask`` every ``singleton_check_seconds``; ``changed`` on a new verdict."""
        self._services = failover.services
        self._interval = failover.singleton_check_seconds
        self._ask = ask
        self._metrics = metrics
        self._events = events
        self._changed = changed
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._last = ServicesNodes(failover.services)
        self._thread = threading.Thread(target=self._run, name="services-guard", daemon=True)

    @classmethod
    def for_config(
        cls,
        config: Config,
        *,
        metrics: AgentMetrics,
        events: EventRing,
        changed: Callable[[], None] = lambda: None,
    ) -> SingletonGuard | None:
        """The guard ``[failover]`` asks for; ``None`` without that table."""
        failover = config.failover
        if failover is None:
            return None
        try:
            nodes = _in_config_order(fleet_nodes(config), config)
        except ConfigError as exc:
            problem = str(exc)
        else:

            def ask() -> tuple[NodeAnswer, ...]:
                return ask_nodes(nodes, failover, timeout=config.timeout_seconds)

            return cls(failover, ask, metrics=metrics, events=events, changed=changed)
        # Not a reason to refuse the start: the agent syncs as before, the check says why not.
        log.error("services_check_impossible", reason=problem)

        def cannot() -> tuple[NodeAnswer, ...]:
            raise ConfigError(problem)

        return cls(failover, cannot, metrics=metrics, events=events, changed=changed)

    @property
    def last(self) -> ServicesNodes:
        """The last check's answer (``at`` is ``None`` before the first ends)."""
        with self._lock:
            return self._last

    def start(self) -> None:
        """Check at once, then every interval, until stopped."""
        self._thread.start()

    def stop(self) -> None:
        """Stop checking; waits a little for a check under way, never for a hung node."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(STOP_GRACE_SECONDS)

    def check(self) -> ServicesNodes:
        """Ask every node once (on the caller's thread) and keep the answer."""
        try:
            found = ServicesNodes(self._services, self._ask(), at=time.time())
        except ConfigError as exc:
            found = ServicesNodes(self._services, at=time.time(), error=str(exc))
        except Exception as exc:  # a bug must not end the guard: say so, try again later
            log.exception("services_check_failed")
            found = ServicesNodes(self._services, at=time.time(), error=f"the check failed: {exc}")
        self._metrics.record_services(found)
        with self._lock:
            before, self._last = self._last, found
        if _verdict_key(before) != _verdict_key(found):
            self._report(before, found)
        return found

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.check()
            self._stopping.wait(self._interval)

    def _report(self, before: ServicesNodes, found: ServicesNodes) -> None:
        """Log a new verdict (a warning unless all is well from the start) and keep an event."""
        fields = {
            "verdict": found.verdict,
            "nodes": list(found.running_on),
            "unknown": list(found.unknown),
            "was": before.verdict if before.at is not None else None,
        }
        if found.verdict == "one" and before.at is None:
            log.info("services_nodes_checked", **fields)
        else:
            log.warning("services_nodes_changed", **fields)
        kind: EventKind = "services" if found.verdict == "one" else "failure"
        self._events.add(kind, found.summary())
        if not self._stopping.is_set():
            self._changed()


def _in_config_order(nodes: tuple[FleetNode, ...], config: Config) -> tuple[FleetNode, ...]:
    """The nodes as the config lists them, so every node names them in one order."""
    place = {name_key(p.name): i for i, p in enumerate(config.peers)}
    return tuple(sorted(nodes, key=lambda n: place.get(name_key(n.name), -1)))


def _verdict_key(found: ServicesNodes) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """What a change is reported on: the verdict and the nodes it names."""
    if found.at is None:
        return ("not checked", (), ())
    return (found.verdict, found.running_on, found.unknown)


# After becoming active, so the first full push goes first (or one interval, if shorter).
FLEET_FIRST_SECONDS = 30.0
LONGEST_WAIT_SECONDS = 3600.0  # a longer interval is waited for in steps

FleetRun = Callable[[], FleetReport]


class FleetWatch:
    """Runs the fleet check every ``every_minutes`` while this node is active; keeps the last."""

    def __init__(
        self,
        every_minutes: float,
        run: FleetRun,
        *,
        active: Callable[[], bool],
        metrics: AgentMetrics,
        changed: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        first_after: float = FLEET_FIRST_SECONDS,
    ) -> None:
        """Run ``run`` while ``active()``: at ``first_after`` s, then every interval.

        ``first_after``: seconds from becoming active to the first run; ``clock`` keeps the
        schedule; ``changed`` is called after each run.
        """
        self._interval = every_minutes * 60.0
        self._run_check = run
        self._active = active
        self._metrics = metrics
        self._changed = changed
        self._clock = clock
        self._first_after = first_after
        self._due: float | None = None  # clock() of the next run; None while not active
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._last = FleetLast(every_minutes)
        self._thread = threading.Thread(target=self._loop, name="fleet-check", daemon=True)

    @classmethod
    def for_config(
        cls,
        config: Config,
        *,
        active: Callable[[], bool],
        metrics: AgentMetrics,
        changed: Callable[[], None] = lambda: None,
    ) -> FleetWatch | None:
        """The schedule ``[fleet_check]`` sets; ``None`` without it or with ``every_minutes = 0``.

        Each run is :func:`~jobsync.fleet_check.run_fleet_check` over ``config``.
        """
        check = config.fleet_check
        if check is None or check.every_minutes <= 0:
            return None

        def fleet_check() -> FleetReport:
            from jobsync.fleet_check import run_fleet_check  # noqa: PLC0415 - it imports this module

            return run_fleet_check(config)

        return cls(
            check.every_minutes,
            fleet_check,
            active=active,
            metrics=metrics,
            changed=changed,
            first_after=min(FLEET_FIRST_SECONDS, check.every_minutes * 60.0),
        )

    @property
    def last(self) -> FleetLast:
        """The last run's outcome (no report and no error before the first run ends)."""
        with self._lock:
            return self._last

    def start(self) -> None:
        """Follow the schedule on a thread of its own until stopped."""
        self._thread.start()

    def wake(self) -> None:
        """Look at the role and the schedule again now (the role changed)."""
        self._wake.set()

    def stop(self) -> None:
        """Stop; waits a little for a check under way, never for a node that hangs."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(STOP_GRACE_SECONDS)

    def tick(self) -> float | None:
        """Run the check if it is due (on the caller's thread); seconds to the next look.

        ``None`` while this node is not active: nothing is due until it becomes so, and then
        the first run comes ``first_after`` s later.
        """
        if not self._active():
            self._due = None
            return None
        now = self._clock()
        if self._due is None:
            self._due = now + self._first_after
        if now < self._due:
            return self._due - now
        self.check()
        self._due = now + self._interval  # every interval from the start of the last run
        return max(0.0, self._due - self._clock())

    def check(self) -> FleetLast:
        """Run the fleet check once (on the caller's thread) and keep what it gave."""
        with self._lock:
            before = self._last
        try:
            report = self._run_check()
        except JobsyncError as exc:
            log.warning("fleet_check_failed", error=str(exc))
            found = FleetLast(before.every_minutes, before.report, str(exc), time.time())
        except Exception as exc:  # a bug must not end the schedule: say so, try again later
            log.exception("fleet_check_failed")
            error = f"the check failed: {exc}"
            found = FleetLast(before.every_minutes, before.report, error, time.time())
        else:
            log.info(
                "fleet_checked",
                failed=report.count("FAIL"),
                cannot_check=report.count("CANNOT CHECK"),
                passed=report.count("PASS"),
                seconds=round(report.seconds, 3),
            )
            self._metrics.record_fleet(report)
            found = FleetLast(before.every_minutes, report, None, report.at)
        with self._lock:
            self._last = found
        if not self._stopping.is_set():
            self._changed()
        return found

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()  # a wake from now on ends the wait below at once
            delay = self.tick()
            if self._stopping.is_set():
                break
            self._wake.wait(None if delay is None else min(delay, LONGEST_WAIT_SECONDS))
