"""Pushing to local folders (sync/), plus injected transport failures."""

from __future__ import annotations

import errno
import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from jobsync import scan as scan_module
from jobsync.config.load import load_config
from jobsync.config.model import Config, PeerConfig
from jobsync.epoch import LocalFence
from jobsync.errors import PeerFileNotFoundError, PeerIOError, PeerUnreachableError
from jobsync.jobs_folder import Manifest, RemoteFile
from jobsync.scan import SourceScan, UnstableFileError, read_stable, scan_source
from jobsync.sync.manifests import read_manifest, write_manifest
from jobsync.sync.passes import PushOptions
from jobsync.sync.peer_sync import PeerSync, push
from jobsync.transport import default_opener
from jobsync.transport.base import FileWrite, Peer, WriteOutcome
from jobsync.transport.local import LocalPeer

from support.cluster import Cluster


def test_push_to_local_folders(local_cluster: Cluster) -> None:
    """A local or mounted folder is a peer like any other: same copies, trash and manifest."""
    local_cluster.write_job("a.jobs", b"a")
    local_cluster.write_job("b.jobs", b"b")
    assert local_cluster.run("push").code == 0
    (local_cluster.source / "b.jobs").unlink()

    run = local_cluster.run("push", "--json")

    assert run.code == 0
    for _, _, disk in local_cluster.peers:
        assert (disk / "a.jobs").read_bytes() == b"a"
        assert not (disk / "b.jobs").exists()
        assert [p.read_bytes() for p in (disk / ".jobsync" / "trash").iterdir()] == [b"b"]


def test_json_output_is_exactly_one_document(local_cluster: Cluster) -> None:
    """--json prints one JSON document on stdout and nothing else there."""
    local_cluster.write_job("a.jobs", b"a")
    run = local_cluster.run("push", "--json")
    doc = run.json()
    assert doc["exit_code"] == 0
    assert doc["source"]["files"] == 1
    assert [p["name"] for p in doc["peers"]] == ["node2", "node3"]


def test_peer_option_limits_the_push(local_cluster: Cluster) -> None:
    """--peer NAME pushes to that peer only; an unknown name is a usage error."""
    local_cluster.write_job("a.jobs", b"a")
    run = local_cluster.run("push", "--peer", "NODE3")
    assert run.code == 0
    assert not (local_cluster.disk("node2") / "a.jobs").exists()
    assert (local_cluster.disk("node3") / "a.jobs").exists()
    unknown = local_cluster.run("push", "--peer", "node9")
    assert unknown.code == 2
    assert "no such peer" in unknown.err


class FlakyPeer:
    """Wraps a real peer and refuses the writes of chosen files."""

    def __init__(self, inner: Peer, refuse: set[str]) -> None:
        """Refuse writes to the paths in ``refuse``."""
        self.name = inner.name
        self._inner = inner
        self._refuse = refuse

    def write_files(self, writes: Sequence[FileWrite]) -> list[WriteOutcome]:
        """Write the allowed files; answer "disk full" for the refused ones."""
        allowed = [w for w in writes if w.path not in self._refuse]
        done = {o.path: o for o in self._inner.write_files(allowed)}
        return [
            done.get(w.path)
            or WriteOutcome(w.path, error=PeerIOError(f"peer {self.name}: {w.path}: disk full"))
            for w in writes
        ]

    def __getattr__(self, name: str) -> object:
        """Everything else goes to the real peer."""
        return getattr(self._inner, name)


def _config(cluster: Cluster) -> Config:
    return load_config(cluster.config)


