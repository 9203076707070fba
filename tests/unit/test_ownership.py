"""The one rule for ownership and versions (jobsync.versions), with plain values.

Claims and versions must be totally ordered (two nodes never tie, every node computes the same
answer), and push, reconcile and takeover must agree on which version is newer.
"""

from __future__ import annotations

import hashlib
from functools import cmp_to_key

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from jobsync.epoch import fence_reason
from jobsync.jobs_folder import Manifest, ManifestEntry, RemoteFile, Tombstone
from jobsync.plan import find_drift
from jobsync.scan import SourceFile
from jobsync.versions import (
    AFTER_EVERYTHING,
    LOCAL,
    Claim,
    Newer,
    PeerFolder,
    Version,
    claim_key,
    copy_sha,
    copy_version,
    local_version,
    owns_own_folder,
    plan_takeover,
    version_key,
    which_is_newer,
)

NODES = st.sampled_from(["A", "a", "B", "node1", "node10", "node2", "Ñode", "ß", "ss", ""])
CLAIMS = st.builds(Claim, node=NODES, epoch=st.integers(0, 3))
VERSIONS = st.builds(Version, epoch=st.integers(0, 2), time_ns=st.integers(0, 3), origin=NODES)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _entry(name: str, data: bytes, mtime: int, *, epoch: int, origin: str = "A") -> ManifestEntry:
    return ManifestEntry(name, _sha(data), len(data), mtime, origin, "", epoch)


# -- claims --------------------------------------------------------------------------------


@given(CLAIMS, CLAIMS)
def test_claims_are_antisymmetric_and_total(a: Claim, b: Claim) -> None:
    """Of two claims of different nodes or epochs exactly one wins; a claim never beats itself."""
    same = a.epoch == b.epoch and a.same_node(b)
    assert a.outranks(b) + b.outranks(a) == (0 if same else 1)


@given(st.lists(CLAIMS, min_size=3, max_size=3, unique_by=claim_key))
def test_claims_are_transitive(claims: list[Claim]) -> None:
    """If a beats b and b beats c, a beats c (three claims, put in the order ``outranks`` gives)."""
    c, b, a = sorted(claims, key=cmp_to_key(lambda x, y: x.outranks(y) - y.outranks(x)))
    assert a.outranks(b)
    assert b.outranks(c)
    assert a.outranks(c)


@given(CLAIMS, CLAIMS)
def test_claims_order_by_epoch_first(a: Claim, b: Claim) -> None:
    """A higher epoch always wins, whatever the names."""
    assume(a.epoch != b.epoch)
    assert a.outranks(b) == (a.epoch > b.epoch)


CLAIM_CASES = [
    # Each: the winner, the loser, why.
    (Claim("B", 1), Claim("C", 1), "equal epochs: the name that sorts first"),
    (Claim("node2", 2), Claim("node1", 1), "a higher epoch, whatever the name"),
    (Claim("node1", 1), Claim("node10", 1), "a name outranks its extensions"),
    (Claim("Alpha", 1), Claim("beta", 1), "names compare case-insensitively"),
    (Claim("a", 0), Claim("", 0), "no name ranks last"),
]


@pytest.mark.parametrize(("winner", "loser", "why"), CLAIM_CASES, ids=[c[2] for c in CLAIM_CASES])
def test_claim_table(winner: Claim, loser: Claim, why: str) -> None:
    """The documented cases of the ownership rule."""
    assert winner.outranks(loser), why
    assert not loser.outranks(winner), why


def test_the_same_node_in_another_case_is_the_same_claim() -> None:
    """Node names compare case-insensitively, so NODE1 and node1 are one node."""
    assert claim_key(Claim("NODE1", 1)) == claim_key(Claim("node1", 1))


def test_a_tied_claim_fences_the_node_that_loses_it_and_names_the_winner() -> None:
    """C at epoch 1 is refused by a folder B owns at epoch 1; B is not refused by C's."""
    owned_by_b = Manifest(owner="B", epoch=1, owner_since="2026-01-01T00:00:00+00:00")
    reason = fence_reason(owned_by_b, epoch=1, node="C")
    assert reason is not None
    assert reason.startswith("B took over at epoch 1 on 2026-01-01T00:00:00+00:00")
    assert "so B does" in reason
    assert fence_reason(Manifest(owner="C", epoch=1), epoch=1, node="B") is None
    assert fence_reason(Manifest(owner="b", epoch=1), epoch=1, node="B") is None
    assert fence_reason(Manifest(), epoch=0, node="Z") is None  # no owner: no claim


# -- versions --------------------------------------------------------------------------------


