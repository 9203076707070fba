"""The status page at ``GET /``: what an operator sees, rendered in this process."""

from __future__ import annotations

import threading
import time

from jobsync import __version__
from jobsync.agent.page import render_page
from jobsync.agent.runner import Agent
from jobsync.agent.view import AgentView, EventRing, PeerView
from jobsync.config.load import load_config
from jobsync.logs import Redactor
from jobsync.role import RoleDetector

from support.cluster import Cluster
from support.page_text import page_text
from support.polling import wait_for


def test_the_page_before_the_agent_has_any_state(local_cluster: Cluster) -> None:
    """Before the first role check and pass, the page says starting and no pass yet."""
    local_cluster.write_job("a.jobs", b"a")
    agent = Agent(load_config(local_cluster.config))
    text = page_text(agent.page())
    assert "jobsync on node1 STARTING" in text
    assert text.count("no pass yet") == 2
    assert "never" in text
    assert "Nothing yet." in text
    assert "no owner recorded yet (jobsync init on the services node claims the jobs)" in text


def test_the_page_with_a_failing_peer_hides_secrets_and_merges_repeats() -> None:
    """A failing peer shows its error in words, with any secret in it hidden.

    A failure repeated while other events happen stays one event with its count.
    """
    now = time.time()
    events = EventRing()
    for _ in range(3):
        events.add("failure", "pass failed: logon refused for hunter2-pw", peer="node3", at=now)
        events.add("pass", "copied 1 job (a.jobs)", peer="node2", at=now)
    peers = (
        PeerView(name="node2", location=r"\\node2\jobs", last_success=now - 5, last_attempt=now),
        PeerView(
            name="node3",
            location=r"\\node3\jobs",
            last_attempt=now - 1,
            last_error="peer node3: logon refused for hunter2-pw",
            pending=4,
        ),
    )
    view = AgentView(
        node="node1",
        pid=1,
        running=True,
        started=now - 7200,
        at=now,
        role="active",
        role_reason="integrify-services resolves to 10.0.0.1 here",
        epoch=3,
        owner="node1",
        owner_epoch=3,
        source_folder=r"C:\jobs",
        source_files=42,
        source_error=None,
        peers=peers,
        events=events.recent(),
    )
    redactor = Redactor()
    redactor.add(["hunter2-pw"])
    page = render_page(view, hide=redactor.text, max_lag=300)
    text = page_text(page)

    assert b"hunter2-pw" not in page
    assert "peer node3: logon refused for ***" in text
    assert "failing" in text
    assert "up to date" in text
    assert "5 s ago" in text
    assert "3 · jobs owned by node1 (epoch 3)" in text
    assert "42 jobs in C:\\jobs" in text
    assert "2 h 0 min ago" in text
    assert len(events.recent()) == 2
    assert "(\N{MULTIPLICATION SIGN}3 since" in text
    assert (
        "jobsync on node1 ACTIVE - 1 peer failing "
        f"jobsync {__version__} "
        "node3 has had no successful pass for 2 h 0 min: see its last error below."
    ) in text
    assert '<span class="badge warn">' in page.decode()


def test_role_changes_restarts_and_rescans_become_events(local_cluster: Cluster) -> None:
    """A role change, a restarted watcher and the rescan it asks for show on the page."""
    local_cluster.extra = (
        "[watch]\ndebounce_ms = 50\n"
        '[active]\nmode = "dns"\nservices_host = "services"\ncheck_seconds = 0.1\n'
        "confirmations = 1\n"
    )
    config = load_config(local_cluster.config)
    points_here = threading.Event()
    points_here.set()

    def resolve(_host: str) -> set[str]:
        return {"10.0.0.1" if points_here.is_set() else "10.0.0.2"}

    detector = RoleDetector(config.active, resolver=resolve, addresses=lambda: {"10.0.0.1"})
    agent = Agent(config, detector=detector)
    runner = threading.Thread(target=agent.run, name="agent-under-test")
    runner.start()
    try:
        wait_for(lambda: agent._feed._watcher.alive, what="agent start")
        points_here.clear()
        wait_for(lambda: not agent.active, what="the move to standby")
        agent._feed._watcher._observer.stop()  # type: ignore[union-attr] # the observer dies
        wait_for(lambda: agent.metrics.watcher_restarts._value.get() == 1, what="restart")
        wait_for(lambda: "rescanned" in page_text(agent.page()), what="the rescan")
        text = page_text(agent.page())
    finally:
        agent.stop()
        runner.join(timeout=15)
    assert "became standby: services resolves to 10.0.0.2, not here" in text
    assert "the folder watcher had stopped and was restarted" in text
    assert "rescanned the source (watcher restarted): found no change" in text
    assert "agent started, active (services resolves to 10.0.0.1 here), 0 jobs" in text
