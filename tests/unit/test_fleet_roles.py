"""One role decision for every writer, ownership at install, node identity: on local folders.

Each test builds nodes whose jobs folders are local folders and runs jobsync in this process;
which node is the services node is ``[active] mode = "dns"`` with an address literal, and the
machine's interface addresses are set per run (all nodes of a test share one real machine).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

import jobsync.node
import jobsync.role
from jobsync.config.load import load_config
from jobsync.errors import ConfigError
from jobsync.jobs_folder import manifest_from_bytes
from jobsync.node import (
    Identity,
    WorkLock,
    clash,
    host_name,
    install_id,
    local_identity,
    publish,
    read_folder_identity,
)

from support.cluster import Run, run_jobsync

SERVICES = "203.0.113.50"


@dataclass
class LocalNode:
    """A node whose jobs folder and config live under one folder of its own."""

    name: str
    home: Path
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch
    services: bool = False  # whether this machine carries the services name's address

    @property
    def folder(self) -> Path:
        """The node's jobs folder."""
        return self.home / "jobs"

    @property
    def config(self) -> Path:
        """The node's config file."""
        return self.home / "jobsync.toml"

    def run(self, *args: str) -> Run:
        """``jobsync ARGS`` as this node's machine runs it."""
        carried = {f"203.0.113.{self.name[-1]}"} | ({SERVICES} if self.services else set())
        self.monkeypatch.setattr(jobsync.role, "local_addresses", lambda: carried)
        return run_jobsync(self.capsys, [*args, "-c", str(self.config)])

    def files(self) -> dict[str, bytes]:
        """Every file under the jobs folder, ``.jobsync`` included, with its bytes."""
        return {
            p.relative_to(self.folder).as_posix(): p.read_bytes()
            for p in sorted(self.folder.rglob("*"))
            if p.is_file()
        }


def _nodes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *,
    active: str = f'mode = "dns"\nservices_host = "{SERVICES}"',
) -> dict[str, LocalNode]:
    nodes = {
        name: LocalNode(name, tmp_path / name, capsys, monkeypatch, services=name == "node2")
        for name in ("node1", "node2")
    }
    for node in nodes.values():
        node.folder.mkdir(parents=True)
    for name, node in nodes.items():
        peers = "".join(
            f"[[peers]]\nname = \"{o.name}\"\npath = '{o.folder}'\n"
            for o in nodes.values()
            if o.name != name
        )
        node.config.write_text(
            f"node = \"{name}\"\nnode_differs_from_host = true\nsource = '{node.folder}'\n"
            f"{peers}[active]\n{active}\n"
        )
    return nodes


@pytest.fixture
def pair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, LocalNode]:
    """node1 (standby) and node2 (its machine carries the services name), pushing to each other."""
    return _nodes(tmp_path, capsys, monkeypatch)


def test_the_issue_reproduction_leaves_v2_and_c_jobs_and_node2_still_pushes(
    pair: dict[str, LocalNode],
) -> None:
    """The standby's task after the scheduler's change: one line, exit 0, nothing changed."""
    node1, node2 = pair["node1"], pair["node2"]
    (node2.folder / "a.jobs").write_bytes(b"v1")
    assert node2.run("push").code == 0
    (node2.folder / "a.jobs").write_bytes(b"v2")
    (node2.folder / "c.jobs").write_bytes(b"new")
    before = node2.files()
    standby = node1.run("push")
    assert standby.code == 0, standby
    assert standby.out == (
        f"standby: {SERVICES} resolves to {SERVICES}, not here; nothing pushed (the services "
        "node does it; --as-services-node makes this node act as the services node anyway)\n"
    )
    assert node2.files() == before
    assert node2.run("push").code == 0
    assert (node1.folder / "a.jobs").read_bytes() == b"v2"
    assert (node1.folder / "c.jobs").read_bytes() == b"new"


