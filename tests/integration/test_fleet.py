"""A fleet installed as the docs say: three nodes, one config template, a task and an agent each.

Every node's jobs folder is a real Samba share; each node runs jobsync as its own processes
(``tests/support/as_machine.py`` gives each the interface addresses of its own machine), with its
own config file made from one template and its own state folder. ``[active]`` is ``mode = "dns"``:
the services name is an address literal, carried by the services node's machine alone.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from support.polling import wait_for
from support.smbd import DEFAULT_PASSWORD, PASSWORD_ENV, SambaPeer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.smb

AS_MACHINE = Path(__file__).resolve().parents[1] / "support" / "as_machine.py"
SERVICES_ADDRESS = "203.0.113.50"  # the services name: a literal, so no DNS server is asked
TEMPLATE = """\
node = "{node}"
node_differs_from_host = true
source = '{source}'
timeout_seconds = 5
{peers}
[watch]
debounce_ms = 100
rescan_seconds = 2
retry_max_seconds = 1

[active]
mode = "dns"
services_host = "{services}"
check_seconds = 0.2
confirmations = 1
"""


@dataclass
class Node:
    """One machine of the fleet: its share, its jobs folder, its config and its agent."""

    name: str
    samba: SambaPeer
    home: Path  # the node's %ProgramData%\\jobsync: config, state
    folder: Path
    address: str
    agent: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def config(self) -> Path:
        """The config file of this node."""
        return self.home / "jobsync.toml"

    @property
    def machine(self) -> Path:
        """Where this node's machine lists its addresses (see tests/support/as_machine.py)."""
        return self.home / "addresses"

    def carry(self, *, services: bool) -> None:
        """Give this machine the services name's address, or take it away."""
        extra = f"\n{SERVICES_ADDRESS}" if services else ""
        self.machine.write_text(f"{self.address}{extra}\n", encoding="ascii")

    def command(self, *args: str) -> list[str]:
        """``jobsync ARGS -c <this node's config>`` as this machine runs it."""
        return [sys.executable, str(AS_MACHINE), str(self.machine), *args]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run one jobsync command here (the scheduled task, an administrator)."""
        env = {**os.environ, PASSWORD_ENV: DEFAULT_PASSWORD, "NO_COLOR": "1"}
        argv = self.command(*args, "-c", str(self.config))
        return subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=120, check=False
        )

    def jobs(self) -> dict[str, bytes]:
        """The jobs in this node's folder, as its scheduler would read them."""
        return {p.name: p.read_bytes() for p in self.folder.glob("*.jobs")}

    def start_agent(self) -> None:
        """Start ``jobsync watch`` here and wait until it has said its role."""
        # PYTHONFAULTHANDLER: an agent that will not stop is made to print where it hangs.
        env = {**os.environ, PASSWORD_ENV: DEFAULT_PASSWORD, "NO_COLOR": "1"}
        env["PYTHONFAULTHANDLER"] = "1"
        state = self.home / "state" / "agent.json"
        state.unlink(missing_ok=True)
        log = (self.home / "agent.log").open("ab")
        argv = self.command("watch", "-v", "-c", str(self.config))
        self.agent = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        agent = self.agent
        wait_for(lambda: state.exists() or agent.poll() is not None, what=f"{self.name}'s agent")
        assert agent.poll() is None, (self.home / "agent.log").read_text()

    def stop_agent(self) -> None:
        """Stop the agent as the service manager does; one that hangs fails with its threads."""
        agent, self.agent = self.agent, None
        if agent is None or agent.poll() is not None:
            return
        agent.send_signal(signal.SIGTERM)
        try:
            code = agent.wait(timeout=30)
        except subprocess.TimeoutExpired:
            agent.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            try:
                agent.wait(timeout=30)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()
            code = None
        assert code == 0, (self.home / "agent.log").read_text()[-30000:]


Fleet = dict[str, Node]


