"""Servers set up the way real sites are: small limits, few credits, old dialects, other clients.

Each peer is a real smbd given the ``smb.conf`` lines that make Samba behave like the server in
question (see the table in docs/guarantees.md); a second SMB client (tests/support/holder.py) holds
files the way Office, Explorer or a backup agent on a sleeping laptop would.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from jobsync.transport.smb import peer as smb_peer

from support.cluster import Cluster
from support.holder import Holder, hold
from support.smbd import SHARE_NAME

pytestmark = pytest.mark.smb

KIB = 1024
SIZES = {
    "empty.jobs": 0,
    "under.jobs": 64 * KIB - 1,
    "exact.jobs": 64 * KIB,
    "over.jobs": 64 * KIB + 1,
    "large.jobs": 3 * 1024 * KIB + 17,
}
SMALL_LIMITS = ("smb2 max trans = 65536", "smb2 max read = 65536", "smb2 max write = 65536")


@pytest.fixture
def field_cluster(one_peer_cluster: Callable[..., Cluster]) -> Callable[..., Cluster]:
    """node1 pushing to node2, one smbd configured like the server under test."""
    return one_peer_cluster


def _write_sized(cluster: Cluster) -> dict[str, bytes]:
    files = {name: os.urandom(size) for name, size in SIZES.items()}
    for name, data in files.items():
        cluster.write_job(name, data)
    return files


def _landed(cluster: Cluster) -> dict[str, bytes]:
    folder = cluster.disk("node2")
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name.endswith(".jobs")}


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"options": SMALL_LIMITS}, id="64KiB-limits"),
        pytest.param(
            {"min_protocol": "SMB2_02", "max_protocol": "SMB2_02", "plain": True}, id="SMB2.0.2"
        ),
    ],
)
def test_servers_that_cap_answers_at_64_kib_get_every_size(
    field_cluster: Callable[..., Cluster], settings: dict[str, Any]
) -> None:
    """Requests never ask past the negotiated MaxTransact/Read/WriteSize (2.0.2 caps at 64 KiB).

    Jobs at every boundary of a 64 KiB answer land intact, listings of a folder larger than one
    answer are complete, and a deep reconcile (which reads every file back) finds no drift.
    """
    cluster = field_cluster(**settings)
    files = _write_sized(cluster)
    for i in range(600):  # about 70 KiB of directory entries: more than one answer
        cluster.write_job(f"listing-{i:04}-padding-the-name-out.jobs", b"x")
        files[f"listing-{i:04}-padding-the-name-out.jobs"] = b"x"

    pushed = cluster.run("push")

    assert pushed.code == 0, pushed
    assert _landed(cluster) == files
    assert cluster.run("reconcile", "--deep").code == 0


@pytest.mark.parametrize("grant", [8, 16])
def test_a_server_granting_few_credits_is_slow_never_an_error(
    field_cluster: Callable[..., Cluster], grant: int
) -> None:
    """With ``smb2 max credits`` of 8 or 16, 2,000 jobs and a multi-MB job all land.

    Chunks shrink to what the server's window holds and the runner waits for credits
    instead of failing.
    """
    cluster = field_cluster(options=(f"smb2 max credits = {grant}",))
    files = {f"job-{i:04}.jobs": f"<job {i}/>".encode() * 20 for i in range(2000)}
    files["big.jobs"] = os.urandom(5 * 1024 * KIB + 3)
    for name, data in files.items():
        cluster.write_job(name, data)

    pushed = cluster.run("push")

    assert pushed.code == 0, pushed
    assert _landed(cluster) == files
    assert cluster.run("reconcile", "--deep").code == 0


@contextmanager
def _held(cluster: Cluster, name: str, mode: str) -> Iterator[Holder]:
    samba = cluster.smb["node2"]
    holder = hold(samba.port, samba.user, samba.password, SHARE_NAME, f"jobs\\{name}", mode)
    try:
        yield holder
    finally:
        holder.release()


def _pushed_once(cluster: Cluster, count: int = 20) -> None:
    """Push ``count`` jobs, then change them all and forget what the peer holds.

    Without a manifest the next push must read every peer copy to keep hand edits, which
    opens the file another client holds.
    """
    for i in range(count):
        cluster.write_job(f"j{i:02}.jobs", b"first")
    assert cluster.run("push").code == 0
    for i in range(count):
        cluster.write_job(f"j{i:02}.jobs", b"second")
    (cluster.disk("node2") / ".jobsync" / "manifest.json").unlink()


def test_a_lease_holder_that_never_answers_costs_the_break_timeout_not_the_peer(
    field_cluster: Callable[..., Cluster],
) -> None:
    """Samba makes an open wait 35 s for a lease holder that does not answer; jobsync waits.

    The interim answer is not mistaken for silence (the timeout is 5 s here): the server is
    asked for an ECHO meanwhile, and when the break times out every job lands in that pass.
    """
    cluster = field_cluster()
    _pushed_once(cluster)
    with _held(cluster, "j00.jobs", "lease"):
        started = time.monotonic()
        pushed = cluster.run("push", "--json")
        elapsed = time.monotonic() - started

    assert pushed.code == 0, pushed
    assert elapsed > 30
    assert set(_landed(cluster).values()) == {b"second"}
    assert len(pushed.json()["peers"][0]["copied"]) == 20


@pytest.mark.parametrize("mode", ["lease", "batch"])
def test_a_request_held_past_the_limit_is_cancelled_and_fails_its_file_alone(
    field_cluster: Callable[..., Cluster], monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Past ``PENDING_LIMIT_SECONDS`` the open is cancelled (SMB2 CANCEL): that job fails alone.

    Every other job of the peer lands in the same pass, the message says what happened in
    words, the connection stays usable, and the next push, with the holder gone, converges.
    """
    monkeypatch.setattr(smb_peer, "PENDING_LIMIT_SECONDS", 2.0)
    cluster = field_cluster()
    _pushed_once(cluster)
    with _held(cluster, "j00.jobs", mode):
        pushed = cluster.run("push", "--json")

    assert pushed.code == 3, pushed
    (peer,) = pushed.json()["peers"]
    assert peer["error"] is None
    assert [f["file"] for f in peer["failed"]] == ["j00.jobs"]
    assert "still held by another program after 2 s" in peer["failed"][0]["reason"]
    assert "0xC0000120" in peer["failed"][0]["reason"]
    assert len(peer["copied"]) == 19
    assert (cluster.disk("node2") / "j00.jobs").read_bytes() == b"first"

    assert cluster.run("push").code == 0
    assert set(_landed(cluster).values()) == {b"second"}


