"""Versions, drift and takeover planning with plain values: epochs beat clocks."""

from __future__ import annotations

import hashlib

from jobsync.jobs_folder import Manifest, ManifestEntry, RemoteFile, Tombstone
from jobsync.plan import Kind, find_drift
from jobsync.scan import SourceFile
from jobsync.versions import Newer, PeerFolder, Version, plan_takeover, which_is_newer


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _src(name: str, data: bytes, mtime: int) -> SourceFile:
    return SourceFile(name, len(data), mtime, _sha(data), data)


def _entry(name: str, data: bytes, mtime: int, *, epoch: int, origin: str = "A") -> ManifestEntry:
    return ManifestEntry(name, _sha(data), len(data), mtime, origin, "", epoch)


def _manifest(
    *entries: ManifestEntry, tombs: tuple[Tombstone, ...] = (), epoch: int = 0, owner: str = "A"
) -> Manifest:
    return Manifest(
        entries={e.name: e for e in entries},
        tombstones={t.name: t for t in tombs},
        epoch=epoch,
        owner=owner,
    )


def test_a_later_epoch_wins_whatever_the_clock_says() -> None:
    """Epoch first, time second; equal versions are 'unknown'; a hand edit never wins."""
    old_epoch_late_clock = Version(epoch=1, time_ns=9_000)
    new_epoch_early_clock = Version(epoch=2, time_ns=1)
    assert which_is_newer(old_epoch_late_clock, new_epoch_early_clock) is Newer.PEER
    assert which_is_newer(new_epoch_early_clock, old_epoch_late_clock) is Newer.SOURCE
    assert which_is_newer(Version(1, 5), Version(1, 5)) is Newer.UNKNOWN
    assert which_is_newer(Version(0, 5), None) is Newer.SOURCE


def test_a_change_that_never_reached_the_source_is_newer_on_the_peer() -> None:
    """B holds A's v1; C holds A's later v2 (same epoch): C is newer, as is C's deletion."""
    local = _manifest(_entry("x.jobs", b"v1", 100, epoch=0), _entry("y.jobs", b"y", 100, epoch=0))
    source = [_src("x.jobs", b"v1", 100), _src("y.jobs", b"y", 100)]
    peer_manifest = _manifest(
        _entry("x.jobs", b"v2", 200, epoch=0),
        tombs=(Tombstone("y.jobs", "A", 0, 300),),
    )
    peer_files = [RemoteFile("x.jobs", 2, 200)]
    drift = find_drift(source, local, peer_files, peer_manifest, peer_hashes={}, node="B", epoch=0)
    assert [(d.file, d.kind, d.newer) for d in drift] == [
        ("x.jobs", Kind.DIFFERS, Newer.PEER),
        ("y.jobs", Kind.MISSING, Newer.PEER),
    ]


def test_takeover_plan_pulls_newer_versions_and_honours_deletions() -> None:
    """Newest version per job: pulled from the peer that has it; tombstones delete locally."""
    local = _manifest(_entry("x.jobs", b"v1", 100, epoch=0), _entry("y.jobs", b"y", 100, epoch=0))
    source = [
        _src("x.jobs", b"v1", 100),
        _src("y.jobs", b"y", 100),
        _src("z.jobs", b"z", 100),
    ]
    c_view = PeerFolder(
        files=(RemoteFile("x.jobs", 2, 200), RemoteFile("z.jobs", 1, 100)),
        manifest=_manifest(
            _entry("x.jobs", b"v2", 200, epoch=0),
            _entry("z.jobs", b"z", 100, epoch=0),
            tombs=(Tombstone("y.jobs", "A", 0, 300),),
        ),
    )
    _, actions = plan_takeover(source, local, {"C": c_view}, node="B", epoch=0)
    assert [(a.file, a.kind, a.choice.where) for a in actions] == [
        ("x.jobs", "pull", "C"),
        ("y.jobs", "delete", "C"),
    ]


def test_takeover_ignores_hand_edits_and_keeps_ties_local() -> None:
    """A copy whose size or time no longer matches its record is no version; ties change nothing."""
    local = _manifest(_entry("x.jobs", b"v1", 100, epoch=0))
    source = [_src("x.jobs", b"v1", 100)]
    edited = PeerFolder(
        files=(RemoteFile("x.jobs", 99, 999),),
        manifest=_manifest(_entry("x.jobs", b"v9", 999, epoch=5)),
    )
    same = PeerFolder(files=(RemoteFile("x.jobs", 2, 100),), manifest=local)
    _, actions = plan_takeover(source, local, {"C": edited, "D": same}, node="B", epoch=0)
    assert actions == []
