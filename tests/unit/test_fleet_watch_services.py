"""The services singleton guard's pure parts: the verdict, /healthz, the page, metrics, the log.

The guard itself runs here with a stand-in for the nodes' service managers; the same checks
against real smbd nodes are in tests/integration/test_services_guard_nodes.py.
"""

from __future__ import annotations

import threading

import pytest
from structlog.testing import capture_logs

from jobsync.agent.fleet_watch import SingletonGuard
from jobsync.agent.health import health_of, verdict_of
from jobsync.agent.metrics import AgentMetrics
from jobsync.agent.page import render_page
from jobsync.agent.view import AgentView, EventRing, PeerView
from jobsync.config.model import FailoverConfig
from jobsync.errors import ConfigError
from jobsync.failover.steps import NodeAnswer, ServicesNodes

from support.polling import wait_for

NOW = 1_700_000_000.0
SERVICES = ("IntegrifyScheduler", "IntegrifyWeb")
DOWN = "peer n3: cannot connect to 10.0.0.3:445"


def _found(*answers: NodeAnswer, error: str | None = None) -> ServicesNodes:
    return ServicesNodes(SERVICES, answers, at=NOW, error=error)


def _runs(node: str, *services: str) -> NodeAnswer:
    return NodeAnswer(node, running=services)


def _down(node: str) -> NodeAnswer:
    return NodeAnswer(node, error=DOWN)


WEB = "IntegrifyWeb"
NO_SMB = "failover needs every node reached over SMB"
VERDICTS = [
    ("one node", _found(_runs("n1", *SERVICES), _runs("n2"), _runs("n3")), "one", 1),
    ("part of the services count", _found(_runs("n1"), _runs("n2", WEB)), "one", 1),
    ("two nodes", _found(_runs("n1", *SERVICES), _runs("n2", WEB)), "several", 2),
    ("no node", _found(_runs("n1"), _runs("n2"), _runs("n3")), "none", 0),
    ("one seen, one unasked", _found(_runs("n1", WEB), _runs("n2"), _down("n3")), "unknown", -1),
    ("none seen, one unasked", _found(_runs("n1"), _runs("n2"), _down("n3")), "unknown", -1),
    (
        "two seen, one unasked",
        _found(_runs("n1", WEB), _runs("n2", WEB), _down("n3")),
        "several",
        2,
    ),
    ("no check yet", ServicesNodes(SERVICES), "unknown", -1),
    ("the check could not run", _found(error=NO_SMB), "unknown", -1),
]


@pytest.mark.parametrize(
    ("found", "verdict", "metric"), [c[1:] for c in VERDICTS], ids=[c[0] for c in VERDICTS]
)
def test_the_services_verdict(found: ServicesNodes, verdict: str, metric: int) -> None:
    """One node or none needs every node's answer; two seen are too many whatever the rest.

    A node that could not be asked is never taken for a node where nothing runs.
    """
    assert found.verdict == verdict
    assert found.count == metric
    assert found.wrong == (verdict in ("none", "several"))


def _view(role: str = "standby", *peers: PeerView) -> AgentView:
    return AgentView(
        node="n1",
        pid=1,
        running=True,
        started=NOW - 600,
        at=NOW,
        role=role,
        role_reason=None,
        epoch=1,
        owner="n1",
        owner_epoch=1,
        source_folder="/jobs",
        source_files=0,
        source_error=None,
        peers=peers,
    )


def test_services_on_two_nodes_degrade_healthz_without_failing_it() -> None:
    """Services on two nodes: "degraded" (200) on every node, standby too, naming both.

    The headline and the next step say so before anything about peers; 503 stays for this
    node's own failures.
    """
    found = _found(_runs("n1", *SERVICES), _runs("n2"), _runs("n3", "IntegrifyWeb"))
    verdict = verdict_of(_view(), max_lag=300, services=found)
    assert (verdict.status, verdict.headline) == ("degraded", "STANDBY - services on 2 nodes")
    assert verdict.next_step.startswith("Integrify's services run on n1 and n3 at once")
    healthy, body = health_of(_view(), max_lag=300, services=found)
    assert healthy
    assert body["status"] == "degraded"
    assert body["reasons"] == []
    assert body["services_nodes"] == {
        "verdict": "several",
        "count": 2,
        "nodes": ["n1", "n3"],
        "unknown": [],
        "errors": {},
        "services": list(SERVICES),
        "checked": "2023-11-14T22:13:20+00:00",
        "error": None,
    }


def test_services_on_no_node_degrade_and_unknown_does_not() -> None:
    """No node: degraded. A node that could not be asked: reported, but nothing is wrong yet."""
    none = _found(_runs("n1"), _runs("n2"))
    verdict = verdict_of(_view("active"), max_lag=300, services=none)
    assert (verdict.status, verdict.headline) == ("degraded", "ACTIVE - services on no node")

    unknown = _found(_runs("n1", *SERVICES), _runs("n2"), _down("n3"))
    healthy, body = health_of(_view(), max_lag=300, services=unknown, hide=lambda t: t[:6])
    assert healthy
    assert body["status"] == "ok"
    assert body["services_nodes"]["verdict"] == "unknown"  # type: ignore[index]
    assert body["services_nodes"]["nodes"] == ["n1"]  # type: ignore[index]
    assert body["services_nodes"]["unknown"] == ["n3"]  # type: ignore[index]
    assert body["services_nodes"]["errors"] == {"n3": "peer n"}  # type: ignore[index]

    _, without = health_of(_view(), max_lag=300)
    assert without["services_nodes"] is None  # no [failover]: nothing checked


