"""The services singleton guard against three real nodes: Samba's Spooler over MS-SCMR.

The fleet (tests/support/failover_bed.py) gives each node an smbd whose ``Spooler`` stands in for
Integrify's services. The agent under test runs on n2, on standby (so no pass of its own can
degrade it), checking every half second; each case sets the Spooler's state on the nodes
first, then reads the agent's ``/healthz``, ``/metrics``, page and state file. Samba resets
the Spooler to RUNNING about 60 s after the last call to a node: the agent's own checks keep
every node busy, and each case ends well within that window anyway.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
from structlog.testing import capture_logs

from jobsync.agent.runner import Agent
from jobsync.agent.view import read_state, state_path, view_from_document
from jobsync.config.load import load_config
from jobsync.render import status_to_text
from jobsync.role import RoleDetector

from support.failover_bed import FailoverNode, Fleet, make_fleet, set_spooler, stop_fleet
from support.polling import wait_for
from support.ports import free_port
from support.smbd import DEFAULT_PASSWORD, PASSWORD_ENV, SambaPeer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.smb

CHECK_SECONDS = 0.5
DEADLINE = 30.0


@pytest.fixture
def fleet(
    tmp_path: Path, smb_peer_factory: Callable[..., SambaPeer], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Fleet]:
    """Three nodes, each Spooler as Samba starts it (running)."""
    monkeypatch.setenv(PASSWORD_ENV, DEFAULT_PASSWORD)
    nodes = make_fleet(tmp_path, smb_peer_factory)
    try:
        yield nodes
    finally:
        stop_fleet(nodes)


def spoolers(fleet: Fleet, *running: str) -> None:
    """The Spooler runs on the ``running`` nodes and is stopped on every other."""
    for node in fleet.values():
        set_spooler(node, running=node.name in running)


class Watched:
    """The agent under test, read as monitoring reads it: over HTTP."""

    def __init__(self, agent: Agent, port: int) -> None:
        """``agent``, serving on 127.0.0.1:``port``."""
        self.agent = agent
        self.port = port

    def get(self, path: str) -> tuple[int, bytes]:
        """GET ``path``: the status and the body."""
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def healthz(self) -> tuple[int, dict[str, Any]]:
        """/healthz: its status code and its document."""
        code, body = self.get("/healthz")
        return code, json.loads(body)

    def settled(self, verdict: str) -> dict[str, Any]:
        """``services_nodes`` once it says ``verdict``."""

        def check() -> dict[str, Any] | None:
            found: dict[str, Any] = self.healthz()[1]["services_nodes"]
            return found if found["verdict"] == verdict else None

        return wait_for(check, timeout=DEADLINE, what=f"services_nodes to say {verdict}")

    def metrics(self) -> dict[str, float]:
        """The ``jobsync_services_*`` samples /metrics serves."""
        text = self.get("/metrics")[1].decode()
        return {
            name: float(value)
            for line in text.splitlines()
            if line.startswith("jobsync_services_")
            for name, value in [line.rsplit(" ", 1)]
        }


@contextmanager
def guarding(node: FailoverNode) -> Iterator[Watched]:
    """``node``'s agent on standby, with [health] and a check every ``CHECK_SECONDS``."""
    port = free_port()
    text = node.config.read_text().replace(
        "[failover]\n", f"[failover]\nsingleton_check_seconds = {CHECK_SECONDS}\n", 1
    )
    text += f'\n[health]\nlisten = "127.0.0.1:{port}"\n'
    text += '[active]\nmode = "dns"\nservices_host = "services"\n'
    node.config.write_text(text)
    loaded = load_config(node.config)
    detector = RoleDetector(
        loaded.active, resolver=lambda _host: {"10.0.0.1"}, addresses=lambda: {"10.0.0.2"}
    )
    agent = Agent(loaded, detector=detector)
    thread = threading.Thread(target=agent.run, name="agent-under-test")
    thread.start()
    try:
        watched = Watched(agent, port)
        wait_for(lambda: _answers(watched), timeout=DEADLINE, what="the health server")
        yield watched
    finally:
        agent.stop()
        thread.join(timeout=20)
    assert not thread.is_alive()


def _answers(watched: Watched) -> bool:
    try:
        return watched.get("/livez")[0] == 200
    except OSError:
        return False