@given(VERSIONS, VERSIONS)
def test_which_is_newer_is_antisymmetric(a: Version, b: Version) -> None:
    """Swapping the sides swaps the answer; equal keys are unknown."""
    swap = {Newer.SOURCE: Newer.PEER, Newer.PEER: Newer.SOURCE, Newer.UNKNOWN: Newer.UNKNOWN}
    assert which_is_newer(b, a) is swap[which_is_newer(a, b)]
    assert (which_is_newer(a, b) is Newer.UNKNOWN) == (version_key(a) == version_key(b))


@given(st.lists(VERSIONS, min_size=3, max_size=3, unique_by=version_key))
def test_versions_are_transitive(versions: list[Version]) -> None:
    """If a is newer than b and b newer than c, a is newer than c (three distinct versions)."""
    c, b, a = sorted(versions, key=version_key)
    assert which_is_newer(c, b) is Newer.PEER
    assert which_is_newer(b, a) is Newer.PEER
    assert which_is_newer(c, a) is Newer.PEER


NEWER_CASES = [
    # Each: the source version, the peer version, the answer, why.
    (Version(1, 9_000), Version(2, 1), Newer.PEER, "a later epoch wins over a later clock"),
    (Version(1, 5, "A"), Version(1, 5, "A"), Newer.UNKNOWN, "the same version"),
    (Version(1, 5, "A"), Version(1, 6, "A"), Newer.PEER, "one owner: its own clock"),
    (Version(1, 9, "C"), Version(1, 1, "B"), Newer.PEER, "tied epochs: the winning claim's"),
    (Version(0, 5), None, Newer.SOURCE, "a hand edit on the peer never wins"),
    (None, Version(0, 5), Newer.PEER, "a hand edit at the source never wins"),
    (None, None, Newer.UNKNOWN, "two hand edits: nobody knows"),
    (
        Version(1, AFTER_EVERYTHING, "C", deleted=True),
        Version(1, 3, "B"),
        Newer.PEER,
        "the losing owner's deletion loses to the winner's write",
    ),
]


@pytest.mark.parametrize(
    ("source", "peer", "answer", "why"), NEWER_CASES, ids=[c[3] for c in NEWER_CASES]
)
def test_which_is_newer_table(
    source: Version | None, peer: Version | None, answer: Newer, why: str
) -> None:
    """The documented cases of the version rule."""
    assert which_is_newer(source, peer) is answer, why


V1 = _entry("x.jobs", b"v1", 100, epoch=1)
TOMB = Tombstone("x.jobs", "A", 1, 300)
VOUCH_CASES = [
    # Each: the listed copy, the hashes read, the manifest, the version expected, why.
    (RemoteFile("x.jobs", 2, 100), {}, Manifest(entries={"x.jobs": V1}), "v1", "size, time"),
    (
        RemoteFile("x.jobs", 2, 555),
        {"x.jobs": _sha(b"v1")},
        Manifest(entries={"x.jobs": V1}),
        "v1",
        "touched, but the bytes are the recorded ones",
    ),
    (
        RemoteFile("x.jobs", 2, 100),
        {"x.jobs": _sha(b"v2")},
        Manifest(entries={"x.jobs": V1}),
        None,
        "read, and not the recorded bytes",
    ),
    (
        RemoteFile("x.jobs", 2, 555),
        {},
        Manifest(entries={"x.jobs": V1}),
        None,
        "changed since recorded and not read: unknown",
    ),
    (
        RemoteFile("x.jobs", 2, 555),
        {"x.jobs": None},
        Manifest(entries={"x.jobs": V1}),
        None,
        "unreadable",
    ),
    (RemoteFile("x.jobs", 2, 100), {}, Manifest(), None, "never recorded"),
    (None, {}, Manifest(tombstones={"x.jobs": TOMB}), "deleted", "a tombstone"),
    (None, {}, Manifest(entries={"x.jobs": V1}), None, "recorded but gone"),
]


@pytest.mark.parametrize(
    ("listed", "hashes", "manifest", "expected", "why"),
    VOUCH_CASES,
    ids=[c[4] for c in VOUCH_CASES],
)
def test_what_vouches_for_a_peer_copy(
    listed: RemoteFile | None,
    hashes: dict[str, str | None],
    manifest: Manifest,
    expected: str | None,
    why: str,
) -> None:
    """A copy is a version when its SHA-256 is the recorded one (read, or vouched by stamps)."""
    sha = None if listed is None else copy_sha(listed, manifest.get("x.jobs"), hashes)
    version = copy_version("x.jobs", listed, sha, manifest)
    if expected is None:
        assert version is None, why
    elif expected == "deleted":
        assert version == Version(1, 300, "A", deleted=True), why
    else:
        assert version == Version(1, 100, "A"), why