def test_one_failed_file_does_not_stop_the_rest(local_cluster: Cluster) -> None:
    """A refused file is reported as failed (exit 3); every other file still lands."""
    for name in ("a.jobs", "b.jobs", "c.jobs"):
        local_cluster.write_job(name, name.encode())

    def opener(peer: PeerConfig, timeout: float) -> Peer:
        return FlakyPeer(default_opener(peer, timeout), {"b.jobs"})  # type: ignore[return-value]

    config = _config(local_cluster)
    result = push(config, peers=config.target_peers, options=PushOptions(), opener=opener)

    assert result.exit_code == 3
    for peer in result.peers:
        assert sorted(peer.copied) == ["a.jobs", "c.jobs"]
        assert [f.file for f in peer.failed] == ["b.jobs"]
    # The manifest records only what landed, so the next push retries exactly b.jobs.
    again = push(config, peers=config.target_peers, options=PushOptions())
    assert [p.copied for p in again.peers] == [("b.jobs",), ("b.jobs",)]


def test_unreachable_peer_fails_alone(local_cluster: Cluster) -> None:
    """A peer that cannot be opened is one failed peer; the others are pushed."""
    local_cluster.write_job("a.jobs", b"a")

    def opener(peer: PeerConfig, timeout: float) -> Peer:
        if peer.name == "node2":
            raise PeerUnreachableError("peer node2: cannot connect to node2: refused")
        return default_opener(peer, timeout)

    config = _config(local_cluster)
    result = push(config, peers=config.target_peers, options=PushOptions(), opener=opener)

    assert result.exit_code == 3
    assert [p.error for p in result.peers] == [
        "peer node2: cannot connect to node2: refused",
        None,
    ]
    assert (local_cluster.disk("node3") / "a.jobs").exists()


def test_backup_failure_blocks_the_overwrite(local_cluster: Cluster) -> None:
    """If a hand edit cannot be kept, it is not overwritten: a refusal, never a loss."""
    local_cluster.write_job("a.jobs", b"source")
    assert local_cluster.run("push").code == 0
    edited = local_cluster.disk("node2") / "a.jobs"
    edited.write_bytes(b"precious hand edit")

    class NoBackups(FlakyPeer):
        def write_files(self, writes: Sequence[FileWrite]) -> list[WriteOutcome]:
            if any(w.path.startswith(".jobsync/backup/") for w in writes):
                return [WriteOutcome(w.path, error=PeerIOError("disk full")) for w in writes]
            return self._inner.write_files(writes)

    def opener(peer: PeerConfig, timeout: float) -> Peer:
        return NoBackups(default_opener(peer, timeout), set())  # type: ignore[return-value]

    config = _config(local_cluster)
    result = push(config, peers=config.target_peers, options=PushOptions(), opener=opener)

    assert result.exit_code == 3
    assert edited.read_bytes() == b"precious hand edit"