def test_one_node_then_a_second_one_is_several_and_degrades_every_node(fleet: Fleet) -> None:
    """The Spooler on n1 only: "one", all well. Started on n3 too: "several", naming both.

    /healthz stays 200 but "degraded" (the fleet's problem, not this standby's own), the
    metric says 2, the page has the line, the state file the verdict, and the change is
    logged once as a warning.
    """
    spoolers(fleet, "n1")
    with guarding(fleet["n2"]) as watched:
        one = watched.settled("one")
        assert (one["nodes"], one["count"], one["unknown"]) == (["n1"], 1, [])
        code, body = watched.healthz()
        assert (code, body["status"]) == (200, "ok")
        samples = watched.metrics()
        assert samples["jobsync_services_nodes"] == 1
        assert samples['jobsync_services_running{node="n1"}'] == 1
        assert samples['jobsync_services_running{node="n2"}'] == 0
        assert samples['jobsync_services_running{node="n3"}'] == 0
        assert samples["jobsync_services_check_timestamp_seconds"] > 0
        assert "Integrify&#x27;s services run on n1 only" in watched.get("/")[1].decode()

        with capture_logs() as logs:
            set_spooler(fleet["n3"], running=True)
            several = watched.settled("several")
        assert (several["nodes"], several["count"]) == (["n1", "n3"], 2)
        code, body = watched.healthz()
        assert (code, body["status"], body["reasons"]) == (200, "degraded", [])
        assert body["next_step"].startswith("Integrify's services run on n1 and n3 at once")
        assert watched.metrics()["jobsync_services_nodes"] == 2
        page = watched.get("/")[1].decode()
        assert '<span class="badge warn">STANDBY - services on 2 nodes</span>' in page
        assert '<p class="problem">Integrify&#x27;s services run on 2 nodes: n1 and n3</p>' in page

        def saved() -> bool:
            state = read_state(state_path(watched.agent.config.state_dir)) or {}
            return (state.get("services_nodes") or {}).get("verdict") == "several"

        wait_for(saved, timeout=DEADLINE, what="the state file to carry the verdict")
        state = read_state(state_path(watched.agent.config.state_dir))
        status = status_to_text(view_from_document(state), where="", alive=True)
        assert "Integrify services: PROBLEM: several: running on n1, n3" in status
    changes = [e for e in logs if e["event"] == "services_nodes_changed"]
    assert [(e["log_level"], e["verdict"], e["nodes"], e["was"]) for e in changes] == [
        ("warning", "several", ["n1", "n3"], "one")
    ]


def test_no_node_running_the_services_is_none(fleet: Fleet) -> None:
    """The Spooler stopped everywhere: "none", /healthz 200 "degraded", every node at 0."""
    spoolers(fleet)
    with guarding(fleet["n2"]) as watched:
        none = watched.settled("none")
        assert (none["nodes"], none["count"], none["unknown"]) == ([], 0, [])
        code, body = watched.healthz()
        assert (code, body["status"]) == (200, "degraded")
        samples = watched.metrics()
        assert samples["jobsync_services_nodes"] == 0
        for name in fleet:
            assert samples[f'jobsync_services_running{{node="{name}"}}'] == 0
        assert "STANDBY - services on no node" in watched.get("/")[1].decode()


def test_a_node_that_cannot_be_asked_is_unknown_not_stopped(fleet: Fleet) -> None:
    """n3's smbd stopped: "unknown" for it, the count says what was seen, nothing degraded.

    Its healthcheck still answering is named (it may still run the services). Two nodes seen
    running are "several" all the same: the unknown node cannot make that right.
    """
    spoolers(fleet, "n1")
    fleet["n3"].samba.stop()
    with guarding(fleet["n2"]) as watched:

        def asked() -> dict[str, Any] | None:
            found: dict[str, Any] = watched.healthz()[1]["services_nodes"]
            return found if found["checked"] else None

        unknown = wait_for(asked, timeout=DEADLINE, what="a finished check")
        assert (unknown["nodes"], unknown["count"], unknown["unknown"]) == (["n1"], 1, ["n3"])
        assert "may still run them" in unknown["errors"]["n3"]
        code, body = watched.healthz()
        assert (code, body["status"]) == (200, "ok")
        samples = watched.metrics()
        assert samples["jobsync_services_nodes"] == -1
        assert samples['jobsync_services_running{node="n1"}'] == 1
        assert 'jobsync_services_running{node="n3"}' not in samples
        assert "could not be asked" in watched.get("/")[1].decode()

        set_spooler(fleet["n2"], running=True)
        several = watched.settled("several")
        assert (several["nodes"], several["unknown"]) == (["n1", "n2"], ["n3"])
        assert watched.metrics()["jobsync_services_nodes"] == 2
