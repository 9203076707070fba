"""`jobsync push` against real smbd peers on loopback: the foundation's promises."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from support.cluster import Cluster, leftover_temps

pytestmark = pytest.mark.smb

MTIME = 1_700_000_000_123_456_700  # 100 ns precision, as SMB carries it


def _jobs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _state(folder: Path, sub: str) -> dict[str, bytes]:
    path = folder / ".jobsync" / sub
    return {p.name: p.read_bytes() for p in path.iterdir()} if path.is_dir() else {}


def test_fresh_push_is_byte_identical_and_keeps_write_times(smb_cluster: Cluster) -> None:
    """A first push puts every job on every peer, byte for byte, with the source's write time."""
    jobs = {f"job{i}.jobs": os.urandom(500 + 37 * i) for i in range(40)}
    jobs["empty.jobs"] = b""
    jobs["Report Weekly.JOBS"] = b"upper-case extension and a space"
    for name, content in jobs.items():
        smb_cluster.write_job(name, content, mtime_ns=MTIME)
    smb_cluster.write_job("notes.txt", b"not a job")

    run = smb_cluster.run("push")

    assert run.code == 0, run
    for name, _, disk in smb_cluster.peers:
        assert _jobs(disk) == jobs, name
        for job in jobs:
            assert (disk / job).stat().st_mtime_ns == MTIME, job
        manifest = json.loads((disk / ".jobsync" / "manifest.json").read_text())
        assert (
            manifest["files"]["job3.jobs"]["sha256"]
            == hashlib.sha256(jobs["job3.jobs"]).hexdigest()
        )
        assert manifest["files"]["job3.jobs"]["origin"] == "node1"
        assert leftover_temps(disk) == []


def test_second_push_rewrites_nothing(smb_cluster: Cluster) -> None:
    """When nothing changed, a push writes no file on any peer (not even the manifest)."""
    for i in range(10):
        smb_cluster.write_job(f"j{i}.jobs", f"job {i}".encode())
    assert smb_cluster.run("push").code == 0
    before = {
        name: {p.name: p.stat().st_ino for p in disk.rglob("*") if p.is_file()}
        for name, _, disk in smb_cluster.peers
    }

    run = smb_cluster.run("push", "--json")

    assert run.code == 0
    doc = run.json()
    assert [(p["copied"], p["unchanged"]) for p in doc["peers"]] == [([], 10), ([], 10)]
    after = {
        name: {p.name: p.stat().st_ino for p in disk.rglob("*") if p.is_file()}
        for name, _, disk in smb_cluster.peers
    }
    assert after == before


def test_change_and_delete_propagate_and_deleted_content_is_kept(smb_cluster: Cluster) -> None:
    """A changed job is replaced, a deleted one moves to the peer's trash with its content."""
    for i in range(4):
        smb_cluster.write_job(f"j{i}.jobs", f"version 1 of {i}".encode())
    assert smb_cluster.run("push").code == 0
    smb_cluster.write_job("j0.jobs", b"version 2 of 0")
    (smb_cluster.source / "j1.jobs").unlink()

    run = smb_cluster.run("push", "--json")

    assert run.code == 0, run
    for name, _, disk in smb_cluster.peers:
        assert _jobs(disk) == {
            "j0.jobs": b"version 2 of 0",
            "j2.jobs": b"version 1 of 2",
            "j3.jobs": b"version 1 of 3",
        }, name
        trash = _state(disk, "trash")
        assert list(trash.values()) == [b"version 1 of 1"]
        assert next(iter(trash)).startswith("j1.jobs.")
    peer = run.json()["peers"][0]
    assert (peer["copied"], peer["deleted"]) == (["j0.jobs"], ["j1.jobs"])


def test_hand_edit_on_peer_is_restored_and_kept(smb_cluster: Cluster) -> None:
    """A peer file edited by hand is replaced by the source's, and the edit lands in backup."""
    smb_cluster.write_job("a.jobs", b"the source's version")
    assert smb_cluster.run("push").code == 0
    edited = smb_cluster.disk("node2") / "a.jobs"
    edited.write_bytes(b"someone edited this on node2")

    run = smb_cluster.run("push", "--json")

    assert run.code == 0, run
    assert edited.read_bytes() == b"the source's version"
    assert list(_state(smb_cluster.disk("node2"), "backup").values()) == [
        b"someone edited this on node2"
    ]
    peers = {p["name"]: p for p in run.json()["peers"]}
    assert peers["node2"]["backed_up"] == ["a.jobs"]
    assert peers["node3"]["copied"] == []


def test_unrecorded_peer_files_are_adopted_or_kept(smb_cluster: Cluster) -> None:
    """Jobs copied by hand before jobsync: identical ones are adopted, different ones kept."""
    smb_cluster.write_job("same.jobs", b"identical")
    smb_cluster.write_job("other.jobs", b"source version")
    disk = smb_cluster.disk("node2")
    (disk / "same.jobs").write_bytes(b"identical")
    (disk / "other.jobs").write_bytes(b"hand-copied long ago")

    run = smb_cluster.run("push", "--json")

    assert run.code == 0
    node2 = next(p for p in run.json()["peers"] if p["name"] == "node2")
    assert node2["copied"] == ["other.jobs"]
    assert node2["unchanged"] == 1
    assert list(_state(disk, "backup").values()) == [b"hand-copied long ago"]


