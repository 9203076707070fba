"""`jobsync reconcile` against real smbd peers: drift named right, reporting changes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.cluster import Cluster

pytestmark = pytest.mark.smb


def _snapshot(cluster: Cluster) -> dict[str, list[tuple[str, int, bytes]]]:
    return {
        name: sorted(
            (str(p), p.stat().st_mtime_ns, p.read_bytes()) for p in disk.rglob("*") if p.is_file()
        )
        for name, _, disk in cluster.peers
    }


def _drift(run_json: dict[str, object], peer: str) -> dict[str, dict[str, object]]:
    peers = {p["name"]: p for p in run_json["peers"]}  # type: ignore[attr-defined]
    return {d["file"]: d for d in peers[peer]["drift"]}


def test_each_drift_kind_is_named_and_reporting_changes_nothing(smb_cluster: Cluster) -> None:
    """missing, extra, differs (pushed or edited on the peer) are each reported as such."""
    for name in ("same.jobs", "changed.jobs", "edited.jobs", "gone.jobs"):
        smb_cluster.write_job(name, name.encode())
    assert smb_cluster.run("push").code == 0
    node2 = smb_cluster.disk("node2")
    smb_cluster.write_job("changed.jobs", b"a source change not pushed yet")
    (node2 / "edited.jobs").write_bytes(b"edited by hand on node2")
    (node2 / "gone.jobs").unlink()
    (node2 / "stray.jobs").write_bytes(b"put there by hand")
    before = _snapshot(smb_cluster)

    run = smb_cluster.run("reconcile", "--json")

    assert run.code == 1
    doc = run.json()
    assert doc["in_sync"] is False
    assert doc["source"] == {"node": "node1", "files": 4}
    drift = _drift(doc, "node2")
    assert {f: (d["kind"], d["edited_on_peer"], d["newer"]) for f, d in drift.items()} == {
        "changed.jobs": ("differs", False, "source"),
        "edited.jobs": ("differs", True, "source"),
        "gone.jobs": ("missing", None, "source"),
        "stray.jobs": ("extra", True, "source"),
    }
    assert drift["edited.jobs"]["peer_sha256"] != drift["edited.jobs"]["source_sha256"]
    assert set(_drift(doc, "node3")) == {"changed.jobs"}
    assert _snapshot(smb_cluster) == before

    text = smb_cluster.run("reconcile")
    assert ["edited.jobs", "differs", "source", "yes"] in [
        line.split() for line in text.out.splitlines()
    ]


def test_in_sync_is_one_line_and_exit_0(smb_cluster: Cluster) -> None:
    """A cluster in sync is exit 0 and a single line."""
    smb_cluster.write_job("a.jobs", b"a")
    assert smb_cluster.run("push").code == 0
    run = smb_cluster.run("reconcile")
    assert run.code == 0
    assert run.out.splitlines() == ["in sync: node2, node3 match the source (1 jobs)"]


def test_deep_finds_an_edit_that_kept_size_and_write_time(smb_cluster: Cluster) -> None:
    """An edit with the same size and write time slips past the fast mode, not past --deep."""
    smb_cluster.write_job("a.jobs", b"original content")
    assert smb_cluster.run("push").code == 0
    target: Path = smb_cluster.disk("node3") / "a.jobs"
    stat = target.stat()
    target.write_bytes(b"ORIGINAL CONTENT")  # same length
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    assert smb_cluster.run("reconcile").code == 0
    deep = smb_cluster.run("reconcile", "--deep", "--json")
    assert deep.code == 1
    assert _drift(deep.json(), "node3")["a.jobs"]["edited_on_peer"] is True

    fixed = smb_cluster.run("reconcile", "--deep", "--apply")
    assert fixed.code == 0, fixed
    assert target.read_bytes() == b"original content"
    backup = smb_cluster.disk("node3") / ".jobsync" / "backup"
    assert [p.read_bytes() for p in backup.iterdir()] == [b"ORIGINAL CONTENT"]


def test_apply_repairs_and_keeps_what_it_replaces(smb_cluster: Cluster) -> None:
    """--apply makes the peer match; hand edits go to backup, extra files to trash."""
    smb_cluster.write_job("a.jobs", b"a")
    smb_cluster.write_job("b.jobs", b"b")
    assert smb_cluster.run("push").code == 0
    node2 = smb_cluster.disk("node2")
    (node2 / "a.jobs").write_bytes(b"hand edit")
    (node2 / "stray.jobs").write_bytes(b"stray")

    applied = smb_cluster.run("reconcile", "--apply", "--json")

    assert applied.code == 0, applied
    assert applied.json()["in_sync"] is False  # what was found before the repair
    assert (node2 / "a.jobs").read_bytes() == b"a"
    assert not (node2 / "stray.jobs").exists()
    state = node2 / ".jobsync"
    assert [p.read_bytes() for p in (state / "backup").iterdir()] == [b"hand edit"]
    assert [p.read_bytes() for p in (state / "trash").iterdir()] == [b"stray"]
    assert smb_cluster.run("reconcile").code == 0


def test_unreachable_peer_is_reported_while_the_others_are_checked(smb_cluster: Cluster) -> None:
    """One peer down: exit 3, it is marked unreachable with the error, the other fully reported."""
    smb_cluster.write_job("a.jobs", b"a")
    assert smb_cluster.run("push").code == 0
    smb_cluster.write_job("a.jobs", b"a2")
    smb_cluster.smb["node2"].stop()

    run = smb_cluster.run("reconcile", "--json")

    assert run.code == 3
    peers = {p["name"]: p for p in run.json()["peers"]}
    assert peers["node2"]["reachable"] is False
    assert "cannot connect" in peers["node2"]["error"]
    assert peers["node3"]["reachable"] is True
    assert [d["file"] for d in peers["node3"]["drift"]] == ["a.jobs"]