def test_a_standby_push_in_json_says_its_role(pair: dict[str, LocalNode]) -> None:
    """``--json`` on a standby: one document with the role and the reason, exit code 0."""
    ran = pair["node1"].run("push", "--json")
    assert ran.code == 0
    assert ran.json() == {
        "node": "node1",
        "role": "standby",
        "reason": f"{SERVICES} resolves to {SERVICES}, not here",
        "exit_code": 0,
        "message": ran.json()["message"],
    }


def test_services_mode_off_windows_refuses_before_touching_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's config (``mode = "services"``) where no service manager answers: exit 2."""
    nodes = _nodes(
        tmp_path, capsys, monkeypatch, active='mode = "services"\nservices = ["IntegrifyScheduler"]'
    )
    (nodes["node2"].folder / "a.jobs").write_bytes(b"v2")
    before = nodes["node2"].files()
    ran = nodes["node1"].run("push")
    assert ran.code == 2
    assert 'mode = "services" needs Windows' in ran.err
    assert nodes["node2"].files() == before


def test_the_override_pushes_from_a_standby_and_is_logged(pair: dict[str, LocalNode]) -> None:
    """``--as-services-node``: the operator means it; the push runs, with a warning event."""
    node1, node2 = pair["node1"], pair["node2"]
    (node1.folder / "a.jobs").write_bytes(b"from node1")
    ran = node1.run("push", "--as-services-node", "--log-json")
    assert ran.code == 0, ran
    assert (node2.folder / "a.jobs").read_bytes() == b"from node1"
    events = [json.loads(line) for line in ran.err.splitlines() if line.startswith("{")]
    overridden = [e for e in events if e["event"] == "role_overridden"]
    assert overridden, ran.err
    assert overridden[0]["level"] == "warning"
    assert overridden[0]["reason"] == f"{SERVICES} resolves to {SERVICES}, not here"


def test_reconcile_apply_on_a_standby_is_refused_but_the_report_runs(
    pair: dict[str, LocalNode],
) -> None:
    """A standby may report drift; repairing it is the services node's (exit 4, nothing changed)."""
    node1, node2 = pair["node1"], pair["node2"]
    (node1.folder / "stale.jobs").write_bytes(b"stale")
    before = node2.files()
    report = node1.run("reconcile")
    assert report.code == 1, report  # drift: node2 lacks stale.jobs
    applied = node1.run("reconcile", "--apply")
    assert applied.code == 4
    assert "reconcile --apply refused: standby:" in applied.err
    assert node2.files() == before
    assert node1.run("reconcile", "--as-services-node").code == 2


def test_init_claims_the_jobs_once_on_the_services_node_only(pair: dict[str, LocalNode]) -> None:
    """Standby: identity only. Services node: epoch 1, recorded on the peer. Again: nothing new."""
    node1, node2 = pair["node1"], pair["node2"]
    (node2.folder / "a.jobs").write_bytes(b"v1")
    standby = node1.run("init")
    assert standby.code == 0, standby
    assert "role: standby" in standby.out
    assert not (node1.folder / ".jobsync" / "epoch.json").exists()
    assert read_folder_identity(node1.folder) is not None

    first = node2.run("init")
    assert first.code == 0, first
    assert "node2 took over in epoch 1" in first.out
    peer_manifest = json.loads((node1.folder / ".jobsync" / "manifest.json").read_text())
    assert (peer_manifest["owner"], peer_manifest["epoch"]) == ("node2", 1)
    assert peer_manifest["owner_install"] == read_folder_identity(node2.folder).install  # type: ignore[union-attr]

    before = {**node1.files(), **node2.files()}
    again = node2.run("init")
    assert again.code == 0, again
    assert "node2 already owns the jobs (epoch 1): done" in again.out
    assert {**node1.files(), **node2.files()} == before


def test_init_where_another_node_owns_the_jobs_is_refused(pair: dict[str, LocalNode]) -> None:
    """A second services node's install never moves the jobs: that is takeover's work."""
    node1, node2 = pair["node1"], pair["node2"]
    assert node2.run("init").code == 0
    before = {**node1.files(), **node2.files()}
    refused = node1.run("init", "--as-services-node")
    assert refused.code == 4, refused
    assert "node2 owns the jobs at epoch 1" in refused.out
    assert "jobsync takeover" in refused.out
    assert {
        k: v for k, v in {**node1.files(), **node2.files()}.items() if "node.json" not in k
    } == {k: v for k, v in before.items() if "node.json" not in k}