def test_dry_run_changes_nothing(smb_cluster: Cluster) -> None:
    """--dry-run reports what would change and leaves every peer exactly as it was."""
    smb_cluster.write_job("a.jobs", b"a")
    smb_cluster.write_job("b.jobs", b"b")
    assert smb_cluster.run("push").code == 0
    smb_cluster.write_job("a.jobs", b"a2")
    (smb_cluster.source / "b.jobs").unlink()
    smb_cluster.write_job("c.jobs", b"c")
    (smb_cluster.disk("node2") / "a.jobs").write_bytes(b"edited on node2")
    snapshot = {
        name: sorted((str(p), p.stat().st_mtime_ns) for p in disk.rglob("*"))
        for name, _, disk in smb_cluster.peers
    }

    run = smb_cluster.run("push", "--dry-run", "--json")

    assert run.code == 0
    peer = run.json()["peers"][0]
    assert sorted(peer["copied"]) == ["a.jobs", "c.jobs"]
    assert peer["deleted"] == ["b.jobs"]
    assert run.json()["dry_run"] is True
    after = {
        name: sorted((str(p), p.stat().st_mtime_ns) for p in disk.rglob("*"))
        for name, _, disk in smb_cluster.peers
    }
    assert after == snapshot
    text = smb_cluster.run("push", "--dry-run")
    assert "(would keep 1 peer edit(s) in .jobsync/backup)" in text.out
    assert "(kept" not in text.out
    assert smb_cluster.run("reconcile").code == 1  # still as it was


def test_peer_never_shows_a_partial_job(smb_cluster: Cluster) -> None:
    """While a push runs, every *.jobs name on a peer holds a complete version; temps never match.

    A watcher lists the peer folder as fast as it can during pushes of changing content and
    checks every job it sees against the versions the source really had.
    """
    versions: dict[str, set[bytes]] = {}
    names = [f"big{i}.jobs" for i in range(30)]
    disk = smb_cluster.disk("node2")
    seen_bad: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for path in disk.iterdir():
                if path.name.lower().endswith(".jobs"):
                    try:
                        data = path.read_bytes()
                    except FileNotFoundError:
                        continue
                    if data not in versions.get(path.name, set()):
                        seen_bad.append(path.name)

    for name in names:
        versions[name] = set()
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for round_ in range(3):
            for name in names:
                content = (f"{name} round {round_} ".encode()) * 3000  # ~60 KB, many chunks
                versions[name].add(content)
                smb_cluster.write_job(name, content)
            assert smb_cluster.run("push").code == 0
    finally:
        stop.set()
        watcher.join()
    assert seen_bad == []
    assert {p.name for p in disk.iterdir() if p.is_file()} == set(names)


def test_large_job_crosses_intact(smb_cluster: Cluster) -> None:
    """A job far larger than one SMB request (20 MB) arrives whole and verified."""
    content = os.urandom(20 * 1024 * 1024)
    smb_cluster.write_job("huge.jobs", content, mtime_ns=MTIME)

    run = smb_cluster.run("push")

    assert run.code == 0, run
    for _, _, disk in smb_cluster.peers:
        assert (disk / "huge.jobs").read_bytes() == content
        assert (disk / "huge.jobs").stat().st_mtime_ns == MTIME


def test_mass_delete_is_refused(smb_cluster: Cluster) -> None:
    """Deleting more than max_delete_ratio of a peer's jobs deletes nothing and exits 4."""
    for i in range(10):
        smb_cluster.write_job(f"j{i}.jobs", b"x")
    assert smb_cluster.run("push").code == 0
    for i in range(6):
        (smb_cluster.source / f"j{i}.jobs").unlink()

    run = smb_cluster.run("push", "--json")

    assert run.code == 4
    for _, _, disk in smb_cluster.peers:
        assert len(_jobs(disk)) == 10
    assert "max_delete_ratio" in run.json()["peers"][0]["refused"]

    allowed = smb_cluster.run("push", "--allow-mass-delete")
    assert allowed.code == 0
    for _, _, disk in smb_cluster.peers:
        assert len(_jobs(disk)) == 4
        assert len(_state(disk, "trash")) == 6


def test_missing_source_deletes_nothing(smb_cluster: Cluster) -> None:
    """A missing source folder is exit 2 and no peer loses a file."""
    smb_cluster.write_job("a.jobs", b"a")
    assert smb_cluster.run("push").code == 0
    shutil.rmtree(smb_cluster.source)  # with the .jobsync/node.json the push left there

    run = smb_cluster.run("push")

    assert run.code == 2
    assert "does not exist" in run.err
    for _, _, disk in smb_cluster.peers:
        assert _jobs(disk) == {"a.jobs": b"a"}


