"""Shared pytest fixtures.

Samba: real, throwaway ``smbd`` peers on loopback (see ``tests/samba.py``). They need root
and Samba installed; when smbd cannot start, the fixtures fail with the reason, never skip,
so a broken environment cannot pass as a green run.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest
from samba import SambaPeer, SambaUnavailableError, start_peer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


def _start_or_fail(base: Path, encrypt: str = "desired") -> SambaPeer:
    """Start a peer, turning SambaUnavailableError into a test failure (never a skip)."""
    try:
        return start_peer(base, encrypt=encrypt)
    except SambaUnavailableError as exc:
        reason = str(exc)
    # Outside the except block, so the report is the reason alone, without a chained traceback.
    pytest.fail(f"Samba peer unavailable: {reason}", pytrace=False)


def _stop(peer: SambaPeer) -> Exception | None:
    """Thaw and stop ``peer``; return the failure instead of raising it."""
    try:
        if peer.running:
            peer.thaw()  # a test may have left it frozen
        peer.stop()
    except Exception as exc:  # noqa: BLE001 -- the caller still stops the other peers
        return exc
    return None


def _stop_all(peers: list[SambaPeer]) -> None:
    """Stop every peer even if one of them fails to stop; re-raise the first failure."""
    errors = [error for error in map(_stop, peers) if error is not None]
    if errors:
        raise errors[0]


@pytest.fixture(scope="session")
def samba_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Session folder that holds every test smbd's root; traversable by the test user."""
    base = tmp_path_factory.mktemp("samba")
    base.chmod(0o755)
    return base


@pytest.fixture
def smb_peer_factory(samba_base: Path) -> Iterator[Callable[..., SambaPeer]]:
    """Return ``make(encrypt="desired") -> SambaPeer``; every peer made is stopped afterwards."""
    peers: list[SambaPeer] = []

    def make(encrypt: str = "desired") -> SambaPeer:
        peer = _start_or_fail(samba_base, encrypt)
        peers.append(peer)
        return peer

    yield make
    _stop_all(peers)


@pytest.fixture(scope="session")
def shared_peers(samba_base: Path) -> Iterator[tuple[SambaPeer, SambaPeer]]:
    """Two peers started once per session (encrypt="desired"); stopped at session end."""
    first = _start_or_fail(samba_base)
    try:
        second = _start_or_fail(samba_base)
    except BaseException:
        first.stop()
        raise
    yield first, second
    _stop_all([first, second])


@pytest.fixture
def jobs_dirs(
    shared_peers: tuple[SambaPeer, SambaPeer],
) -> Iterator[list[tuple[SambaPeer, str, Path]]]:
    r"""Per shared peer, a fresh ``t-<uuid8>\jobs`` folder: ``[(peer, unc_path, disk_path)]``.

    Afterwards each shared peer is thawed and, if a test stopped it, started again, so one
    test cannot break the peers for the next.
    """
    dirs = []
    for peer in shared_peers:
        name = f"t-{uuid.uuid4().hex[:8]}"
        dirs.append((peer, peer.unc(name, "jobs"), peer.mkdir(name, "jobs")))
    yield dirs
    for peer in shared_peers:
        if peer.running:
            peer.thaw()
        else:
            peer.start()  # raises SambaUnavailableError with the reason