def test_a_file_held_with_no_sharing_fails_alone(field_cluster: Callable[..., Cluster]) -> None:
    """A program holding a job with no sharing makes that job fail in words; the rest land."""
    cluster = field_cluster()
    _pushed_once(cluster)
    with _held(cluster, "j00.jobs", "exclusive"):
        pushed = cluster.run("push", "--json")

    assert pushed.code == 3, pushed
    (peer,) = pushed.json()["peers"]
    assert [f["file"] for f in peer["failed"]] == ["j00.jobs"]
    assert (
        "in use by another program: a sharing violation (0xC0000043)"
        in (peer["failed"][0]["reason"])
    )
    assert len(peer["copied"]) == 19
    assert cluster.run("push").code == 0


@pytest.mark.parametrize(
    ("max_protocol", "protection"),
    [
        ("SMB3_11", "SMB 3.1.1, signed with AES-GMAC"),
        ("SMB3_00", "SMB 3.0, signed with AES-CMAC"),
        ("SMB2_10", "SMB 2.1, signed with HMAC-SHA256"),
    ],
)
def test_signing_only_servers(
    field_cluster: Callable[..., Cluster], max_protocol: str, protection: str
) -> None:
    """Servers that sign but do not encrypt: each signing algorithm carries a whole push."""
    cluster = field_cluster(
        encrypt="off",
        max_protocol=max_protocol,
        options=("server signing = mandatory",),
        plain=True,
    )
    files = _write_sized(cluster)

    checked = cluster.run("check")
    pushed = cluster.run("push")

    assert protection in checked.out, checked
    assert pushed.code == 0, pushed
    assert _landed(cluster) == files


def test_smb_2_1_with_encryption_desired_connects_signed(
    field_cluster: Callable[..., Cluster],
) -> None:
    """A 2.1 server that asks for encryption: a peer with ``encrypt = false`` connects signed.

    A 2.x client ignores the request (MS-SMB2 3.2.5.3.1); large files, whose writes the server
    answers asynchronously, land too.
    """
    cluster = field_cluster(max_protocol="SMB2_10", encrypt="desired", plain=True)
    files = _write_sized(cluster)

    checked = cluster.run("check")
    pushed = cluster.run("push")

    assert "SMB 2.1, signed with HMAC-SHA256" in checked.out, checked
    assert pushed.code == 0, pushed
    assert _landed(cluster) == files


def test_smb_2_1_is_refused_when_the_peer_requires_encryption(
    field_cluster: Callable[..., Cluster],
) -> None:
    """The advice names what to change: SMB 3 on the server, or ``encrypt = false``."""
    cluster = field_cluster(max_protocol="SMB2_10", encrypt="desired")
    cluster.write_job("a.jobs", b"a")

    pushed = cluster.run("push")

    assert pushed.code == 3
    assert "SMB 2.1 without SMB3 encryption, which this peer requires" in pushed.out
    assert "set encrypt = false" in pushed.out


@pytest.mark.parametrize(
    ("algorithm", "name"), [("aes-256-gcm", "AES-256-GCM"), ("aes-256-ccm", "AES-256-CCM")]
)
def test_servers_that_insist_on_aes_256(
    field_cluster: Callable[..., Cluster], algorithm: str, name: str
) -> None:
    """Windows Server 2022 may be set to AES-256 only: both of its ciphers carry a push."""
    cluster = field_cluster(options=(f"server smb3 encryption algorithms = {algorithm}",))
    files = _write_sized(cluster)

    checked = cluster.run("check")
    pushed = cluster.run("push")

    assert f"SMB 3.1.1, encrypted with {name}" in checked.out, checked
    assert pushed.code == 0, pushed
    assert _landed(cluster) == files
