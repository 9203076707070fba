"""The last failover run on a node, as the agent's status page and metrics show it."""

from __future__ import annotations

import time
from pathlib import Path

from jobsync.agent.metrics import AgentMetrics
from jobsync.agent.page import render_page
from jobsync.agent.view import AgentView
from jobsync.result import LAST_FAILOVER, FailoverResult, StepOutcome, read_last, record

from support.page_text import page_text

STEPS = (
    StepOutcome("fence", "done", "stopped the services on n1", seconds=0.05),
    StepOutcome("takeover", "done", "took over in epoch 2", seconds=0.5),
    StepOutcome("start", "failed", "n2: IntegrifyWorker did not reach RUNNING", seconds=20.0),
)


def _view() -> AgentView:
    now = time.time()
    return AgentView(
        node="n2",
        pid=1,
        running=True,
        started=now - 60,
        at=now,
        role="standby",
        role_reason="",
        epoch=2,
        owner="n2",
        owner_epoch=2,
        source_folder=r"C:\jobs",
        source_files=2,
        source_error=None,
        peers=(),
        events=(),
    )


def test_the_last_failover_is_kept_and_read_back(tmp_path: Path) -> None:
    """What the command records is what the agent reads; a damaged file is no failover."""
    record(tmp_path, FailoverResult(node="n2", steps=STEPS))
    last = read_last(tmp_path)
    assert last is not None
    assert last.exit_code == 12
    assert [(s.step, s.ok) for s in last.steps] == [
        ("fence", True),
        ("takeover", True),
        ("start", False),
    ]
    (tmp_path / LAST_FAILOVER).write_text("{not json")
    assert read_last(tmp_path) is None
    assert read_last(tmp_path / "missing") is None


def test_the_page_shows_the_last_failover_and_its_steps(tmp_path: Path) -> None:
    """A section with the outcome and every step; none without a failover."""
    record(tmp_path, FailoverResult(node="n2", steps=STEPS))
    page = page_text(render_page(_view(), hide=str, max_lag=300, failover=read_last(tmp_path)))
    assert "Last failover here stopped, exit 12" in page
    assert "start failed n2: IntegrifyWorker did not reach RUNNING 20.00" in page
    assert "Last failover here" not in page_text(render_page(_view(), hide=str, max_lag=300))


def test_the_metrics_show_the_last_failover_when_there_is_one(tmp_path: Path) -> None:
    """Its end, exit code and each step's outcome and time; only the help without one."""
    metrics = AgentMetrics()
    metrics.watch_failover(lambda: read_last(tmp_path))
    empty = metrics.render().decode()
    assert "# TYPE jobsync_failover_last_exit_code gauge" in empty
    assert "\njobsync_failover_last_exit_code " not in empty
    record(tmp_path, FailoverResult(node="n2", steps=STEPS))
    text = metrics.render().decode()
    assert "jobsync_failover_last_exit_code 12.0" in text
    assert 'jobsync_failover_step_ok{step="takeover"} 1.0' in text
    assert 'jobsync_failover_step_ok{step="start"} 0.0' in text
    assert 'jobsync_failover_step_seconds{step="start"} 20.0' in text
