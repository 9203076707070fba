"""The health verdict, from plain views: what ``/healthz`` and the status page conclude.

Own failures fail the node; peers behind only degrade an active node. (The agent answering
over real HTTP is tested in tests/integration/test_agent_health.py.)
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from jobsync.agent.health import health_of, verdict_of
from jobsync.agent.view import AgentView, PeerView

NOW = 1_800_000_000.0


def _view(role: str = "active", *peers: PeerView, **changes: object) -> AgentView:
    view = AgentView(
        node="node1",
        pid=1,
        running=True,
        started=NOW - 3600,
        at=NOW,
        role=role,
        role_reason=None,
        epoch=1,
        owner="node1",
        owner_epoch=1,
        source_folder="/jobs",
        source_files=3,
        source_error=None,
        peers=peers or (_fine("node2"), _fine("node3")),
    )
    return replace(view, **changes)  # type: ignore[arg-type]


def _fine(name: str) -> PeerView:
    return PeerView(name=name, location=name, last_success=NOW - 5, last_attempt=NOW - 5)


def _failing(name: str, *, since: float) -> PeerView:
    return PeerView(
        name=name,
        location=name,
        last_success=NOW - since,
        last_attempt=NOW - 1,
        last_error=f"peer {name}: cannot connect",
        pending=2,
    )


FENCE = "node2 took over at epoch 2; this node is at epoch 1: nothing was changed"
CASES: list[tuple[str, AgentView, str, str, str]] = [
    (
        "all in line",
        _view(),
        "ok",
        "ACTIVE",
        "Nothing to do: every peer is up to date.",
    ),
    (
        "a peer failing, within max_lag",
        _view("active", _fine("node2"), _failing("node3", since=30)),
        "degraded",
        "ACTIVE - 1 peer failing",
        "node3's last pass failed (the agent retries): see its last error below.",
    ),
    (
        "a peer failing for 12 min, another for 1 min",
        _view("active", _failing("node2", since=60), _failing("node3", since=725)),
        "degraded",
        "ACTIVE - 2 peers failing",
        (
            "node3 has had no successful pass for 12 min: see its last error below; "
            "1 more peer is behind too."
        ),
    ),
    (
        "a peer without success for 10 min but no failed pass",
        _view("active", _fine("node2"), replace(_fine("node3"), last_success=NOW - 600, pending=1)),
        "degraded",
        "ACTIVE - 1 peer behind",
        (
            "node3 has had no successful pass for 10 min but none failed: look in the log for "
            "a pass that hangs."
        ),
    ),
    (
        "an idle peer, last checked 10 min ago, nothing pending",
        _view("active", _fine("node2"), replace(_fine("node3"), last_success=NOW - 600)),
        "ok",
        "ACTIVE",
        "Nothing to do: every peer is up to date.",
    ),
    (
        "standby, its peers failing for hours",
        _view("standby", _failing("node2", since=9000), _failing("node3", since=9000)),
        "ok",
        "STANDBY",
        "Nothing to do here: the services node pushes.",
    ),
    (
        "standby, fenced (the usual state of a former services node)",
        _view("standby", fenced=FENCE),
        "ok",
        "STANDBY",
        "Nothing to do here: the services node pushes.",
    ),
    (
        "active but fenced",
        _view("active", fenced=FENCE),
        "failing",
        "ACTIVE - fenced by a newer owner",
        (
            "Another node owns the jobs, so this one pushes nothing: make sure the Integrify "
            "services run on that node, or run jobsync takeover here."
        ),
    ),
    (
        "a worker stopped",
        _view("active", stalled=("node2",)),
        "failing",
        "ACTIVE - a worker stopped",
        (
            "The worker for node2 stopped; the agent starts it again within seconds: if it keeps "
            "stopping, look for worker_restarted in the log."
        ),
    ),
    (
        "stopping, with its source gone",
        _view("standby", running=False, source_error="source folder /jobs does not exist"),
        "failing",
        "STANDBY - failing",
        "The agent is stopping: if it does not start again, start the jobsync service.",
    ),
]


@pytest.mark.parametrize(
    ("view", "status", "headline", "step"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_verdict(view: AgentView, status: str, headline: str, step: str) -> None:
    """Own failures fail the node; peers behind only degrade an active node.

    The page's headline and next step follow, and ``/healthz`` reports the same.
    """
    verdict = verdict_of(view, max_lag=300)
    assert (verdict.status, verdict.headline, verdict.next_step) == (status, headline, step)
    healthy, body = health_of(view, max_lag=300)
    assert healthy == (status != "failing")
    assert body["status"] == status
    assert body["next_step"] == step
    assert len(body["reasons"]) == len(verdict.problems)  # type: ignore[arg-type]


def test_healthz_hides_secrets_in_errors() -> None:
    """A secret in a peer's error is replaced in /healthz as it is on the page."""
    failing = replace(_failing("node3", since=30), last_error="logon refused for hunter2-pw")

    def hide(text: str) -> str:
        return text.replace("hunter2-pw", "***")

    _, body = health_of(_view("active", failing), max_lag=300, hide=hide)
    assert "hunter2-pw" not in json.dumps(body)
    assert body["peers_lagging"] == [
        {
            "peer": "node3",
            "reason": "its last pass failed",
            "seconds_since_success": 30.0,
            "last_error": "logon refused for ***",
        }
    ]
