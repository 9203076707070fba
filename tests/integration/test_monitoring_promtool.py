"""The alert rules and dashboard in docs/, checked by promtool: valid, and their tests pass."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
RULES = sorted((DOCS / "prometheus").glob("*.rules.yml"))
RULE_TESTS = sorted((DOCS / "prometheus").glob("*test*.yml"))
DASHBOARD = DOCS / "grafana" / "jobsync-dashboard.json"


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run promtool (Debian's prometheus package, installed by scripts/test.sh); never skip."""
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail(
            "promtool not found: scripts/test.sh installs Debian's prometheus", pytrace=False
        )
    return subprocess.run(
        [tool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_rules_are_valid_and_their_unit_tests_pass() -> None:
    """`promtool check rules` accepts the rules and `promtool test rules` passes every test."""
    assert RULES
    assert RULE_TESTS
    folder = DOCS / "prometheus"
    checked = _promtool("check", "rules", *(r.name for r in RULES), cwd=folder)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool("test", "rules", *(t.name for t in RULE_TESTS), cwd=folder)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """The dashboard is JSON and promtool accepts each of its queries (as a recording rule)."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    queries = [json.dumps(e.replace("$__rate_interval", "5m")) for e in exprs]
    rules = [f"      - record: dashboard:q{i}\n        expr: {q}" for i, q in enumerate(queries)]
    (tmp_path / "dashboard.rules.yml").write_text(
        "groups:\n  - name: dashboard\n    rules:\n" + "\n".join(rules) + "\n"
    )
    checked = _promtool("check", "rules", "dashboard.rules.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
