"""The alert rules and dashboard in docs/: each alert tested, only metrics the agent serves."""

from __future__ import annotations

import re
from pathlib import Path

from jobsync import __version__
from jobsync.agent.metrics import AgentMetrics
from jobsync.result import FleetLine, FleetReport

DOCS = Path(__file__).resolve().parents[2] / "docs"
RULES = sorted((DOCS / "prometheus").glob("*.rules.yml"))
RULE_TESTS = sorted((DOCS / "prometheus").glob("*test*.yml"))
DASHBOARD = DOCS / "grafana" / "jobsync-dashboard.json"


def _served_metrics() -> set[str]:
    """The sample names an agent's /metrics carries (with one peer, after one fleet check)."""
    metrics = AgentMetrics()
    metrics.add_peers(["node2"])
    metrics.watch_lag(lambda: {"node2": 1.0})
    metrics.last_success.labels("node2").set(1)
    metrics.pending.labels("node2").set(0)
    failed = FleetLine("accounts", "node2", "FAIL", "the pools run as another account")
    metrics.record_fleet(FleetReport(node="node1", lines=(failed,), at=1.0, seconds=1.0))
    text = metrics.render().decode()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}


def test_every_alert_has_a_test_where_it_fires_and_one_where_it_does_not() -> None:
    """Each alert in the rules is named in the tests once firing and once silent."""
    rules = "".join(r.read_text() for r in RULES)
    alerts = re.findall(r"^\s*- alert: (\w+)", rules, re.MULTILINE)
    tests = "".join(t.read_text() for t in RULE_TESTS)
    assert len(alerts) >= 8
    for alert in alerts:
        cases = re.findall(rf"alertname: {alert}\n\s*exp_alerts:(.*?)\n", tests)
        assert any(c.strip() == "[]" for c in cases), f"{alert}: no silent case"
        assert any(c.strip() == "" for c in cases), f"{alert}: no firing case"


def test_rules_and_dashboard_only_use_metrics_the_agent_serves() -> None:
    """Every jobsync_ metric named in the rules or the dashboard is one /metrics carries."""
    served = _served_metrics()
    used = set(re.findall(r"\bjobsync_\w+", "".join(r.read_text() for r in RULES)))
    used |= set(re.findall(r"\bjobsync_\w+", DASHBOARD.read_text()))
    assert "jobsync_peer_lag_seconds" in used
    assert "jobsync_epoch" in used
    assert used <= served, used - served


def test_the_build_info_metric_carries_the_version() -> None:
    """/metrics has ``jobsync_build_info{version="..."} 1``: dashboards see what each node runs."""
    text = AgentMetrics().render().decode()
    assert f'jobsync_build_info{{version="{__version__}"}} 1.0' in text.splitlines()
    assert "# TYPE jobsync_build_info gauge" in text