def test_unstable_source_file_is_never_read_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file whose write time moves during every read is given up on, not copied."""
    path = tmp_path / "busy.jobs"
    path.write_bytes(b"v0")
    real_fstat = os.fstat
    ticks = itertools.count(1)

    def fstat_with_a_writer(fd: int) -> os.stat_result:
        result = real_fstat(fd)
        os.utime(path, ns=(next(ticks) * 10**9,) * 2)  # a writer touches it between two looks
        return result

    monkeypatch.setattr(os, "fstat", fstat_with_a_writer)
    with pytest.raises(UnstableFileError):
        read_stable(path, pause=lambda _s: None)


def test_scan_skips_unreadable_and_invalid_names(tmp_path: Path) -> None:
    """An unreadable job or a name Windows cannot store is skipped with a reason; the rest scan."""
    (tmp_path / "good.jobs").write_bytes(b"ok")
    (tmp_path / "bad:name.jobs").write_bytes(b"x")
    (tmp_path / "folder.jobs").mkdir()
    (tmp_path / "dangling.jobs").symlink_to(tmp_path / "nowhere")

    scan = scan_source(tmp_path, "*.jobs")

    assert [f.name for f in scan.files] == ["good.jobs"]
    reasons: Mapping[str, str] = {s.name: s.reason for s in scan.skipped}
    assert "not valid on Windows" in reasons["bad:name.jobs"]
    assert "cannot be read" in reasons["dangling.jobs"]


@pytest.mark.parametrize("links", [True, False], ids=["hard-links", "no-hard-links"])
def test_local_move_never_replaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, links: bool
) -> None:
    """Moving into trash refuses an existing target, with or without hard-link support."""
    if not links:

        def no_link(_src: object, _dst: object) -> None:
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_link)
    peer = LocalPeer("node2", tmp_path)
    (tmp_path / "a.jobs").write_bytes(b"a")
    (tmp_path / "b.jobs").write_bytes(b"b")
    (tmp_path / "c.jobs").write_bytes(b"c")

    outcome = peer.move_files([("a.jobs", "b.jobs"), ("c.jobs", "d.jobs")])

    assert outcome["a.jobs"] is not None
    assert "already exists" in str(outcome["a.jobs"])
    assert outcome["c.jobs"] is None
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {
        "a.jobs": b"a",
        "b.jobs": b"b",
        "d.jobs": b"c",
    }


def test_a_missing_file_is_told_apart_from_other_read_errors(tmp_path: Path) -> None:
    """Only "not there" lets a pass over names go on; any other error sends it to a full pass."""
    peer = LocalPeer("node2", tmp_path)
    (tmp_path / "locked.jobs").mkdir()  # reading a folder fails, and not as "not found"
    read = peer.read_files(["gone.jobs", "locked.jobs"])
    assert isinstance(read["gone.jobs"], PeerFileNotFoundError)
    assert isinstance(read["locked.jobs"], PeerIOError)
    assert not isinstance(read["locked.jobs"], PeerFileNotFoundError)


def test_a_source_file_held_by_another_program_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sharing violation (a writer or antivirus holding the file) is retried with backoff."""
    (tmp_path / "held.jobs").write_bytes(b"content")
    real = scan_module.read_stable
    refusals = {"left": 2}

    def briefly_locked(path: Path, **kwargs: object) -> object:
        if refusals["left"]:
            refusals["left"] -= 1
            raise PermissionError(13, "The process cannot access the file")
        return real(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scan_module, "read_stable", briefly_locked)
    scan = scan_source(tmp_path, "*.jobs", pause=lambda _s: None)
    assert [f.name for f in scan.files] == ["held.jobs"]

    refusals["left"] = 100  # held for good: skipped with the reason, left to the next pass
    (tmp_path / "held.jobs").write_bytes(b"changed")
    scan = scan_source(tmp_path, "*.jobs", pause=lambda _s: None)
    assert scan.files == ()
    assert "held by another program" in scan.skipped[0].reason


class ListingCounter(FlakyPeer):
    """Wraps a real peer and notes every folder it is asked to list."""

    def __init__(self, inner: Peer) -> None:
        """Refuse nothing; note listings in ``listed``."""
        super().__init__(inner, set())
        self.listed: list[str] = []

    def list_files(self, folder: str = "") -> list[RemoteFile]:
        """List through the real peer, noting the folder."""
        self.listed.append(folder)
        return self._inner.list_files(folder)


def _peer_sync(config: Config, target: PeerConfig) -> PeerSync:
    """The agent's per-peer sync for ``target``, fenced by the source's own epoch record."""
    return PeerSync(
        target, config=config, options=PushOptions(), fence=LocalFence(config.source, config.node)
    )


