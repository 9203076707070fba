"""The planner, with plain values: what each peer needs, and what must be kept first."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from jobsync.jobs_folder import Manifest, ManifestEntry, RemoteFile
from jobsync.plan import PeerPlan, Reason, files_to_read, plan_names, plan_peer
from jobsync.scan import SourceFile


def _src(name: str, content: bytes, mtime: int = 1000) -> SourceFile:
    return SourceFile(
        name=name,
        size=len(content),
        mtime_ns=mtime,
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
    )


def _peer(name: str, content: bytes, mtime: int = 1000) -> RemoteFile:
    return RemoteFile(name, len(content), mtime)


def _manifest(*files: tuple[str, bytes, int]) -> Manifest:
    entries = {
        name.casefold(): ManifestEntry(
            name=name,
            sha256=hashlib.sha256(content).hexdigest(),
            size=len(content),
            mtime_ns=mtime,
            origin="node1",
            written="2026-01-01T00:00:00+00:00",
        )
        for name, content, mtime in files
    }
    return Manifest(node="node1", entries=entries)


def _sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_missing_files_are_copied() -> None:
    """A source file the peer lacks is copied, with no read and no backup."""
    source = [_src("a.jobs", b"a")]
    assert files_to_read(source, [], Manifest()) == []
    plan = plan_peer(source, [], Manifest(), peer_hashes={}, max_delete_ratio=0.5)
    assert [(c.source.name, c.reason) for c in plan.copies] == [("a.jobs", Reason.MISSING)]


def test_vouched_identical_files_are_left_alone_without_reading() -> None:
    """A peer file that matches its manifest record and the source needs no read and no copy."""
    source = [_src("a.jobs", b"a")]
    peer = [_peer("a.jobs", b"a")]
    manifest = _manifest(("a.jobs", b"a", 1000))
    assert files_to_read(source, peer, manifest) == []
    plan = plan_peer(source, peer, manifest, peer_hashes={}, max_delete_ratio=0.5)
    assert plan.is_noop
    assert [f.name for f in plan.unchanged] == ["a.jobs"]


def test_vouched_older_version_is_replaced_without_backup() -> None:
    """A version jobsync wrote earlier is simply replaced: the source had it, nothing is lost."""
    source = [_src("a.jobs", b"new")]
    peer = [_peer("a.jobs", b"old")]
    manifest = _manifest(("a.jobs", b"old", 1000))
    plan = plan_peer(source, peer, manifest, peer_hashes={}, max_delete_ratio=0.5)
    assert [(c.reason, c.backup_of) for c in plan.copies] == [(Reason.CHANGED, None)]


def test_edited_peer_file_is_read_and_backed_up() -> None:
    """A peer file whose size or time no longer matches its record is read; if different, kept."""
    source = [_src("a.jobs", b"source")]
    peer = [_peer("a.jobs", b"edited!", mtime=2000)]
    manifest = _manifest(("a.jobs", b"source", 1000))
    assert files_to_read(source, peer, manifest) == peer
    plan = plan_peer(
        source, peer, manifest, peer_hashes={"a.jobs": _sha(b"edited!")}, max_delete_ratio=0.5
    )
    assert [(c.reason, c.backup_of) for c in plan.copies] == [(Reason.EDITED, peer[0])]


def test_unrecorded_identical_file_is_unchanged() -> None:
    """A file already identical but never recorded (copied by hand) is not rewritten."""
    source = [_src("a.jobs", b"same")]
    peer = [_peer("a.jobs", b"same", mtime=5)]
    plan = plan_peer(
        source, peer, Manifest(), peer_hashes={"a.jobs": _sha(b"same")}, max_delete_ratio=0.5
    )
    assert plan.is_noop


def test_unreadable_differing_file_is_not_replaced() -> None:
    """A file that cannot be read cannot be kept, so it is not replaced: refusal over guess."""
    source = [_src("a.jobs", b"source")]
    peer = [_peer("a.jobs", b"locked", mtime=7)]
    plan = plan_peer(source, peer, Manifest(), peer_hashes={"a.jobs": None}, max_delete_ratio=0.5)
    assert plan.copies == ()
    assert plan.unreadable == (peer[0],)


def test_names_compare_case_insensitively() -> None:
    """`A.JOBS` on the peer is the same job as `a.jobs` in the source, as on Windows."""
    source = [_src("a.jobs", b"x")]
    peer = [_peer("A.JOBS", b"x")]
    manifest = _manifest(("A.JOBS", b"x", 1000))
    plan = plan_peer(source, peer, manifest, peer_hashes={}, max_delete_ratio=0.5)
    assert plan.is_noop
    assert plan.deletes == ()


def test_deletions_within_the_ratio_go_ahead() -> None:
    """Removing half of a peer's jobs at a ratio of 0.5 is allowed."""
    source = [_src("a.jobs", b"a")]
    peer = [_peer("a.jobs", b"a"), _peer("b.jobs", b"b")]
    manifest = _manifest(("a.jobs", b"a", 1000), ("b.jobs", b"b", 1000))
    plan = plan_peer(source, peer, manifest, peer_hashes={}, max_delete_ratio=0.5)
    assert [f.name for f in plan.deletes] == ["b.jobs"]
    assert plan.refusal is None


