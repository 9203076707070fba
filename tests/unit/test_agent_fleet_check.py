"""The fleet check on the agent's schedule: when it runs, what it keeps, the metrics and the page.

The schedule runs here with a stand-in for ``jobsync check --fleet`` and a clock the test moves;
the check itself is tested in tests/unit/test_fleet_judge.py and tests/integration.
"""

from __future__ import annotations

import threading

import pytest
from structlog.testing import capture_logs

from jobsync.agent.fleet_watch import FleetWatch
from jobsync.agent.metrics import AgentMetrics
from jobsync.agent.page import render_page
from jobsync.agent.runner import Agent
from jobsync.agent.view import AgentView, FleetLast
from jobsync.config.load import load_config
from jobsync.errors import ConfigError
from jobsync.logs import Redactor
from jobsync.result import FleetLine, FleetReport

from support.cluster import Cluster
from support.page_text import page_text
from support.polling import wait_for

NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
HOUR = 3600.0
FIRST = 30.0

LINES = (
    FleetLine("configuration", "node2", "PASS", "2 files alike"),
    FleetLine("accounts", "node2", "PASS", "IntegrifyScheduler runs as CORP\\svc"),
    FleetLine(
        "accounts",
        "node2",
        "FAIL",
        "the pool <Integrify> runs as CORP\\web & logs on with hunter2-pw",
        "give the pool the services' account",
    ),
    FleetLine("sticky sessions", "balancer", "CANNOT CHECK", "no affinity cookie seen"),
)


def _report(*lines: FleetLine, at: float = NOW) -> FleetReport:
    return FleetReport(node="node1", lines=lines, at=at, seconds=2.5)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        """Start at ``now``."""
        self.now = now

    def __call__(self) -> float:
        """The time the test last set."""
        return self.now


class Runs:
    """A stand-in for run_fleet_check: counts its calls, answers with a report or raises."""

    def __init__(self, clock: Clock) -> None:
        """Note each call's time by ``clock``."""
        self.clock = clock
        self.at: list[float] = []
        self.fail: Exception | None = None

    def __call__(self) -> FleetReport:
        """One check: a report, or ``fail`` raised."""
        self.at.append(self.clock())
        if self.fail is not None:
            raise self.fail
        return _report(*LINES, at=NOW + len(self.at))


def test_the_check_runs_only_while_active_soon_after_it_becomes_so_then_every_interval() -> None:
    """Standby: never. Active: ``first_after`` s later, then every ``every_minutes``.

    Back to standby, the schedule stops; active again, the first run is again a little later.
    """
    clock, active = Clock(), threading.Event()
    runs = Runs(clock)
    watch = FleetWatch(
        60, runs, active=active.is_set, metrics=AgentMetrics(), clock=clock, first_after=FIRST
    )
    assert watch.tick() is None
    clock.now += 5 * HOUR
    assert watch.tick() is None
    assert runs.at == []

    active.set()
    start = clock.now
    assert watch.tick() == FIRST
    clock.now += FIRST - 1
    watch.tick()
    assert runs.at == []
    clock.now += 1
    assert watch.tick() == HOUR
    assert runs.at == [start + FIRST]
    assert watch.last.report is not None
    clock.now += HOUR - 1
    watch.tick()
    assert len(runs.at) == 1
    clock.now += 1
    watch.tick()
    assert runs.at == [start + FIRST, start + FIRST + HOUR]

    active.clear()
    clock.now += 3 * HOUR
    assert watch.tick() is None
    assert len(runs.at) == 2
    active.set()
    assert watch.tick() == FIRST  # not at once, though the interval has long passed
    clock.now += FIRST
    watch.tick()
    assert len(runs.at) == 3


def test_a_check_that_raises_is_kept_as_the_error_beside_the_last_report() -> None:
    """A JobsyncError is a warning and the last error; a bug is logged with its traceback.

    The report of the last check that ended stays, and so do its metrics; the schedule goes on,
    and the next check that ends clears the error.
    """
    clock = Clock()
    runs = Runs(clock)
    metrics = AgentMetrics()
    saved: list[FleetLast] = []
    watch = FleetWatch(
        60,
        runs,
        active=lambda: True,
        metrics=metrics,
        clock=clock,
        first_after=0,
        changed=lambda: saved.append(watch.last),
    )
    first = watch.check()
    assert (first.error, first.report) == (None, _report(*LINES, at=NOW + 1))

    runs.fail = ConfigError("jobsync.toml: [fleet_check]: no node reached over SMB")
    with capture_logs() as logs:
        second = watch.check()
        runs.fail = RuntimeError("boom")
        third = watch.check()
    assert second.error == "jobsync.toml: [fleet_check]: no node reached over SMB"
    assert second.report == first.report
    assert third.error == "the check failed: boom"
    assert third.report == first.report
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("fleet_check_failed", "warning"),
        ("fleet_check_failed", "error"),
    ]
    assert logs[0]["error"] == second.error
    assert _fleet_samples(metrics)["jobsync_fleet_check_timestamp_seconds"] == NOW + 1
    assert saved == [first, second, third]

    runs.fail = None
    watch.tick()  # active, and first_after is 0: due now
    assert len(runs.at) == 4
    assert watch.last.error is None
    assert watch.last.report == _report(*LINES, at=NOW + len(runs.at))