def test_temp_files_of_an_interrupted_run_are_cleared(smb_cluster: Cluster) -> None:
    """Leftover temp files from a killed run are removed by the next push, and nothing else is.

    A job being written sits beside the jobs as ``.jobsync-<run>-<n>.tmp``; anything under
    ``.jobsync/tmp`` is jobsync's own too. A file that only looks alike stays.
    """
    smb_cluster.write_job("a.jobs", b"a")
    assert smb_cluster.run("push").code == 0
    folder = smb_cluster.disk("node2")
    (folder / ".jobsync-deadbeef-1.tmp").write_bytes(b"half a jo")
    (folder / ".jobsync" / "tmp" / "deadbeef-2.tmp").write_bytes(b"half a manifest")
    (folder / "jobsync-deadbeef-1.tmp").write_bytes(b"not ours")

    assert smb_cluster.run("push").code == 0

    assert leftover_temps(folder) == []
    assert (folder / "jobsync-deadbeef-1.tmp").read_bytes() == b"not ours"


def test_corrupt_manifest_is_set_aside_and_rebuilt(smb_cluster: Cluster) -> None:
    """A manifest that does not parse is kept aside, never trusted, and rebuilt."""
    smb_cluster.write_job("a.jobs", b"a")
    assert smb_cluster.run("push").code == 0
    state = smb_cluster.disk("node2") / ".jobsync"
    (state / "manifest.json").write_text('{"format": 1, "files": {"../../etc/x": {}}}')

    run = smb_cluster.run("push")

    assert run.code == 0, run
    assert any(p.name.endswith(".corrupt") for p in state.iterdir())
    assert "a.jobs" in json.loads((state / "manifest.json").read_text())["files"]


def _from_a_newer_jobsync(manifest: Path) -> bytes:
    """Rewrite ``manifest`` as a later format would look to this jobsync; its new bytes."""
    doc = json.loads(manifest.read_text())
    doc["format"] = 3
    doc["claims"] = {"node4": 9}  # something this jobsync cannot know how to keep
    data = json.dumps(doc).encode()
    manifest.write_bytes(data)
    return data


def test_a_manifest_from_a_newer_jobsync_is_left_alone_and_the_push_refused(
    smb_cluster: Cluster,
) -> None:
    """An older node leaves a newer jobsync's folder untouched (exit 4); other peers go on."""
    smb_cluster.write_job("a.jobs", b"a")
    assert smb_cluster.run("push").code == 0
    node2 = smb_cluster.disk("node2")
    newer = _from_a_newer_jobsync(node2 / ".jobsync" / "manifest.json")
    smb_cluster.write_job("b.jobs", b"b")

    for attempt in range(2):  # refused the same way every time: nothing is set aside
        run = smb_cluster.run("push")
        assert run.code == 4, run
        assert "written by a newer jobsync (manifest format 3" in run.out + run.err, attempt
        assert (node2 / ".jobsync" / "manifest.json").read_bytes() == newer
        assert sorted(_jobs(node2)) == ["a.jobs"]
        assert not any(p.name.endswith(".corrupt") for p in (node2 / ".jobsync").iterdir())
        assert sorted(_jobs(smb_cluster.disk("node3"))) == ["a.jobs", "b.jobs"]

    reconcile = smb_cluster.run("reconcile")
    assert "manifest not trusted: newer: written by a newer jobsync" in reconcile.out, reconcile
    takeover = smb_cluster.run("takeover")
    assert takeover.code == 4, takeover
    assert "a newer jobsync wrote the manifest of node2" in takeover.out + takeover.err
    assert (node2 / ".jobsync" / "manifest.json").read_bytes() == newer


def test_check_reports_each_peer(smb_cluster: Cluster) -> None:
    """`jobsync check` says this node's role, then proves each peer can take a push, a line each."""
    started = time.monotonic()
    run = smb_cluster.run("check")
    assert run.code == 0, run
    head, *lines = run.out.splitlines()
    assert head.startswith("node1 (host "), head
    assert head.endswith(' is active: mode = "always"'), head
    assert [line.split()[:2] for line in lines] == [["node2", "OK"], ["node3", "OK"]]
    assert all("(SMB 3.1.1, encrypted with AES-128-GCM)" in line for line in lines), lines
    assert time.monotonic() - started < 30
    for _, _, disk in smb_cluster.peers:
        assert leftover_temps(disk) == []


@pytest.mark.parametrize("form", ["extended", "forward-slashes"])
def test_other_unc_forms_push_to_samba(smb_cluster: Cluster, form: str) -> None:
    r"""A peer written as \\?\UNC\host\share\folder or //host/share/folder: the same share."""
    name, unc, disk = smb_cluster.peers[0]
    written = "\\\\?\\UNC\\" + unc[2:] if form == "extended" else unc.replace("\\", "/")
    smb_cluster.peers[0] = (name, written, disk)
    smb_cluster.write_job("a.jobs", b"a")

    run = smb_cluster.run("push")

    assert run.code == 0, run
    assert (disk / "a.jobs").read_bytes() == b"a"
