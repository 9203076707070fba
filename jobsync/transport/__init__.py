"""How jobsync reaches a peer, and every peer at once.

How jobsync reaches a peer: SMB for UNC paths, the file system for everything else.

Doing one piece of work for every peer at once: a slow peer never delays the others.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from jobsync.config.model import PeerConfig, UncPath
from jobsync.transport.base import Peer
from jobsync.transport.local import LocalPeer

# How commands connect to a peer: a parameter, so that tests can inject failing transports.
Opener = Callable[[PeerConfig, float], Peer]


def check_installation(peers: Sequence[PeerConfig]) -> None:
    """Raise InstallationError when the SMB library the peers need is not the tested version.

    The agent asks before it starts: a broken installation is not a peer to retry for ever.
    """
    if any(isinstance(p.target, UncPath) for p in peers):
        from jobsync.transport.smb.logon import check_library

        check_library()


def open_peer(config: PeerConfig, *, timeout: float) -> Peer:
    """Connect to a peer; raises a :class:`~jobsync.errors.PeerError` naming it on failure."""
    if isinstance(config.target, UncPath):
        # Imported here: smbprotocol and its crypto stack cost start-up time the
        # local-folder case never needs.
        from jobsync.transport.smb.peer import SmbPeer

        return SmbPeer(config, config.target, timeout=timeout)
    return LocalPeer(config.name, config.target)


def default_opener(config: PeerConfig, timeout: float) -> Peer:
    """Open a peer with the transport its path calls for."""
    return open_peer(config, timeout=timeout)


T = TypeVar("T")
R = TypeVar("R")


def each_peer(peers: Sequence[T], work: Callable[[T], R], *, name: str) -> list[R]:
    """``work(peer)`` for every peer concurrently, one thread each; results in the peers' order.

    ``work`` reports a peer's own failure in its result; anything it raises is re-raised here
    (a broken installation, a bug), after every other peer has finished.
    """
    if not peers:
        return []
    with ThreadPoolExecutor(max_workers=len(peers), thread_name_prefix=name) as pool:
        futures = [pool.submit(work, peer) for peer in peers]
        return [future.result() for future in futures]