def test_init_dry_run_changes_nothing(pair: dict[str, LocalNode]) -> None:
    """``init --dry-run`` on the services node shows the plan and writes no file."""
    node2 = pair["node2"]
    (node2.folder / "a.jobs").write_bytes(b"v1")
    ran = node2.run("init", "--dry-run")
    assert ran.code == 0, ran
    assert "would take over in epoch 1" in ran.out
    assert node2.files() == {"a.jobs": b"v1"}


# -- node identity ----------------------------------------------------------------------------

GOOD = "source = '/srv/jobs'\n[[peers]]\nname = \"p\"\npath = '/srv/peer'\n"


@pytest.mark.parametrize(
    ("head", "node", "error"),
    [
        ("", host_name(), None),
        (f'node = "{host_name().upper()}"\n', host_name().upper(), None),
        ('node = "node1"\nnode_differs_from_host = true\n', "node1", None),
        ('node = "node1"\n', None, "node = 'node1' is not this machine's host name"),
        ("node_differs_from_host = true\n", None, "node_differs_from_host is only used with node"),
        ('node = "node1"\nnode_differs_from_host = "yes"\n', None, "must be"),
    ],
)
def test_node_defaults_to_the_host_name_and_another_name_needs_acknowledging(
    tmp_path: Path, head: str, node: str | None, error: str | None
) -> None:
    """A copied ``node`` is caught: only the host name, or a name acknowledged as different."""
    path = tmp_path / "jobsync.toml"
    path.write_text(head + GOOD)
    if error is None:
        assert load_config(path, environ={}).node == node
    else:
        with pytest.raises(ConfigError, match=error):
            load_config(path, environ={})


def _me(install: str = "a" * 32, node: str = "node1") -> Identity:
    return Identity(node, "host-a", install)


@pytest.mark.parametrize(
    ("other", "clashes"),
    [
        (None, False),
        (Identity("node1", "host-a", "a" * 32), False),  # this very install
        (Identity("NODE1", "host-b", "b" * 32), True),  # names compare case-insensitively
        (Identity("node2", "host-b", "b" * 32), False),  # another node: no business of ours
        (Identity("node1", "host-b", ""), False),  # no install recorded (jobsync 0.2)
    ],
)
def test_a_clash_is_one_name_with_two_installs(other: Identity | None, clashes: bool) -> None:
    """Two records clash exactly when they name one node with different install ids."""
    found = clash(_me(), other, where="on peer x")
    assert (found is not None) == clashes
    if found is not None:
        assert "host-a (this one) and host-b (on peer x)" in found


def test_the_install_id_is_made_once_and_survives_a_reinstall(tmp_path: Path) -> None:
    """The id is kept in the state folder; a wiped state folder takes it back from node.json."""
    folder, state = tmp_path / "jobs", tmp_path / "state"
    folder.mkdir()
    first = install_id(state, folder=folder, node="node1", host="host-a")
    assert install_id(state, folder=folder, node="node1", host="host-a") == first
    assert publish(folder, Identity("node1", "host-a", first)) is None
    (state / "install-id").unlink()
    assert install_id(state, folder=folder, node="node1", host="host-a") == first
    (state / "install-id").unlink()
    assert install_id(state, folder=folder, node="node1", host="host-b") != first


def test_publish_leaves_another_machines_record_and_says_so(tmp_path: Path) -> None:
    """node.json of another install by the same name is never overwritten: it is the evidence."""
    folder = tmp_path / "jobs"
    folder.mkdir()
    assert publish(folder, Identity("node1", "host-b", "b" * 32)) is None
    problem = publish(folder, _me())
    assert problem is not None
    assert "two machines call themselves node1" in problem
    assert read_folder_identity(folder) == Identity("node1", "host-b", "b" * 32)


