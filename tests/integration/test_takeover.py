"""Failover across three real nodes, A, B and C.

Every node's jobs folder is a Samba share, and each node runs jobsync with its own folder as
source and the other two as peers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.cluster import Run, run_jobsync
from support.smbd import PASSWORD_ENV, SambaPeer

pytestmark = pytest.mark.smb


@dataclass
class Node:
    """One cluster node: its Samba share, its jobs folder and its config."""

    name: str
    samba: SambaPeer
    folder: Path
    config: Path

    def write(self, name: str, content: bytes) -> None:
        """Save a job here, as Integrify would."""
        (self.folder / name).write_bytes(content)

    def jobs(self) -> dict[str, bytes]:
        """The jobs in this node's folder."""
        return {p.name: p.read_bytes() for p in self.folder.glob("*.jobs")}

    def manifest(self) -> dict[str, object]:
        """The manifest in the node's own folder."""
        return json.loads((self.folder / ".jobsync" / "manifest.json").read_text())  # type: ignore[no-any-return]

    def snapshot(self) -> list[tuple[str, int]]:
        """Every file under the folder with its write time: to prove nothing changed."""
        return sorted((str(p), p.stat().st_mtime_ns) for p in self.folder.rglob("*") if p.is_file())


Cluster3 = dict[str, Node]


@pytest.fixture
def nodes(
    tmp_path: Path,
    smb_peer_factory: Callable[..., SambaPeer],
    monkeypatch: pytest.MonkeyPatch,
) -> Cluster3:
    """Nodes A, B and C, each with its own smbd and a config naming the other two."""
    sambas = {name: smb_peer_factory() for name in "ABC"}
    monkeypatch.setenv(PASSWORD_ENV, next(iter(sambas.values())).password)
    folders = {name: samba.mkdir("integrify", "jobs") for name, samba in sambas.items()}
    cluster: Cluster3 = {}
    for name, samba in sambas.items():
        lines = [
            f'node = "{name}"',
            "node_differs_from_host = true",
            f"source = '{folders[name]}'",
            "timeout_seconds = 3",
        ]
        for other, peer in sambas.items():
            if other == name:
                continue
            lines += peer.peer_toml(other, "integrify", "jobs", password_env=PASSWORD_ENV)
        config = tmp_path / f"{name}.toml"
        config.write_text("\n".join(lines) + "\n")
        cluster[name] = Node(name, samba, folders[name], config)
    return cluster


def jobsync(capsys: pytest.CaptureFixture[str], node: Node, *args: str) -> Run:
    """Run jobsync as ``node``."""
    return run_jobsync(capsys, [*args, "-c", str(node.config)])