def test_an_owner_speaks_for_its_edits_and_deletions_a_bystander_does_not() -> None:
    """The owner's unrecorded edit is its version and its missing job a deletion; not so else."""
    src = SourceFile("x.jobs", 2, 700, _sha(b"v9"))
    kwargs = {"node": "B", "epoch": 1}
    assert local_version("x.jobs", src, Manifest(), **kwargs, owner=True) == Version(1, 700, "B")
    assert local_version("x.jobs", src, Manifest(), **kwargs, owner=False) is None
    gone = local_version("x.jobs", None, Manifest(), **kwargs, owner=True)
    assert gone == Version(1, AFTER_EVERYTHING, "B", deleted=True)
    assert local_version("x.jobs", None, Manifest(), **kwargs, owner=False) is None


OWNER_CASES = [
    # Each: the local manifest, node, epoch, peer manifests, whether it owns, why.
    (Manifest(), "A", 0, (Manifest(owner="A"),), True, "a peer names it the owner"),
    (Manifest(owner="A"), "B", 0, (Manifest(owner="A"),), False, "a bystander at epoch 0"),
    (Manifest(owner="A"), "B", 1, (), True, "it took over"),
    (Manifest(owner="B", epoch=1), "C", 1, (), False, "its folder names a winning claim"),
    (Manifest(owner="C", epoch=2), "c", 1, (), True, "its own claim, lost locally"),
    (Manifest(), "A", 0, (), True, "nobody owns anything yet"),
    (Manifest(), "B", 0, (Manifest(owner="A"),), False, "another node owns the peer"),
]


@pytest.mark.parametrize(
    ("local", "node", "epoch", "others", "owns", "why"),
    OWNER_CASES,
    ids=[c[5] for c in OWNER_CASES],
)
def test_who_owns_its_own_folder(
    local: Manifest, node: str, epoch: int, others: tuple[Manifest, ...], owns: bool, why: str
) -> None:
    """Only a node that owns the jobs speaks for its edits and deletions."""
    assert owns_own_folder(local, node=node, epoch=epoch, others=others) is owns, why


# -- reconcile and takeover agree ----------------------------------------------------------

CONTENTS = st.sampled_from([b"v1", b"v2", b"v3"])
SIDE = st.fixed_dictionaries(
    {
        "has": st.booleans(),
        "content": CONTENTS,
        "recorded": st.sampled_from(["none", "same", "other", "tombstone"]),
        "epoch": st.integers(0, 2),
        "time": st.integers(1, 3),
        "origin": st.sampled_from(["A", "B", "C"]),
        "touched": st.booleans(),  # its write time changed since it was recorded
    }
)


def _side(raw: dict[str, object]) -> tuple[bytes | None, Manifest]:
    """One folder's copy of x.jobs and its manifest, from generated choices."""
    content = raw["content"] if raw["has"] else None
    assert content is None or isinstance(content, bytes)
    epoch, time, origin = raw["epoch"], raw["time"], raw["origin"]
    assert isinstance(epoch, int)
    assert isinstance(time, int)
    assert isinstance(origin, str)
    entries, tombs = {}, {}
    if raw["recorded"] in ("same", "other"):
        recorded = content if raw["recorded"] == "same" and content else b"elsewhere"
        entries["x.jobs"] = _entry("x.jobs", recorded, time, epoch=epoch, origin=origin)
    elif raw["recorded"] == "tombstone":
        tombs["x.jobs"] = Tombstone("x.jobs", origin, epoch, time)
    return content, Manifest(entries=entries, tombstones=tombs, owner="A")


@settings(suppress_health_check=[HealthCheck.filter_too_much])  # most pairs are alike
@given(SIDE, SIDE)
def test_reconcile_and_takeover_agree_on_which_side_is_newer(
    here: dict[str, object], there: dict[str, object]
) -> None:
    """Where reconcile says the peer is newer, takeover adopts the peer's version; and back."""
    local_content, local = _side(here)
    peer_content, peer_manifest = _side(there)
    source = []
    if local_content is not None:
        mtime = local.entries["x.jobs"].mtime_ns if "x.jobs" in local.entries else 9
        source = [SourceFile("x.jobs", len(local_content), mtime, _sha(local_content))]
    files = ()
    if peer_content is not None:
        entry = peer_manifest.entries.get("x.jobs")
        mtime = (entry.mtime_ns if entry else 9) + (1 if there["touched"] else 0)
        files = (RemoteFile("x.jobs", len(peer_content), mtime),)
    hashes = {"x.jobs": _sha(peer_content)} if peer_content is not None else {}
    drift = find_drift(source, local, files, peer_manifest, peer_hashes=hashes, node="B", epoch=0)
    view = PeerFolder(files, peer_manifest, hashes)
    choices, _ = plan_takeover(source, local, {"P": view}, node="B", epoch=0)
    newer = drift[0].newer if drift else Newer.UNKNOWN
    chosen = choices[0].where if choices else None
    assume(newer is not Newer.UNKNOWN)  # neither side is newer: nothing to agree on
    assert chosen == ("P" if newer is Newer.PEER else LOCAL)
