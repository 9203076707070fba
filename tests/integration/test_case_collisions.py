"""Job names that differ only in case, against real Samba shares.

A Linux source (or a case-sensitive Windows folder) can hold ``Report.jobs`` and
``report.jobs``; a Windows peer can hold only one of them. Neither is pushed, each is reported
by name (exit 3, under ``skipped``), reconcile reports both as drift, and pushes settle: the
peer's copy is never rewritten pass after pass.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from support.agent import AgentProcess, agent_config
from support.cluster import Cluster, jobs_on
from support.polling import wait_for
from support.smbd import DEFAULT_PASSWORD, PASSWORD_ENV, SambaPeer

pytestmark = pytest.mark.smb


def _snapshot(folder: Path) -> list[tuple[str, int, bytes]]:
    """Every file under a peer folder with its write time and content."""
    return sorted(
        (str(p.relative_to(folder)), p.stat().st_mtime_ns, p.read_bytes())
        for p in folder.rglob("*")
        if p.is_file()
    )


@pytest.fixture
def case_sensitive_cluster(
    tmp_path: Path,
    smb_peer_factory: Callable[..., SambaPeer],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cluster:
    """node1 pushing to node2, whose jobs folder is on a `case sensitive = yes` share."""
    monkeypatch.setenv(PASSWORD_ENV, DEFAULT_PASSWORD)
    case_sensitive_samba = smb_peer_factory(
        share_options=("case sensitive = yes", "preserve case = yes")
    )
    source = tmp_path / "source"
    source.mkdir()
    cluster = Cluster(root=tmp_path, source=source, peers=[], capsys=capsys)
    cluster.peers.append(
        ("node2", case_sensitive_samba.unc("jobs"), case_sensitive_samba.mkdir("jobs"))
    )
    cluster.smb["node2"] = case_sensitive_samba
    return cluster


def _collide_and_push_twice(cluster: Cluster) -> None:
    """report.jobs reaches the peers; then Report.jobs appears beside it at the source."""
    cluster.write_job("report.jobs", b"the first one")
    cluster.write_job("other.jobs", b"not involved")
    assert cluster.run("push").code == 0
    cluster.write_job("Report.jobs", b"the second one")
    before = {name: _snapshot(disk) for name, _, disk in cluster.peers}

    for _ in range(2):
        pushed = cluster.run("push", "--json")
        assert pushed.code == 3, pushed
        doc = pushed.json()
        skipped = {s["file"]: s for s in doc["source"]["skipped"]}
        assert set(skipped) == {"Report.jobs", "report.jobs"}
        assert all(s["case_collision"] for s in skipped.values())
        assert "differs only in case from report.jobs" in skipped["Report.jobs"]["reason"]
        assert all(p["copied"] == [] and p["deleted"] == [] for p in doc["peers"])
        # Nothing on any peer was touched: not the job, not the manifest.
        assert {name: _snapshot(disk) for name, _, disk in cluster.peers} == before

    text = cluster.run("push")
    assert "skipped source file Report.jobs: its name differs only in case" in text.out


def _reconcile_reports_the_collision(cluster: Cluster) -> None:
    drift = cluster.run("reconcile", "--json")
    assert drift.code == 1, drift
    for peer in drift.json()["peers"]:
        assert {(d["file"], d["kind"]) for d in peer["drift"]} == {
            ("Report.jobs", "collision"),
            ("report.jobs", "collision"),
        }


def _renaming_one_settles_it(cluster: Cluster) -> None:
    (cluster.source / "Report.jobs").rename(cluster.source / "Report (copy).jobs")
    assert cluster.run("push").code == 0
    assert cluster.run("reconcile").code == 0
    for _, _, disk in cluster.peers:
        assert {p.name: p.read_bytes() for p in disk.glob("*.jobs")} == {
            "report.jobs": b"the first one",
            "Report (copy).jobs": b"the second one",
            "other.jobs": b"not involved",
        }


def test_a_collision_is_reported_and_never_pushed_to_default_shares(smb_cluster: Cluster) -> None:
    """Default (case-insensitive) shares: the peer keeps its one copy, untouched, every push."""
    _collide_and_push_twice(smb_cluster)
    for _, _, disk in smb_cluster.peers:
        assert {p.name: p.read_bytes() for p in disk.glob("*.jobs")} == {
            "report.jobs": b"the first one",
            "other.jobs": b"not involved",
        }
    _reconcile_reports_the_collision(smb_cluster)
    _renaming_one_settles_it(smb_cluster)


def test_a_collision_is_reported_and_never_pushed_to_a_case_sensitive_share(
    case_sensitive_cluster: Cluster,
) -> None:
    """A `case sensitive = yes` share could hold both, but it gets neither: nodes stay alike."""
    cluster = case_sensitive_cluster
    _collide_and_push_twice(cluster)
    assert {p.name for p in cluster.disk("node2").glob("*.jobs")} == {"report.jobs", "other.jobs"}
    _reconcile_reports_the_collision(cluster)
    _renaming_one_settles_it(cluster)


def test_names_doubled_on_a_case_sensitive_peer_are_reported_and_left_alone(
    case_sensitive_cluster: Cluster,
) -> None:
    """Someone put REPORT.jobs beside report.jobs on the peer: both are reported, neither lost."""
    cluster = case_sensitive_cluster
    cluster.write_job("report.jobs", b"from the source")
    assert cluster.run("push").code == 0
    disk = cluster.disk("node2")
    (disk / "REPORT.jobs").write_bytes(b"copied there by hand")
    cluster.write_job("report.jobs", b"from the source, edited")
    before = _snapshot(disk)

    for _ in range(2):
        pushed = cluster.run("push", "--json")
        assert pushed.code == 3, pushed
        (peer,) = pushed.json()["peers"]
        assert {f["file"] for f in peer["failed"]} == {"REPORT.jobs", "report.jobs"}
        assert "differs only in case" in peer["failed"][0]["reason"]
        assert peer["copied"] == []
        assert _snapshot(disk) == before

    drift = cluster.run("reconcile", "--json")
    assert drift.code == 1
    kinds = {(d["file"], d["kind"]) for d in drift.json()["peers"][0]["drift"]}
    assert kinds == {("REPORT.jobs", "collision"), ("report.jobs", "collision")}


def test_the_agent_leaves_a_collision_alone(smb_cluster: Cluster) -> None:
    """A colliding name saved while the agent runs reaches no peer; the peer's copy stays as is."""
    smb_cluster.write_job("report.jobs", b"the first one")
    agent = AgentProcess(smb_cluster)
    smb_cluster.extra = agent_config()
    agent.start()
    try:
        wait_for(
            lambda: all(
                jobs_on(d) == {"report.jobs": b"the first one"} for _, _, d in smb_cluster.peers
            ),
            what="the start push",
        )
        before = [(d / "report.jobs").stat().st_mtime_ns for _, _, d in smb_cluster.peers]
        smb_cluster.write_job("Report.jobs", b"the second one")
        smb_cluster.write_job("marker.jobs", b"saved after it")
        expected = {"report.jobs": b"the first one", "marker.jobs": b"saved after it"}
        wait_for(
            lambda: all(jobs_on(d) == expected for _, _, d in smb_cluster.peers),
            what="the marker, and nothing else",
        )
        wait_for(lambda: "source_file_skipped" in agent.log.read_text(), what="the warning")
        after = [(d / "report.jobs").stat().st_mtime_ns for _, _, d in smb_cluster.peers]
        assert after == before
    finally:
        agent.close()