def test_full_failover(nodes: Cluster3, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole failover, with the old services node fenced when it returns.

    A pushes; its last change reaches only C; A dies; B takes over and adopts that change from
    C; A, back, is refused; B pushes to everyone; A's next push is refused again.
    """
    a, b, c = nodes["A"], nodes["B"], nodes["C"]
    a.write("report.jobs", b"report v1")
    a.write("cleanup.jobs", b"cleanup")
    a.write("retired.jobs", b"to be deleted")
    first = jobsync(capsys, a, "push")
    assert first.code == 0, first
    assert b.jobs() == c.jobs() == a.jobs()

    a.write("report.jobs", b"report v2: the change only C got")
    (a.folder / "retired.jobs").unlink()
    assert jobsync(capsys, a, "push", "--peer", "C").code == 0
    assert c.jobs() == {
        "report.jobs": b"report v2: the change only C got",
        "cleanup.jobs": b"cleanup",
    }
    assert b.jobs()["report.jobs"] == b"report v1"

    a.samba.stop()  # A dies

    drift = jobsync(capsys, b, "reconcile", "--json")
    assert drift.code == 3  # A is unreachable; C is still fully reported
    peers = {p["name"]: p for p in drift.json()["peers"]}
    assert peers["A"]["reachable"] is False
    assert {d["file"]: d["newer"] for d in peers["C"]["drift"]} == {
        "report.jobs": "peer",
        "retired.jobs": "peer",
    }

    took = jobsync(capsys, b, "takeover")
    assert took.code == 3, took  # done with what could be seen: A is down
    assert "pulled report.jobs from C" in took.out
    assert "deleted retired.jobs" in took.out
    assert "UNREACHABLE A" in took.out
    assert b.jobs() == {
        "report.jobs": b"report v2: the change only C got",
        "cleanup.jobs": b"cleanup",
    }
    assert [p.read_bytes() for p in (b.folder / ".jobsync" / "backup").iterdir()] == [b"report v1"]
    assert b.manifest()["epoch"] == 1
    assert c.manifest()["owner"] == "B"
    assert c.manifest()["epoch"] == 1

    a.samba.start()  # A comes back and still believes it is the services node
    a.write("report.jobs", b"report v3 from the old node")
    before = {n: nodes[n].snapshot() for n in "BC"}
    refused = jobsync(capsys, a, "push", "--json")
    assert refused.code == 4
    for peer in refused.json()["peers"]:
        assert peer["refused"].startswith("B took over at epoch 1")
    assert {n: nodes[n].snapshot() for n in "BC"} == before

    pushed = jobsync(capsys, b, "push")
    assert pushed.code == 0, pushed
    assert a.jobs() == b.jobs() == c.jobs()
    assert a.manifest()["owner"] == "B"

    a.write("cleanup.jobs", b"the old node tries again")
    before = {n: nodes[n].snapshot() for n in "BC"}
    again = jobsync(capsys, a, "push")
    assert again.code == 4
    assert "took over at epoch 1" in again.err
    assert {n: nodes[n].snapshot() for n in "BC"} == before


def test_takeover_dry_run_and_require_all_change_nothing(
    nodes: Cluster3, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run shows the plan only; --require-all refuses while a peer is down."""
    a, b, c = nodes["A"], nodes["B"], nodes["C"]
    a.write("x.jobs", b"x1")
    assert jobsync(capsys, a, "push").code == 0
    a.write("x.jobs", b"x2")
    assert jobsync(capsys, a, "push", "--peer", "C").code == 0
    a.samba.stop()
    before = {n: nodes[n].snapshot() for n in "BC"}

    dry = jobsync(capsys, b, "takeover", "--dry-run")
    assert dry.code == 3
    assert "would pull x.jobs from C" in dry.out
    strict = jobsync(capsys, b, "takeover", "--require-all")
    assert strict.code == 4
    assert "cannot see A" in strict.out

    assert {n: nodes[n].snapshot() for n in "BC"} == before
    assert b.jobs() == {"x.jobs": b"x1"}
    assert c.jobs() == {"x.jobs": b"x2"}


def test_apply_refuses_to_replace_a_newer_version_unless_forced(
    nodes: Cluster3, capsys: pytest.CaptureFixture[str]
) -> None:
    """A newer version on a peer is left alone by --apply (exit 4) unless --force.

    B took over while C was down, so C still holds A's last version, newer than B's. With
    --force it is replaced, and kept in the peer's backup.
    """
    a, b, c = nodes["A"], nodes["B"], nodes["C"]
    a.write("x.jobs", b"old")
    assert jobsync(capsys, a, "push").code == 0
    a.write("x.jobs", b"newer, only on C")
    assert jobsync(capsys, a, "push", "--peer", "C").code == 0
    a.samba.stop()
    c.samba.stop()
    assert jobsync(capsys, b, "takeover").code == 3
    c.samba.start()

    held = jobsync(capsys, b, "reconcile", "--apply", "--peer", "C")
    assert held.code == 4, held
    assert "left alone, the peer holds a newer version: x.jobs" in held.out
    assert c.jobs() == {"x.jobs": b"newer, only on C"}

    forced = jobsync(capsys, b, "reconcile", "--apply", "--force", "--peer", "C")
    assert forced.code == 0, forced
    assert c.jobs() == {"x.jobs": b"old"}
    assert [p.read_bytes() for p in (c.folder / ".jobsync" / "backup").iterdir()] == [
        b"newer, only on C"
    ]


def _everything(node: Node) -> set[bytes]:
    """The content of every file in a node's folder, jobsync's own included."""
    return {p.read_bytes() for p in node.folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("first", ["B", "C"])
def test_a_partitioned_double_takeover_settles_on_one_owner(
    nodes: Cluster3, capsys: pytest.CaptureFixture[str], first: str
) -> None:
    """B and C both take over in epoch 1, each while it cannot see the other.

    Once they see each other, B (whose name sorts first) owns the jobs whatever order the
    pushes run in: C is fenced in every round, with a message naming B; every folder ends as
    B's, and stays so round after round; reconcile is clean; what C wrote is kept.
    """
    a, b, c = nodes["A"], nodes["B"], nodes["C"]
    a.write("x.jobs", b"x")
    a.write("y.jobs", b"y")
    assert jobsync(capsys, a, "push").code == 0
    a.samba.stop()  # the services node dies

    c.samba.stop()  # B cannot see C
    took_b = jobsync(capsys, b, "takeover")
    assert took_b.code == 3, took_b
    assert "reached only 1 of 3 nodes (this one included), not a majority" in took_b.out
    b.write("x.jobs", b"x from B")
    c.samba.start()
    b.samba.stop()  # C cannot see B
    took_c = jobsync(capsys, c, "takeover", "--json")
    assert took_c.code == 3, took_c
    assert took_c.json()["epoch"] == b.manifest()["epoch"] == 1
    assert took_c.json()["reached"] == {"nodes": ["C"], "cluster": 3, "majority": False}
    c.write("y.jobs", b"y from C")
    c.write("z.jobs", b"z, made on C")
    b.samba.start()
    a.samba.start()  # healed: A is back too, as a plain peer

    order = [b, c] if first == "B" else [c, b]
    settled: dict[str, list[tuple[str, int]]] = {}
    for round_number in range(3):
        for node in order:
            run = jobsync(capsys, node, "push")
            if node is b:
                assert run.code == 0, (round_number, run)
            else:
                assert run.code == 4, (round_number, run)
                assert "so B does" in run.out + run.err
        assert a.jobs() == b.jobs() == c.jobs() == {"x.jobs": b"x from B", "y.jobs": b"y"}
        now = {n.name: n.snapshot() for n in (a, b, c)}
        if round_number == 0:
            settled = now
        assert now == settled, round_number  # repeated pushes change nothing

    assert jobsync(capsys, b, "reconcile").code == 0
    assert {b"y from C", b"z, made on C"} <= _everything(c)
    assert c.manifest()["owner"] == a.manifest()["owner"] == "B"
