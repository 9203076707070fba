"""Shared pytest fixtures and hooks, for tests/unit and tests/integration alike.

Samba: real, throwaway ``smbd`` peers on loopback (see ``tests/support/smbd.py``). They need
root and Samba installed; when smbd cannot start, the fixtures fail with the reason, never skip,
so a broken environment cannot pass as a green run. A test that uses one of them, or the domain
controller, carries the ``smb`` marker and lives in tests/integration: collection refuses
anything else, so ``-m "not smb"`` and ``tests/unit`` never need a server.

The helpers and types the tests share are in ``tests/support/``; this file holds fixtures only.
Being here, it puts tests/ on ``sys.path`` (pytest's default "prepend" import mode), which is
how tests in both folders import ``support``.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import structlog

from support.cluster import Cluster
from support.domain_controller import DomainController
from support.polling import poll_until
from support.smbd import (
    DEFAULT_PASSWORD,
    PASSWORD_ENV,
    SambaPeer,
    SambaUnavailableError,
    start_peer,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

UNIT = Path(__file__).resolve().parent / "unit"
SERVER_FIXTURES = frozenset(
    {
        "samba_base",
        "smb_peer_factory",
        "shared_peers",
        "jobs_dirs",
        "smb_cluster",
        "one_peer_cluster",
        "domain_controller",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse a run whose markers lie: a server without ``smb``, or ``smb`` in tests/unit."""
    wrong = []
    for item in items:
        marked = item.get_closest_marker("smb") is not None
        servers = sorted(SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())))
        if servers and not marked:
            wrong.append(f"{item.nodeid} uses {', '.join(servers)} without the smb marker")
        if marked and item.path.is_relative_to(UNIT):
            wrong.append(f"{item.nodeid} is marked smb: it belongs in tests/integration")
    if wrong:
        raise pytest.UsageError("\n".join(["markers that do not tell the truth:", *wrong]))


def _start_or_fail(base: Path, **settings: Any) -> SambaPeer:
    """Start a peer, turning SambaUnavailableError into a test failure (never a skip)."""
    try:
        return start_peer(base, **settings)
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
def samba_base() -> Iterator[Path]:
    """Session folder that holds every test smbd's root; traversable by the test user.

    Outside pytest's own temp root: every new pytest session sets that root back to 0700, and
    the test user of a session still running would lose its way into its shares.
    """
    base = Path(tempfile.mkdtemp(prefix="jobsync-samba-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)  # the smbd logs that mattered are in the reports


@pytest.fixture
def smb_peer_factory(samba_base: Path) -> Iterator[Callable[..., SambaPeer]]:
    """Return ``make(**settings) -> SambaPeer``; every peer made is stopped after.

    The settings are :func:`samba.start_peer`'s: ``encrypt``, ``min_protocol``,
    ``max_protocol``, ``options`` (extra ``[global]`` lines), ``share_options``.
    """
    peers: list[SambaPeer] = []

    def make(**settings: Any) -> SambaPeer:
        peer = _start_or_fail(samba_base, **settings)
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


@pytest.fixture(scope="session")
def domain_controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DomainController]:
    """A Samba AD DC on loopback (TEST.LAN), started once per session; fails, never skips."""
    dc = DomainController(tmp_path_factory.mktemp("domain"))
    try:
        dc.start()
    except SambaUnavailableError as exc:
        reason = str(exc)
    else:
        yield dc
        dc.stop()
        return
    pytest.fail(f"domain controller unavailable: {reason}", pytrace=False)


@pytest.fixture
def source_dir(tmp_path: Path) -> Path:
    """An empty source folder."""
    path = tmp_path / "source"
    path.mkdir()
    return path


@pytest.fixture
def smb_cluster(
    tmp_path: Path,
    source_dir: Path,
    jobs_dirs: list[tuple[SambaPeer, str, Path]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cluster:
    """node1 pushing to node2 and node3, two real smbd peers on loopback."""
    monkeypatch.setenv(PASSWORD_ENV, DEFAULT_PASSWORD)
    cluster = Cluster(root=tmp_path, source=source_dir, peers=[], capsys=capsys)
    for index, (samba, unc, disk) in enumerate(jobs_dirs, start=2):
        name = f"node{index}"
        cluster.peers.append((name, unc, disk))
        cluster.smb[name] = samba
    return cluster


@pytest.fixture
def one_peer_cluster(
    tmp_path: Path,
    source_dir: Path,
    smb_peer_factory: Callable[..., SambaPeer],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Cluster]:
    """``make(*parts, plain=False, create=True, **settings)``: node1 pushing to node2 alone.

    node2 is a fresh smbd started with ``settings`` (see ``smb_peer_factory``); its jobs folder
    is ``parts`` in the share (``jobs`` when none), created unless ``create`` is false.
    ``plain`` configures the peer with ``encrypt = false``.
    """
    monkeypatch.setenv(PASSWORD_ENV, DEFAULT_PASSWORD)

    def make(*parts: str, plain: bool = False, create: bool = True, **settings: Any) -> Cluster:
        samba = smb_peer_factory(**settings)
        parts = parts or ("jobs",)
        disk = samba.mkdir(*parts) if create else samba.share_path.joinpath(*parts)
        cluster = Cluster(root=tmp_path, source=source_dir, peers=[], capsys=capsys)
        cluster.peers.append(("node2", samba.unc(*parts), disk))
        cluster.smb["node2"] = samba
        if plain:
            cluster.plain.add("node2")
        return cluster

    return make


@pytest.fixture
def local_cluster(tmp_path: Path, source_dir: Path, capsys: pytest.CaptureFixture[str]) -> Cluster:
    """node1 pushing to node2 and node3, two local folders."""
    cluster = Cluster(root=tmp_path, source=source_dir, peers=[], capsys=capsys)
    for name in ("node2", "node3"):
        disk = tmp_path / name
        disk.mkdir()
        cluster.peers.append((name, str(disk), disk))
    return cluster


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail any test that leaves a thread of its own running (connections, workers, timers)."""
    before = set(threading.enumerate())
    yield

    def leaked() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t not in before and t.is_alive()]

    poll_until(lambda: not leaked(), timeout=5, interval=0.05)
    assert not leaked(), f"threads left running: {[t.name for t in leaked()]}"


@pytest.fixture(autouse=True, scope="session")
def loggers_never_cached() -> Iterator[None]:
    """Keep jobsync's loggers from caching their processors, so capture_logs sees every event.

    Each in-process command configures logging anew (``jobsync.logs``), with a new processor
    list; a module's logger cached under an earlier list would keep it, and a later test's
    ``structlog.testing.capture_logs`` (which swaps the current list's contents) would miss its
    events, depending on which tests ran before.
    """
    configure = structlog.configure

    def uncached(**settings: Any) -> None:
        configure(**{**settings, "cache_logger_on_first_use": False})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(structlog, "configure", uncached)
        yield