@pytest.fixture
def fleet(
    tmp_path: Path, smb_peer_factory: Callable[..., SambaPeer], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Fleet]:
    """n1, n2, n3: n2's machine carries the services name; configs from one template."""
    monkeypatch.setenv(PASSWORD_ENV, DEFAULT_PASSWORD)
    sambas = {name: smb_peer_factory() for name in ("n1", "n2", "n3")}
    peers = "\n".join(
        "\n".join(samba.peer_toml(name, "integrify", "jobs", password_env=PASSWORD_ENV))
        for name, samba in sambas.items()
    )
    nodes: Fleet = {}
    for index, (name, samba) in enumerate(sambas.items(), start=1):
        home = tmp_path / name
        home.mkdir()
        folder = samba.mkdir("integrify", "jobs")
        node = Node(name, samba, home, folder, f"203.0.113.{index}")
        template = TEMPLATE.format(node=name, source=folder, peers=peers, services=SERVICES_ADDRESS)
        node.config.write_text(template)
        node.carry(services=name == "n2")
        nodes[name] = node
    yield nodes
    hung = []
    for node in nodes.values():  # every agent is stopped, even after one that would not stop
        try:
            node.stop_agent()
        except AssertionError as exc:
            hung.append(f"{node.name}: {exc}")
    assert not hung, "\n".join(hung)


def _install(fleet: Fleet, order: str) -> None:
    """``jobsync init`` on each node, as install.ps1 runs it, in ``order``."""
    for name in order.split():
        done = fleet[name].run("init")
        assert done.returncode == 0, done.stdout + done.stderr
        role = "active" if name == "n2" else "standby"
        assert f"role: {role}" in done.stdout, done.stdout


def _tasks(fleet: Fleet) -> None:
    """Every node's fallback task runs once; standbys change nothing, and say so.

    The services node's task is left out while its agent runs: it would wait for the agent's
    work lock, then leave the push to it (tests/unit/test_windows_ops.py pins that).
    """
    for name, node in fleet.items():
        if name == "n2" and node.agent is not None:
            continue
        ran = node.run("push")
        assert ran.returncode == 0, ran
        if name != "n2":
            assert ran.stdout.startswith("standby: "), ran.stdout
            assert len(ran.stdout.splitlines()) == 1, ran.stdout


def _converged(fleet: Fleet, expected: dict[str, bytes]) -> bool:
    return all(node.jobs() == expected for node in fleet.values())


def test_standby_tasks_and_agents_in_every_order_never_change_the_services_node(
    fleet: Fleet,
) -> None:
    """Whatever starts and stops in whatever order, n2's jobs stay as its scheduler wrote them.

    Installed standbys first; each round starts the three agents in another of the six orders,
    stops one of them (a crashed agent, or error 1069 at start), lets n2's scheduler change
    its jobs, runs every node's fallback task, and waits for every peer to hold n2's jobs.
    """
    n2 = fleet["n2"]
    _install(fleet, "n1 n3 n2")
    scheduler: dict[str, bytes] = {"a.jobs": b"v0", "keep.jobs": b"kept"}
    for name, content in scheduler.items():
        (n2.folder / name).write_bytes(content)
    _tasks(fleet)
    assert _converged(fleet, scheduler)

    for round_, order in enumerate(itertools.permutations(fleet)):
        for name in order:
            fleet[name].start_agent()
        fleet[order[round_ % 3]].stop_agent()
        (n2.folder / "a.jobs").write_bytes(f"v{round_ + 1}".encode())
        (n2.folder / f"new{round_}.jobs").write_bytes(b"added on the services node")
        scheduler |= {
            "a.jobs": f"v{round_ + 1}".encode(),
            f"new{round_}.jobs": b"added on the services node",
        }
        if round_:
            (n2.folder / f"new{round_ - 1}.jobs").unlink()
            del scheduler[f"new{round_ - 1}.jobs"]
        _tasks(fleet)
        assert n2.jobs() == scheduler
        wait_for(partial(_converged, fleet, dict(scheduler)), what=f"round {round_}: {order}")
        for name in reversed(order):
            fleet[name].stop_agent()
        assert n2.jobs() == scheduler


