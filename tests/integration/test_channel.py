"""jobsync's own SMB message path against real smbd: every dialect, cipher and signature.

And the hand-over itself: a logon smbprotocol made becomes jobsync's channel.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from jobsync.config.model import UncPath
from jobsync.errors import PeerError, PeerFileNotFoundError, PeerSecurityError
from jobsync.transport.base import FileWrite
from jobsync.transport.smb import peer as smb_peer
from jobsync.transport.smb.logon import Connector
from jobsync.transport.smb.peer import SmbPeer

from support.cluster import peer_config
from support.smbd import SambaPeer

pytestmark = pytest.mark.smb


def _connect(samba: SambaPeer, *, encrypt: bool = True) -> SmbPeer:
    config = peer_config(samba, encrypt=encrypt)
    assert isinstance(config.target, UncPath)
    return SmbPeer(config, config.target, timeout=10.0)


def _round_trip(peer: SmbPeer, folder: Path) -> None:
    """Write, list, read back and remove: one small file, one empty, one of several credits."""
    files = {"small.jobs": b"<job/>" * 100, "empty.jobs": b"", "large.jobs": os.urandom(300_000)}
    writes = [
        FileWrite(
            path=name, temp=f".jobsync-{name}.tmp", data=data, mtime_ns=1_700_000_000_123_456_700
        )
        for name, data in files.items()
    ]
    outcomes = peer.write_files(writes)
    assert [o.error for o in outcomes] == [None, None, None]
    for name, data in files.items():
        assert (folder / name).read_bytes() == data
        assert (folder / name).stat().st_mtime_ns == 1_700_000_000_123_456_700
    assert {f.name: f.size for f in peer.list_files()} == {n: len(d) for n, d in files.items()}
    assert peer.read_files(list(files)) == files
    assert peer.remove_files(list(files)) == dict.fromkeys(files)
    assert list(folder.iterdir()) == []
    assert isinstance(peer.read_files(["small.jobs"])["small.jobs"], PeerFileNotFoundError)


@pytest.mark.parametrize(
    ("encrypt", "max_protocol", "protection"),
    [
        ("desired", "SMB3_11", "SMB 3.1.1, encrypted with AES-128-GCM"),
        ("desired", "SMB3_00", "SMB 3.0, encrypted with AES-128-CCM"),
        ("off", "SMB3_11", "SMB 3.1.1, signed with AES-GMAC"),
        ("off", "SMB3_00", "SMB 3.0, signed with AES-CMAC"),
        ("off", "SMB2_10", "SMB 2.1, signed with HMAC-SHA256"),
    ],
)
def test_every_protection_carries_files_intact(
    smb_peer_factory: Callable[..., SambaPeer], encrypt: str, max_protocol: str, protection: str
) -> None:
    """Each cipher and signing algorithm Samba negotiates moves files byte for byte."""
    samba = smb_peer_factory(encrypt=encrypt, max_protocol=max_protocol)
    folder = samba.mkdir("jobs")
    peer = _connect(samba, encrypt=encrypt != "off")
    try:
        assert peer.protection == protection
        _round_trip(peer, folder)
    finally:
        peer.close()


def test_a_server_that_cannot_encrypt_is_refused(
    smb_peer_factory: Callable[..., SambaPeer],
) -> None:
    """SMB 2.1 has no encryption: a peer that requires it is refused before any file moves."""
    samba = smb_peer_factory(max_protocol="SMB2_10")
    samba.mkdir("jobs")
    with pytest.raises(PeerSecurityError, match="encryption"):
        _connect(samba)


def test_a_connection_dropped_while_idle_is_replaced(
    smb_peer_factory: Callable[..., SambaPeer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Servers drop idle connections; the next operation logs on again instead of failing."""
    samba = smb_peer_factory()
    folder = samba.mkdir("jobs")
    peer = _connect(samba)
    try:
        (folder / "a.jobs").write_bytes(b"a")
        assert [f.name for f in peer.list_files()] == ["a.jobs"]
        samba.restart()  # the server side of the connection is gone
        monkeypatch.setattr(smb_peer, "IDLE_CHECK_SECONDS", 0.0)
        assert [f.name for f in peer.list_files()] == ["a.jobs"]
    finally:
        peer.close()


def test_a_dropped_connection_fails_the_call_when_it_was_not_idle(
    smb_peer_factory: Callable[..., SambaPeer],
) -> None:
    """Within a run a lost connection is an error naming the peer, never a silent reconnect."""
    samba = smb_peer_factory()
    samba.mkdir("jobs")
    peer = _connect(samba)
    try:
        samba.restart()
        with pytest.raises(PeerError, match="node2"):
            peer.list_files()
    finally:
        peer.close()


def test_a_real_logon_is_handed_over_and_the_receive_thread_ends(
    smb_peer_factory: Callable[..., SambaPeer],
) -> None:
    """Against real smbd: the channel gets the window, and smbprotocol's thread is gone.

    (The suite's autouse fixture fails any test that leaves a thread running.)
    """
    samba = smb_peer_factory()
    samba.mkdir("jobs")
    config = peer_config(samba)
    assert isinstance(config.target, UncPath)
    connector = Connector(config, config.target, timeout=10, pending_limit=60, credits_wanted=512)
    channel = connector.connect()
    try:
        assert channel.credits > 1
        assert channel.protection == "SMB 3.1.1, encrypted with AES-128-GCM"
    finally:
        connector.discard()