def test_a_pass_over_changed_names_skips_the_listing_but_not_the_safety(
    local_cluster: Cluster,
) -> None:
    """After a clean pass, a pass over named jobs does not list the peer's jobs folder.

    A named job edited by hand on the peer still sends the pass to the full plan, which keeps
    the edit in backup; a named job deleted at the source still goes to the trash.
    """
    local_cluster.write_job("a.jobs", b"a1")
    local_cluster.write_job("b.jobs", b"b1")
    config = _config(local_cluster)
    target = config.target_peers[0]
    disk = local_cluster.disk(target.name)
    sync = _peer_sync(config, target)
    peer = ListingCounter(default_opener(target, 5))

    def scan() -> SourceScan:
        return scan_source(config.source, config.pattern)

    assert sorted(sync.sync(peer, scan()).copied) == ["a.jobs", "b.jobs"]  # type: ignore[arg-type]

    peer.listed.clear()
    local_cluster.write_job("a.jobs", b"a2")
    result = sync.sync(peer, scan(), names={"a.jobs"})  # type: ignore[arg-type]
    assert (result.status, result.copied) == ("ok", ("a.jobs",))
    assert "" not in peer.listed
    assert (disk / "a.jobs").read_bytes() == b"a2"

    (disk / "b.jobs").write_bytes(b"edited by hand")
    local_cluster.write_job("b.jobs", b"b2")
    result = sync.sync(peer, scan(), names={"b.jobs"})  # type: ignore[arg-type]
    assert (result.copied, result.backed_up) == (("b.jobs",), ("b.jobs",))
    assert "" in peer.listed
    backups = (disk / ".jobsync" / "backup").iterdir()
    assert [p.read_bytes() for p in backups] == [b"edited by hand"]

    peer.listed.clear()
    (config.source / "a.jobs").unlink()
    result = sync.sync(peer, scan(), names={"a.jobs"})  # type: ignore[arg-type]
    assert result.deleted == ("a.jobs",)
    assert "" not in peer.listed
    assert [p.read_bytes() for p in (disk / ".jobsync" / "trash").iterdir()] == [b"a2"]


def test_a_pass_over_changed_names_is_fenced_by_a_takeover(local_cluster: Cluster) -> None:
    """A manifest another node rewrote (a takeover) is reread and fences a pass over names."""
    local_cluster.write_job("a.jobs", b"a1")
    config = _config(local_cluster)
    target = config.target_peers[0]
    sync = _peer_sync(config, target)
    peer = default_opener(target, 5)
    assert sync.sync(peer, scan_source(config.source, config.pattern)).status == "ok"
    taken, _ = read_manifest(peer)
    write_manifest(peer, replace(taken, epoch=7, owner="node9"), temp=".jobsync/tmp/t.tmp")

    local_cluster.write_job("a.jobs", b"a2")
    scan = scan_source(config.source, config.pattern)
    result = sync.sync(peer, scan, names={"a.jobs"})

    assert result.refused is not None
    assert "node9 took over at epoch 7" in result.refused
    assert (local_cluster.disk(target.name) / "a.jobs").read_bytes() == b"a1"


def test_a_job_not_kept_in_memory_is_read_again_and_never_sent_changed(
    local_cluster: Cluster,
) -> None:
    """The agent keeps hashes, not contents: a job is read again when sent, checked by hash.

    One that changed since it was scanned is not sent (a failure the next pass clears).
    """
    local_cluster.write_job("a.jobs", b"as scanned")
    local_cluster.write_job("b.jobs", b"b")
    config = _config(local_cluster)
    target = config.target_peers[0]
    disk = local_cluster.disk(target.name)
    sync = _peer_sync(config, target)
    peer = default_opener(target, 5)
    scan = scan_source(config.source, config.pattern, keep_content=False)
    assert all(f.content is None for f in scan.files)
    local_cluster.write_job("a.jobs", b"saved again since")

    result = sync.sync(peer, scan)

    assert result.copied == ("b.jobs",)
    assert [(f.file, "changed since it was read" in f.reason) for f in result.failed] == [
        ("a.jobs", True)
    ]
    assert not (disk / "a.jobs").exists()
    again = sync.sync(peer, scan_source(config.source, config.pattern, keep_content=False))
    assert (again.status, again.copied) == ("ok", ("a.jobs",))
    assert (disk / "a.jobs").read_bytes() == b"saved again since"


