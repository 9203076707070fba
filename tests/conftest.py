"""Shared pytest fixtures.

Samba: real, throwaway ``smbd`` peers on loopback (see ``tests/samba.py``). They need root
and Samba installed; when smbd cannot start, the fixtures fail with the reason, never skip,
so a broken environment cannot pass as a green run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from kerberos import DomainController
from polling import poll_until
from samba import (
    DEFAULT_PASSWORD,
    PASSWORD_ENV,
    SambaPeer,
    SambaUnavailableError,
    start_peer,
)

from jobsync.cli import main
from jobsync.config import PeerConfig, parse_unc
from jobsync.credentials import Secret
from jobsync.names import is_job_temp_name

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


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
def samba_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Session folder that holds every test smbd's root; traversable by the test user."""
    base = tmp_path_factory.mktemp("samba")
    base.chmod(0o755)
    return base


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


# -- jobsync clusters: a source folder, a config file and peers ------------------------------


@dataclass(frozen=True)
class Run:
    """What one jobsync invocation returned and printed."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """Stdout parsed as the one JSON document it must be."""
        return json.loads(self.out)


def run_jobsync(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Run:
    """Run ``jobsync ARGV`` in this process and capture its exit code and output."""
    capsys.readouterr()
    try:
        main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    else:  # pragma: no cover - main always exits
        code = 0
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


@dataclass
class Cluster:
    """A source folder, a config file and its peers (Samba shares or local folders)."""

    root: Path
    source: Path
    peers: list[tuple[str, str, Path]]  # (name, path in the config, folder on disk)
    capsys: pytest.CaptureFixture[str]
    smb: dict[str, SambaPeer] = field(default_factory=dict)
    timeout: float = 5.0
    extra: str = ""
    ports: dict[str, int] = field(default_factory=dict)  # peer name -> port to use instead
    plain: set[str] = field(default_factory=set)  # peers configured with encrypt = false

    @property
    def config(self) -> Path:
        """The config file, written from the current settings."""
        path = self.root / "jobsync.toml"
        lines = [
            'node = "node1"',
            "node_differs_from_host = true",
            f"source = '{self.source}'",
            f"timeout_seconds = {self.timeout}",
            self.extra,
        ]
        for name, location, _ in self.peers:
            samba = self.smb.get(name)
            if samba is None:  # a local folder, or a peer logging on as the current account
                lines += ["[[peers]]", f'name = "{name}"', f"path = '{location}'"]
                if name in self.ports:
                    lines.append(f"port = {self.ports[name]}")
                continue
            lines += samba.peer_toml(
                name, password_env=PASSWORD_ENV, port=self.ports.get(name), path=location
            )
            if name in self.plain:
                lines.append("encrypt = false")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def disk(self, name: str) -> Path:
        """The folder on disk behind peer ``name``."""
        return next(d for n, _, d in self.peers if n == name)

    def write_job(self, name: str, content: bytes, *, mtime_ns: int | None = None) -> Path:
        """Create or change a job in the source folder."""
        path = self.source / name
        path.write_bytes(content)
        if mtime_ns is not None:
            os.utime(path, ns=(mtime_ns, mtime_ns))
        return path

    def variant(self, name: str, old: str, new: str) -> Path:
        """A copy of the config with ``old`` replaced by ``new`` (once), for one test."""
        text = self.config.read_text(encoding="utf-8")
        assert old in text, old
        path = self.root / name
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        return path

    def run(self, *args: str, config: Path | None = None) -> Run:
        """Run ``jobsync ARGS -c CONFIG`` in this process and capture what it printed."""
        return run_jobsync(self.capsys, [*args, "-c", str(config or self.config)])

    def run_process(
        self, *args: str, config: Path | None = None, env: dict[str, str] | None = None
    ) -> Run:
        """Run ``python -m jobsync ARGS -c CONFIG`` as a separate process."""
        env = {**os.environ, PASSWORD_ENV: DEFAULT_PASSWORD, "NO_COLOR": "1", **(env or {})}
        done = subprocess.run(
            [sys.executable, "-m", "jobsync", *args, "-c", str(config or self.config)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        return Run(done.returncode, done.stdout, done.stderr)


def peer_config(samba: SambaPeer, *parts: str, encrypt: bool = True) -> PeerConfig:
    """The configuration of ``samba`` as peer node2, its jobs folder ``parts`` (``jobs``)."""
    unc = samba.unc(*(parts or ("jobs",)))
    return PeerConfig(
        name="node2",
        path=unc,
        target=parse_unc(unc),
        port=samba.port,
        username=samba.user,
        password=Secret(samba.password),
        encrypt=encrypt,
    )


def leftover_temps(folder: Path) -> list[str]:
    """Jobsync's temp files in a jobs folder: jobs being written, and files under .jobsync/tmp."""
    found = [p.name for p in folder.iterdir() if is_job_temp_name(p.name)]
    tmp = folder / ".jobsync" / "tmp"
    if tmp.is_dir():
        found += [f".jobsync/tmp/{p.name}" for p in tmp.iterdir()]
    return found


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
