"""The jobsync agent on the node taking over: set aside for the move, and started again.

Every installed node runs the agent, which holds the node's work lock for as long as it runs.
The failover stops the agent's Windows service through the service manager it already uses,
takes the lock, and starts the agent again when it is done. Here the agent is a real
``jobsync watch`` process holding the real lock; only its Windows service is played by the
test (Samba's service manager has no such service): stopping it ends the process, starting it
runs a new one.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from jobsync.config.load import load_config
from jobsync.errors import ExitCode, SafetyRefusalError
from jobsync.failover.nodes import FleetNode, NodeServices, agent_set_aside, open_services
from jobsync.failover.run import prepare, run
from jobsync.node import WorkLock

from support.failover_bed import FailoverNode, make_fleet, set_spooler, spooler, stop_fleet
from support.polling import wait_for
from support.smbd import DEFAULT_PASSWORD, PASSWORD_ENV, SambaPeer

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.smb

ACTIVE = '[active]\nmode = "dns"\nservices_host = "203.0.113.50"\ncheck_seconds = 0.2\n'


class AgentService:
    """The ``jobsync`` Windows service of one node, played by starting and ending its process."""

    def __init__(self, node: FailoverNode) -> None:
        """Not running yet."""
        self.node = node
        self.proc: subprocess.Popen[str] | None = None
        self.starts = 0

    def start(self) -> None:
        """Run ``jobsync watch`` and wait until it holds the work lock."""
        self.proc = self.node.start("watch")
        self.starts += 1
        lock = WorkLock(self.node.home / "state", who="probe")
        wait_for(lambda: "agent" in lock.holder(), what="the agent to hold the lock")

    def stop(self) -> None:
        """End it as the service manager does."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)

    @property
    def state(self) -> str:
        """As the service manager would say."""
        return "running" if self.proc is not None and self.proc.poll() is None else "stopped"


class WithAgent:
    """The node's real service manager, and the agent's service beside it."""

    def __init__(self, real: NodeServices, agent: AgentService) -> None:
        """Answer for ``jobsync`` here, pass everything else to ``real``."""
        self._real = real
        self._agent = agent

    def state(self, service: str) -> str | None:
        """The agent's state, or the real service's."""
        return self._agent.state if service == "jobsync" else self._real.state(service)

    def stop(self, service: str, *, within: float) -> bool:
        """Stop the agent, or the real service."""
        if service != "jobsync":
            return self._real.stop(service, within=within)
        was = self._agent.state == "running"
        self._agent.stop()
        return was

    def start(self, service: str, *, within: float) -> bool:
        """Start the agent, or the real service."""
        if service != "jobsync":
            return self._real.start(service, within=within)
        self._agent.start()
        return True

    def __getattr__(self, name: str) -> object:
        """Everything else is the real manager's."""
        return getattr(self._real, name)


def _opener(agent: AgentService) -> Callable[[FleetNode, float], object]:
    @contextmanager
    def opener(node: FleetNode, timeout: float) -> Iterator[object]:
        with open_services(node, timeout) as real:
            yield WithAgent(real, agent) if node.here else real

    return opener


@pytest.fixture
def fleet(
    tmp_path: Path, smb_peer_factory: Callable[..., SambaPeer], monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, FailoverNode]]:
    """n1 runs the services; n2, a standby, runs its agent."""
    monkeypatch.setenv(PASSWORD_ENV, DEFAULT_PASSWORD)
    nodes = make_fleet(tmp_path, smb_peer_factory, active=ACTIVE)
    try:
        for node in nodes.values():
            set_spooler(node, running=node.name == "n1")
        yield nodes
    finally:
        stop_fleet(nodes)


def test_the_agent_here_is_stopped_for_the_move_and_started_again(
    fleet: dict[str, FailoverNode],
) -> None:
    """The agent holds the lock; the failover sets it aside, moves, and brings it back."""
    n2 = fleet["n2"]
    agent = AgentService(n2)
    agent.start()
    try:
        move = prepare(load_config(n2.config))
        move.open_services = _opener(agent)  # type: ignore[assignment]
        with agent_set_aside(move) as notes:
            assert agent.state == "stopped"
            result = run(move)
        assert result.exit_code == ExitCode.OK, result
        assert notes == [
            "stopped the jobsync agent here (jobsync) for the move",
            "started the jobsync agent (jobsync) again",
        ]
        assert agent.state == "running"
        assert agent.starts == 2
        assert spooler(n2) == "running"
    finally:
        agent.stop()


def test_a_lock_held_by_something_else_refuses_and_changes_nothing(
    fleet: dict[str, FailoverNode],
) -> None:
    """Not the agent (a push of the scheduled task): waited for, then named; nothing moved."""
    n2 = fleet["n2"]
    lock = WorkLock(n2.home / "state", who="jobsync push")
    assert lock.acquire()
    try:
        move = prepare(load_config(n2.config))
        refused = pytest.raises(SafetyRefusalError, match=r"jobsync push .* is at work here")
        with refused, agent_set_aside(move):
            pytest.fail("the block ran without the lock")
        assert spooler(n2) == "stopped"
        assert spooler(fleet["n1"]) == "running"
    finally:
        lock.release()