def test_the_issue_reproduction_on_smb_leaves_the_live_folder_alone(fleet: Fleet) -> None:
    """A standby's task after the scheduler's change: n2 keeps v2 and c.jobs, and still pushes.

    No install step at all (no init): the role decision alone keeps the standby off.
    """
    n1, n2 = fleet["n1"], fleet["n2"]
    (n2.folder / "a.jobs").write_bytes(b"v1")
    assert n2.run("push").returncode == 0
    (n2.folder / "a.jobs").write_bytes(b"v2")
    (n2.folder / "c.jobs").write_bytes(b"new")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in n2.folder.rglob("*") if p.is_file())
    standby = n1.run("push")
    assert standby.returncode == 0, standby
    assert standby.stdout.startswith("standby: 203.0.113.50 resolves to 203.0.113.50, not here")
    assert (
        sorted((p.name, p.stat().st_mtime_ns) for p in n2.folder.rglob("*") if p.is_file())
        == before
    )
    again = n2.run("push")
    assert again.returncode == 0, again
    assert n1.jobs() == n2.jobs() == {"a.jobs": b"v2", "c.jobs": b"new"}


def test_two_machines_given_one_node_name_are_refused_on_both(fleet: Fleet) -> None:
    """n3's machine is given n2's name (a copied config): n2 and n3 both refuse, naming both.

    Renaming n3 back lets the services node push again.
    """
    n2, n3 = fleet["n2"], fleet["n3"]
    (n2.folder / "a.jobs").write_bytes(b"v1")
    _install(fleet, "n2")
    copied = n3.config.read_text().replace('node = "n3"', 'node = "n2"')
    n3.config.write_text(copied)
    clashed = n3.run("init")
    assert clashed.returncode == 4, clashed
    assert "two machines call themselves n2" in clashed.stdout

    refused_here = n2.run("push")
    assert refused_here.returncode == 4, refused_here
    assert "two machines call themselves n2" in refused_here.stdout + refused_here.stderr
    assert "peer n3" in refused_here.stdout + refused_here.stderr
    refused_there = n3.run("push")
    assert refused_there.returncode == 4, refused_there
    assert "two machines call themselves n2" in refused_there.stderr

    n3.config.write_text(copied.replace('node = "n2"', 'node = "n3"'))
    assert n3.run("init").returncode == 0
    pushed = n2.run("push")
    assert pushed.returncode == 0, pushed
    assert n3.jobs() == {"a.jobs": b"v1"}


@pytest.mark.parametrize(
    ("carriers", "verdict"),
    [
        (("n1", "n2", "n3"), "which every node carries (an NLB cluster address?)"),
        ((), "which no node carries (a load balancer's address?)"),
        (("n1", "n2"), "which 2 nodes carry (n1, n2)"),
    ],
)
def test_check_finds_a_services_name_that_no_single_node_carries(
    fleet: Fleet, carriers: tuple[str, ...], verdict: str
) -> None:
    """``mode = "dns"`` against an NLB address, a balancer's, or two nodes': check says exit 2.

    Each node publishes its addresses when checked; the last one checked sees the whole fleet.
    """
    for name, node in fleet.items():
        node.carry(services=name in carriers)
    for name in ("n1", "n3"):
        fleet[name].run("check")
    checked = fleet["n2"].run("check")
    assert checked.returncode == 2, checked
    fleet_lines = [line for line in checked.stdout.splitlines() if line.startswith("FLEET")]
    assert len(fleet_lines) == 1, checked.stdout
    assert f"203.0.113.50 resolves to 203.0.113.50, {verdict}" in fleet_lines[0]


def test_check_passes_on_a_fleet_installed_as_documented(fleet: Fleet) -> None:
    """One node carries the services name, each has its own name: every line OK, exit 0."""
    for name in ("n1", "n3", "n2"):
        checked = fleet[name].run("check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith("n2 (host ")
    assert " is active: 203.0.113.50 resolves to 203.0.113.50 here" in checked.stdout
    assert "FLEET" not in checked.stdout