def test_a_deferred_manifest_is_saved_later_and_its_loss_costs_only_reads(
    local_cluster: Cluster,
) -> None:
    """A pass over names may leave the manifest in memory; saving it later records the copy.

    If it is never saved (a crash), the next run reads the file again and adopts it: nothing
    is copied twice, nothing is kept as a hand edit.
    """
    local_cluster.write_job("a.jobs", b"a1")
    local_cluster.write_job("b.jobs", b"b1")
    config = _config(local_cluster)
    target = config.target_peers[0]
    manifest_file = local_cluster.disk(target.name) / ".jobsync" / "manifest.json"

    def new_sync() -> PeerSync:
        fence = LocalFence(config.source, config.node)
        options = PushOptions()
        return PeerSync(target, config=config, options=options, fence=fence, defer_manifest=True)

    def scan() -> SourceScan:
        return scan_source(config.source, config.pattern, keep_content=False)

    sync, peer = new_sync(), default_opener(target, 5)
    assert sync.sync(peer, scan()).status == "ok"
    saved = manifest_file.read_bytes()
    local_cluster.write_job("a.jobs", b"a2")
    assert sync.sync(peer, scan(), names={"a.jobs"}).copied == ("a.jobs",)
    assert sync.unsaved_since is not None
    assert manifest_file.read_bytes() == saved  # deferred

    sync.save_deferred(peer)
    assert sync.unsaved_since is None
    recorded, _ = read_manifest(peer)
    entry = recorded.get("a.jobs")
    assert entry is not None
    assert entry.sha256 == scan().by_key["a.jobs"].sha256

    local_cluster.write_job("b.jobs", b"b2")
    assert sync.sync(peer, scan(), names={"b.jobs"}).copied == ("b.jobs",)
    # A crash now: the deferred record is lost; a new run adopts what landed.
    again = new_sync().sync(peer, scan())
    assert (again.status, again.copied, again.backed_up) == ("ok", (), ())
    assert not (local_cluster.disk(target.name) / ".jobsync" / "backup").exists()


def test_a_deferred_manifest_never_overwrites_a_takeover(local_cluster: Cluster) -> None:
    """A manifest another node rewrote meanwhile stands; the next pass is fenced by it."""
    local_cluster.write_job("a.jobs", b"a1")
    config = _config(local_cluster)
    target = config.target_peers[0]
    fence = LocalFence(config.source, config.node)
    sync = PeerSync(target, config=config, options=PushOptions(), fence=fence, defer_manifest=True)
    peer = default_opener(target, 5)
    assert sync.sync(peer, scan_source(config.source, config.pattern)).status == "ok"
    local_cluster.write_job("a.jobs", b"a2")
    scan = scan_source(config.source, config.pattern)
    assert sync.sync(peer, scan, names={"a.jobs"}).copied == ("a.jobs",)
    taken, _ = read_manifest(peer)
    write_manifest(peer, replace(taken, epoch=7, owner="node9"), temp=".jobsync/tmp/t.tmp")

    sync.save_deferred(peer)

    assert read_manifest(peer)[0].owner == "node9"
    result = sync.sync(peer, scan, names={"a.jobs"})
    assert result.refused is not None
    assert "node9 took over at epoch 7" in result.refused


def test_a_node_that_sees_a_winning_claim_is_fenced_on_every_peer(local_cluster: Cluster) -> None:
    """Once one peer names an owner whose claim outranks this node's, no other peer is written.

    node0 took over at epoch 1 and could record it on node2 only; node1 (epoch 0) is refused on
    node2, and then on node3 too, although node3's manifest says nothing of node0.
    """
    local_cluster.write_job("a.jobs", b"a")
    config = _config(local_cluster)
    node2, node3 = config.target_peers
    peer2, peer3 = default_opener(node2, 5), default_opener(node3, 5)
    peer2.make_dirs(".jobsync/tmp")
    write_manifest(peer2, Manifest(owner="node0", epoch=1), temp=".jobsync/tmp/m.tmp")
    fence = LocalFence(config.source, config.node)
    scan = scan_source(config.source, config.pattern)

    on2 = PeerSync(node2, config=config, options=PushOptions(), fence=fence).sync(peer2, scan)
    on3 = PeerSync(node3, config=config, options=PushOptions(), fence=fence).sync(peer3, scan)

    assert on2.refused is not None
    assert on2.refused.startswith("node0 took over at epoch 1")
    assert on3.refused == on2.refused
    assert not (local_cluster.disk("node3") / "a.jobs").exists()
    assert not (local_cluster.disk("node3") / ".jobsync").exists()