def test_mass_delete_is_held_back_unless_allowed() -> None:
    """More deletions than the ratio allows: none happen and the plan says why."""
    peer = [_peer(f"{i}.jobs", b"x") for i in range(4)]
    source = [_src("0.jobs", b"x")]
    manifest = _manifest(*((f"{i}.jobs", b"x", 1000) for i in range(4)))
    plan = plan_peer(source, peer, manifest, peer_hashes={}, max_delete_ratio=0.5)
    assert plan.deletes == ()
    assert plan.refusal is not None
    assert "3 of the peer's 4" in plan.refusal
    allowed = plan_peer(
        source, peer, manifest, peer_hashes={}, max_delete_ratio=0.5, allow_mass_delete=True
    )
    assert len(allowed.deletes) == 3


def test_empty_source_never_empties_a_peer() -> None:
    """An emptied source folder would delete everything: that is refused at any ratio below 1."""
    peer = [_peer("a.jobs", b"a")]
    plan = plan_peer([], peer, Manifest(), peer_hashes={}, max_delete_ratio=0.99)
    assert plan.deletes == ()
    assert plan.refusal is not None


names = st.sampled_from(["a.jobs", "b.jobs", "C.jobs", "d.jobs", "e.jobs"])
contents = st.sampled_from([b"", b"1", b"22", b"333"])


@given(
    source=st.dictionaries(names, contents),
    peer=st.dictionaries(names, st.tuples(contents, st.booleans())),
)
def test_applying_a_plan_makes_the_peer_match_and_keeps_unrecorded_content(
    source: dict[str, bytes], peer: dict[str, tuple[bytes, bool]]
) -> None:
    """After any plan (mass deletes allowed) the peer equals the source.

    And every overwritten file that jobsync had not written was backed up first.
    """
    src = [_src(n, c) for n, c in source.items()]
    peer_files = [_peer(n, c) for n, (c, _) in peer.items()]
    manifest = _manifest(*((n, c, 1000) for n, (c, recorded) in peer.items() if recorded))
    hashes = {
        f.name.casefold(): _sha(peer[f.name][0]) for f in files_to_read(src, peer_files, manifest)
    }

    plan = plan_peer(
        src, peer_files, manifest, peer_hashes=hashes, max_delete_ratio=0.5, allow_mass_delete=True
    )

    result = {n: c for n, (c, _) in peer.items()}
    for copy in plan.copies:
        old = result.get(copy.source.name)
        recorded = peer.get(copy.source.name, (b"", True))[1]
        if old is not None and old != copy.source.content and not recorded:
            assert copy.backup_of is not None
        result[copy.source.name] = copy.source.content
    for gone in plan.deletes:
        del result[gone.name]
    assert result == source


def _plan_names(
    names: list[str],
    source: list[SourceFile],
    manifest: Manifest,
    on_peer: dict[str, bytes | None],
    *,
    ratio: float = 0.5,
) -> object:
    by_key = {f.name.casefold(): f for f in source}
    hashes = {n.casefold(): None if c is None else _sha(c) for n, c in on_peer.items()}
    return plan_names(
        {n.casefold() for n in names},
        by_key,
        manifest,
        peer_hashes=hashes,
        max_delete_ratio=ratio,
    )