def test_a_manifest_without_an_owner_install_still_reads() -> None:
    """Manifests of jobsync 0.2 (no owner_install or owner_host) read as before: no identity."""
    old = {"format": 2, "node": "n", "updated": "", "epoch": 1, "owner": "n", "files": {}}
    manifest = manifest_from_bytes(json.dumps(old).encode())
    assert (manifest.owner, manifest.owner_install, manifest.owner_host) == ("n", "", "")


def test_local_identity_names_the_config_node_and_this_host(tmp_path: Path) -> None:
    """The identity jobsync records: the config's node, this host, the install id."""
    path = tmp_path / "jobsync.toml"
    (tmp_path / "jobs").mkdir()
    path.write_text(f"source = '{tmp_path / 'jobs'}'\n[[peers]]\nname = \"p\"\npath = '/srv/p'\n")
    me = local_identity(load_config(path, environ={}))
    assert (me.node, me.host) == (host_name(), host_name())
    assert (tmp_path / "state" / "install-id").read_text().strip() == me.install


def test_init_beside_a_running_agent_records_the_identity_but_claims_nothing(
    pair: dict[str, LocalNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-run of the install with the agent running: the owner is told so; a claim waits.

    Before the claim, init says why it refuses (exit 4) and changes no job or manifest; once the
    node owns the jobs, the same re-run answers "already owns" (exit 0).
    """
    node2 = pair["node2"]
    (node2.folder / "a.jobs").write_bytes(b"v1")
    monkeypatch.setattr(jobsync.node, "DEFAULT_WAIT_SECONDS", 0.2)
    agent = WorkLock(node2.home / "state", who="the jobsync agent")
    assert agent.acquire(wait=1)
    try:
        refused = node2.run("init")
        assert refused.code == 4, refused
        assert "REFUSED: the jobsync agent (pid" in refused.out
        assert "stop the jobsync agent service" in refused.out
        assert not (node2.folder / ".jobsync" / "epoch.json").exists()
        assert read_folder_identity(node2.folder) is not None
    finally:
        agent.release()
    assert node2.run("init").code == 0
    assert agent.acquire(wait=1)
    try:
        again = node2.run("init")
        assert again.code == 0, again
        assert "node2 already owns the jobs (epoch 1): done" in again.out
    finally:
        agent.release()


@pytest.mark.parametrize("command", [("push",), ("reconcile", "--apply"), ("init",)])
def test_a_services_name_every_node_holds_is_refused_by_every_writer(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: tuple[str, ...],
) -> None:
    """``services_host`` on loopback (a hosts file pointing at itself): exit 2, one line."""
    nodes = _nodes(
        tmp_path, capsys, monkeypatch, active='mode = "dns"\nservices_host = "127.0.0.1"'
    )
    (nodes["node2"].folder / "a.jobs").write_bytes(b"v2")
    before = {**nodes["node1"].files(), **nodes["node2"].files()}
    ran = nodes["node2"].run(*command)
    assert ran.code == 2, ran
    assert len(ran.err.splitlines()) == 1, ran.err
    assert "a loopback or unspecified address that every node holds" in ran.err
    assert {**nodes["node1"].files(), **nodes["node2"].files()} == before


def test_check_flags_a_fleet_without_active(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two jobsync nodes without ``[active]`` both push as the services node: check says so."""
    nodes = _nodes(tmp_path, capsys, monkeypatch, active='mode = "always"')
    first = nodes["node1"].run("check")
    assert first.code == 0, first  # node2 has not said yet that it runs jobsync
    second = nodes["node2"].run("check")
    assert second.code == 2, second
    fleet = [line for line in second.out.splitlines() if line.startswith("FLEET")]
    assert fleet == [
        (
            'FLEET  [active] is left out (or mode = "always") and node1 run jobsync too: every '
            'node with this file pushes as the services node; set [active] (mode = "services" '
            'or "dns") on every node'
        )
    ]