def test_the_schedule_runs_on_a_thread_of_its_own_until_stopped() -> None:
    """start() runs the first check on its own thread; wake() looks again; stop() ends it."""
    clock = Clock()
    runs = Runs(clock)
    changed = threading.Event()
    watch = FleetWatch(
        60,
        runs,
        active=lambda: True,
        metrics=AgentMetrics(),
        clock=clock,
        first_after=0,
        changed=changed.set,
    )
    watch.start()
    try:
        wait_for(lambda: len(runs.at) == 1, timeout=5, what="the first check")
        wait_for(changed.is_set, timeout=5, what="the state saved")
        clock.now += HOUR
        watch.wake()
        wait_for(lambda: len(runs.at) == 2, timeout=5, what="the check an hour later")
    finally:
        watch.stop()
    assert runs.at == [1000.0, 1000.0 + HOUR]


def _fleet_samples(metrics: AgentMetrics) -> dict[str, float]:
    lines = metrics.render().decode().splitlines()
    return {
        name: float(value)
        for line in lines
        if line.startswith("jobsync_fleet_check")
        for name, value in [line.rsplit(" ", 1)]
    }


def test_the_metrics_hold_the_worst_verdict_per_item_and_node_of_the_last_check() -> None:
    """1 PASS, 0 FAIL, -1 CANNOT CHECK, one series per item and node; a new check replaces all."""
    metrics = AgentMetrics()
    assert _fleet_samples(metrics) == {"jobsync_fleet_check_timestamp_seconds": 0.0}
    metrics.record_fleet(_report(*LINES))
    assert _fleet_samples(metrics) == {
        'jobsync_fleet_check{item="configuration",node="node2"}': 1.0,
        'jobsync_fleet_check{item="accounts",node="node2"}': 0.0,
        'jobsync_fleet_check{item="sticky sessions",node="balancer"}': -1.0,
        "jobsync_fleet_check_timestamp_seconds": NOW,
    }
    metrics.record_fleet(_report(LINES[0], at=NOW + HOUR))
    assert _fleet_samples(metrics) == {
        'jobsync_fleet_check{item="configuration",node="node2"}': 1.0,
        "jobsync_fleet_check_timestamp_seconds": NOW + HOUR,
    }


def _view() -> AgentView:
    return AgentView(
        node="node1",
        pid=1,
        running=True,
        started=NOW - 600,
        at=NOW + 60,
        role="active",
        role_reason=None,
        epoch=1,
        owner="node1",
        owner_epoch=1,
        source_folder="/jobs",
        source_files=0,
        source_error=None,
        peers=(),
    )


def test_the_page_lists_the_lines_that_did_not_pass_with_the_counts_and_the_time() -> None:
    """FAIL and CANNOT CHECK lines with their evidence, escaped and without secrets; no PASS."""
    redactor = Redactor()
    redactor.add(["hunter2-pw"])
    last = FleetLast(60, _report(*LINES), at=NOW)
    page = render_page(_view(), hide=redactor.text, max_lag=300, fleet=last).decode()
    assert "<h2>Fleet check</h2>" in page
    assert "1 FAIL, 1 CANNOT CHECK, 2 PASS" in page
    assert "(ended 2023-11-14 22:13:20 UTC, took 2.5 s)" in page
    assert "hunter2-pw" not in page
    assert "the pool &lt;Integrify&gt; runs as CORP\\web &amp; logs on with ***" in page
    assert "<td>accounts</td><td>node2</td>" in page
    assert "<td>sticky sessions</td><td>balancer</td>" in page
    assert "give the pool the services&#x27; account" in page
    assert "2 files alike" not in page  # a PASS line is counted, not listed
    assert 'class="problem"' not in page

    text = page_text(render_page(_view(), hide=str, max_lag=300, fleet=FleetLast(60)))
    assert "Fleet check Not run yet: the services node runs it every 60 min." in text
    broken = FleetLast(60, _report(*LINES[:2]), "no node reached over <SMB>", NOW + HOUR)
    page = render_page(_view(), hide=str, max_lag=300, fleet=broken).decode()
    assert (
        '<p class="problem">The fleet check could not run at 2023-11-14 23:13:20 UTC: '
        "no node reached over &lt;SMB&gt;</p>"
    ) in page
    assert "0 FAIL, 0 CANNOT CHECK, 2 PASS" in page  # the last check that ended
    assert "<th>Evidence</th>" not in page
    assert "Fleet check" not in render_page(_view(), hide=str, max_lag=300).decode()


@pytest.mark.parametrize(
    ("table", "scheduled"),
    [
        ("", False),
        ("[fleet_check]\ninstall = 'C:\\integrify'\nevery_minutes = 0\n", False),
        ("[fleet_check]\ninstall = 'C:\\integrify'\n", True),
    ],
    ids=["no [fleet_check]", "every_minutes = 0", "[fleet_check]"],
)
def test_the_agent_schedules_the_check_only_with_fleet_check_and_an_interval(
    local_cluster: Cluster, table: str, scheduled: bool
) -> None:
    """With ``[fleet_check]`` the page has its section and the state file its summary."""
    local_cluster.extra = table
    agent = Agent(load_config(local_cluster.config))
    text = page_text(agent.page())
    assert ("Fleet check Not run yet: the services node runs it every 60 min." in text) == scheduled
    summary = agent._state_extra()["fleet_check"]
    if scheduled:
        assert summary == {
            "checked": None,
            "fail": None,
            "cannot_check": None,
            "pass": None,
            "error": None,
        }
    else:
        assert summary is None