def test_names_plan_copies_what_jobsync_wrote_and_what_is_missing() -> None:
    """A named file holding jobsync's last version is replaced, a missing one copied."""
    manifest = _manifest(("a.jobs", b"old", 1), ("b.jobs", b"b", 1))
    source = [_src("a.jobs", b"new", 2), _src("c.jobs", b"c", 2)]
    plan = _plan_names(["a.jobs", "c.jobs"], source, manifest, {"a.jobs": b"old", "c.jobs": None})
    assert isinstance(plan, PeerPlan)
    assert [(c.source.name, c.reason, c.backup_of) for c in plan.copies] == [
        ("a.jobs", Reason.CHANGED, None),
        ("c.jobs", Reason.MISSING, None),
    ]
    assert plan.deletes == ()


def test_names_plan_leaves_a_peer_copy_equal_to_the_source() -> None:
    """A named file the peer already holds is neither copied nor deleted."""
    manifest = _manifest(("a.jobs", b"same", 1))
    plan = _plan_names(["a.jobs"], [_src("a.jobs", b"same", 5)], manifest, {"a.jobs": b"same"})
    assert isinstance(plan, PeerPlan)
    assert plan.is_noop
    assert [f.name for f in plan.unchanged] == ["a.jobs"]


def test_names_plan_trashes_only_recorded_files_deleted_at_the_source() -> None:
    """A name deleted at the source is trashed when the peer has it, else nothing happens."""
    manifest = _manifest(("a.jobs", b"a", 1), ("b.jobs", b"b", 1), ("c.jobs", b"c", 1))
    plan = _plan_names(["a.jobs", "gone.jobs"], [], manifest, {})
    assert isinstance(plan, PeerPlan)
    assert [f.name for f in plan.deletes] == ["a.jobs"]
    assert plan.copies == ()


def test_names_plan_hands_anything_unusual_to_the_full_plan() -> None:
    """Hand edits, files gone from the peer, case renames and mass deletes need a full pass."""
    manifest = _manifest(("a.jobs", b"a", 1), ("b.jobs", b"b", 1))
    new_a = [_src("a.jobs", b"new", 2)]
    assert _plan_names(["a.jobs"], new_a, manifest, {"a.jobs": b"edited on the peer"}) is None
    assert _plan_names(["a.jobs"], new_a, manifest, {"a.jobs": None}) is None
    assert _plan_names(["A.JOBS"], [_src("A.JOBS", b"new")], manifest, {"A.JOBS": b"a"}) is None
    unrecorded = [_src("x.jobs", b"x")]
    assert _plan_names(["x.jobs"], unrecorded, manifest, {"x.jobs": b"hand copy"}) is None
    assert _plan_names(["x.jobs"], unrecorded, manifest, {"x.jobs": b"x"}) is None  # unrecorded
    assert _plan_names(["a.jobs"], new_a, manifest, {"a.jobs": b"new"}) is None  # recorded: a
    assert _plan_names(["a.jobs", "b.jobs"], [], manifest, {}) is None  # 2 of 2 > 0.5
    assert _plan_names(["a.jobs", "b.jobs"], [], manifest, {}, ratio=1.0) is not None


def test_skipped_names_and_names_a_peer_doubles_are_left_alone() -> None:
    """Names the source skipped are neither copied nor deleted; doubled peer names are reported.

    A case-sensitive peer can hold REPORT.jobs and report.jobs; planning one of them would hide
    the other, so both are left as they are.
    """
    source = [_src("a.jobs", b"a2"), _src("report.jobs", b"r2")]
    peer = [_peer("a.jobs", b"a"), _peer("REPORT.jobs", b"R"), _peer("report.jobs", b"r")]
    manifest = _manifest(("a.jobs", b"a", 1000), ("report.jobs", b"r", 1000))
    plan = plan_peer(
        source,
        peer,
        manifest,
        peer_hashes={},
        max_delete_ratio=1.0,
        leave=frozenset({"a.jobs"}),
    )
    assert plan.copies == ()
    assert plan.deletes == ()
    assert plan.collisions == ("REPORT.jobs", "report.jobs")
    assert not plan.is_noop
