"""How jobsync reaches a peer: SMB for UNC paths, the file system for everything else."""

from __future__ import annotations

from jobsync.config import PeerConfig
from jobsync.transport.base import FileWrite, Peer, RemoteFile, WriteOutcome
from jobsync.transport.local import LocalPeer

__all__ = ["FileWrite", "Peer", "RemoteFile", "WriteOutcome", "open_peer"]


def open_peer(config: PeerConfig, *, timeout: float) -> Peer:
    """Connect to a peer; raises a :class:`~jobsync.errors.PeerError` naming it on failure."""
    if config.unc is not None:
        # Imported here: smbprotocol and its crypto stack cost start-up time the
        # local-folder case never needs.
        from jobsync.transport.smb import SmbPeer  # noqa: PLC0415

        return SmbPeer(config, timeout=timeout)
    assert config.local_path is not None  # noqa: S101 - config guarantees one of the two
    return LocalPeer(config.name, config.local_path)