def test_the_page_names_the_nodes_and_says_when_it_is_wrong() -> None:
    """The page lists each node's running services; a wrong count is a line under the header."""
    found = _found(_runs("n1", *SERVICES), _runs("n2", "IntegrifyWeb"), _down("n3"))
    page = render_page(_view(), hide=lambda t: t, max_lag=300, services=found).decode()
    assert '<span class="badge warn">STANDBY - services on 2 nodes</span>' in page
    assert '<p class="problem">Integrify&#x27;s services run on 2 nodes: n1 and n2</p>' in page
    assert "<h2>Integrify services</h2>" in page
    assert "<tr><td>n1</td><td>IntegrifyScheduler, IntegrifyWeb</td></tr>" in page
    assert "could not be asked: peer n3: cannot connect" in page

    fine = _found(_runs("n1", *SERVICES), _runs("n2"))
    page = render_page(_view(), hide=lambda t: t, max_lag=300, services=fine).decode()
    assert 'class="problem"' not in page
    assert "<tr><td>n2</td><td>none</td></tr>" in page
    assert "Integrify services" not in render_page(_view(), hide=str, max_lag=300).decode()


def _samples(metrics: AgentMetrics) -> dict[str, float]:
    lines = metrics.render().decode().splitlines()
    return {
        name: float(value)
        for line in lines
        if line.startswith("jobsync_services")
        for name, value in [line.rsplit(" ", 1)]
    }


def test_the_metrics_follow_each_check() -> None:
    """-1 until a check can tell; one series per node that answered, none for one that did not."""
    metrics = AgentMetrics()
    assert _samples(metrics) == {
        "jobsync_services_nodes": -1.0,
        "jobsync_services_check_timestamp_seconds": 0.0,
    }
    metrics.record_services(
        _found(_runs("n1", *SERVICES), _runs("n2"), _runs("n3", "IntegrifyWeb"))
    )
    assert _samples(metrics) == {
        "jobsync_services_nodes": 2.0,
        'jobsync_services_running{node="n1"}': 1.0,
        'jobsync_services_running{node="n2"}': 0.0,
        'jobsync_services_running{node="n3"}': 1.0,
        "jobsync_services_check_timestamp_seconds": NOW,
    }
    metrics.record_services(_found(_runs("n1", *SERVICES), _runs("n2"), _down("n3")))
    samples = _samples(metrics)
    assert samples["jobsync_services_nodes"] == -1.0
    assert 'jobsync_services_running{node="n3"}' not in samples
    assert samples['jobsync_services_running{node="n1"}'] == 1.0


FAILOVER = FailoverConfig(services=SERVICES, repoint="none", singleton_check_seconds=0.05)


def test_the_guard_logs_a_warning_and_an_event_when_the_verdict_changes() -> None:
    """Checks repeat on the guard's thread; only a change of verdict is logged and kept."""
    answers = [(_runs("n1", *SERVICES), _runs("n2"))]
    asked = threading.Semaphore(0)
    changed = threading.Event()

    def ask() -> tuple[NodeAnswer, ...]:
        asked.release()
        return answers[-1]

    events = EventRing()
    guard = SingletonGuard(
        FAILOVER, ask, metrics=AgentMetrics(), events=events, changed=changed.set
    )
    with capture_logs() as logs:
        guard.start()
        try:
            wait_for(lambda: guard.last.verdict == "one", timeout=5, what="the first check")
            for _ in range(3):
                wait_for(lambda: asked.acquire(timeout=0), timeout=5, what="another check")
            answers.append((_runs("n1", *SERVICES), _runs("n2", "IntegrifyWeb")))
            wait_for(lambda: guard.last.verdict == "several", timeout=5, what="the change")
            wait_for(changed.is_set, timeout=5, what="the state saved")
        finally:
            guard.stop()
    services = [e for e in logs if e["event"].startswith("services_")]
    assert [(e["event"], e["log_level"], e["verdict"]) for e in services] == [
        ("services_nodes_checked", "info", "one"),
        ("services_nodes_changed", "warning", "several"),
    ]
    assert services[1]["nodes"] == ["n1", "n2"]
    assert services[1]["was"] == "one"
    assert [(e.kind, e.text) for e in events.recent()] == [
        ("failure", "Integrify's services run on 2 nodes: n1 and n2"),
        ("services", "Integrify's services run on n1 only"),
    ]


def test_a_check_that_raises_leaves_the_guard_running_and_says_why() -> None:
    """A config the check cannot use, or a bug, is "unknown" with the reason; checks go on."""
    calls: list[int] = []

    def ask() -> tuple[NodeAnswer, ...]:
        calls.append(1)
        if len(calls) == 1:
            raise ConfigError("failover needs every node reached over SMB")
        raise RuntimeError("boom")

    guard = SingletonGuard(FAILOVER, ask, metrics=AgentMetrics(), events=EventRing())
    first = guard.check()
    assert (first.verdict, first.error) == (
        "unknown",
        "failover needs every node reached over SMB",
    )
    with capture_logs() as logs:
        second = guard.check()
    assert second.error == "the check failed: boom"
    assert [e["event"] for e in logs] == ["services_check_failed"]
