"""How jobsync reaches a peer: SMB for UNC paths, the file system for everything else."""

from __future__ import annotations

from collections.abc import Sequence

from jobsync.config import PeerConfig
from jobsync.transport.base import FileWrite, Peer, RemoteFile, WriteOutcome
from jobsync.transport.local import LocalPeer

__all__ = ["FileWrite", "Peer", "RemoteFile", "WriteOutcome", "check_installation", "open_peer"]


def check_installation(peers: Sequence[PeerConfig]) -> None:
    """Raise InstallationError when the SMB library the peers need is not the tested version.

    The agent asks before it starts: a broken installation is not a peer to retry for ever.
    """
    if any(p.unc is not None for p in peers):
        from jobsync.transport.smb.logon import check_library  # noqa: PLC0415 - as below

        check_library()


def open_peer(config: PeerConfig, *, timeout: float) -> Peer:
    """Connect to a peer; raises a :class:`~jobsync.errors.PeerError` naming it on failure."""
    if config.unc is not None:
        # Imported here: smbprotocol and its crypto stack cost start-up time the
        # local-folder case never needs.
        from jobsync.transport.smb import SmbPeer  # noqa: PLC0415

        return SmbPeer(config, timeout=timeout)
    assert config.local_path is not None  # noqa: S101 - config guarantees one of the two
    return LocalPeer(config.name, config.local_path)
