"""How jobsync reaches a peer: SMB for UNC paths, the file system for everything else."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from jobsync.config import PeerConfig, UncPath
from jobsync.transport.base import FileWrite, Peer, RemoteFile, WriteOutcome
from jobsync.transport.local import LocalPeer

__all__ = [
    "FileWrite",
    "Opener",
    "Peer",
    "RemoteFile",
    "WriteOutcome",
    "check_installation",
    "default_opener",
    "open_peer",
]

# How commands connect to a peer: a parameter, so that tests can inject failing transports.
Opener = Callable[[PeerConfig, float], Peer]


def check_installation(peers: Sequence[PeerConfig]) -> None:
    """Raise InstallationError when the SMB library the peers need is not the tested version.

    The agent asks before it starts: a broken installation is not a peer to retry for ever.
    """
    if any(isinstance(p.target, UncPath) for p in peers):
        from jobsync.transport.smb.logon import check_library  # noqa: PLC0415 - as below

        check_library()


def open_peer(config: PeerConfig, *, timeout: float) -> Peer:
    """Connect to a peer; raises a :class:`~jobsync.errors.PeerError` naming it on failure."""
    if isinstance(config.target, UncPath):
        # Imported here: smbprotocol and its crypto stack cost start-up time the
        # local-folder case never needs.
        from jobsync.transport.smb import SmbPeer  # noqa: PLC0415

        return SmbPeer(config, config.target, timeout=timeout)
    return LocalPeer(config.name, config.target)


def default_opener(config: PeerConfig, timeout: float) -> Peer:
    """Open a peer with the transport its path calls for."""
    return open_peer(config, timeout=timeout)
