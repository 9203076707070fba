"""The Samba test fixtures themselves: real smbd peers that real SMB clients can use.

Samba's own ``smbclient`` binary is the client here (not smbprotocol), so a failure points at
the fixture rather than at the code under test; one test uses smbprotocol to prove that SMB3
encryption works against these peers.
"""

from __future__ import annotations

import os
import pwd
import socket
import stat
import subprocess
import uuid
from typing import TYPE_CHECKING

import pytest
import smbclient  # smbprotocol's high-level API

from support import smbd
from support.polling import wait_for
from support.smbd import SambaPeer, SambaUnavailableError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.smb

# smbclient's own -t does not bound connect/negotiate against a hung server, so every call
# gets a subprocess timeout as well.
CALL_TIMEOUT = 15.0
FROZEN_TIMEOUT = 3.0


def run_smbclient(
    peer: SambaPeer,
    command: str,
    *extra: str,
    password: str | None = None,
    timeout: float = CALL_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run one ``smbclient -c COMMAND`` against the peer's ``jobs`` share."""
    return subprocess.run(
        [
            "smbclient",
            f"//{smbd.HOST}/{smbd.SHARE_NAME}",
            "-p",
            str(peer.port),
            "-U",
            f"{peer.user}%{peer.password if password is None else password}",
            "-t",
            "2",
            *extra,
            "-c",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def peer(smb_peer_factory: Callable[..., SambaPeer]) -> SambaPeer:
    """Start a private peer with the default settings (encrypt="desired")."""
    return smb_peer_factory()


@pytest.fixture
def py_smbclient() -> Iterator[None]:
    """Drop smbprotocol's cached sessions afterwards so no connection outlives the test."""
    yield
    smbclient.reset_connection_cache()


def test_smbclient_lists_a_file_put_on_disk(peer: SambaPeer) -> None:
    """A file written into share_path on disk is listed by smbclient through the share."""
    (peer.share_path / "hello.txt").write_text("hi\n")

    result = run_smbclient(peer, "ls")

    assert result.returncode == 0, result.stderr + result.stdout
    assert "hello.txt" in result.stdout


def test_smbclient_writes_as_the_test_user(peer: SambaPeer, tmp_path: Path) -> None:
    """Files put through the share land in share_path owned by the test user, mode 0644."""
    local = tmp_path / "up.txt"
    local.write_text("payload\n")

    result = run_smbclient(peer, f'put "{local}" up.txt')

    assert result.returncode == 0, result.stderr + result.stdout
    written = peer.share_path / "up.txt"
    assert written.read_text() == "payload\n"
    assert written.stat().st_uid == pwd.getpwnam(peer.user).pw_uid
    assert stat.S_IMODE(written.stat().st_mode) == 0o644


def test_wrong_password_is_rejected(peer: SambaPeer) -> None:
    """Authentication is real: a wrong password gets NT_STATUS_LOGON_FAILURE."""
    result = run_smbclient(peer, "ls", password="wrong-password")  # noqa: S106

    assert result.returncode != 0
    assert "NT_STATUS_LOGON_FAILURE" in result.stdout + result.stderr


def test_freeze_hangs_the_server_and_thaw_revives_it(peer: SambaPeer) -> None:
    """freeze() leaves TCP connects working but SMB unanswered; thaw() restores service."""
    peer.freeze()
    # The kernel still completes the handshake into the listen backlog of a stopped smbd.
    with socket.create_connection((smbd.HOST, peer.port), timeout=1):
        pass
    with pytest.raises(subprocess.TimeoutExpired):
        run_smbclient(peer, "ls", timeout=FROZEN_TIMEOUT)

    peer.thaw()

    result = run_smbclient(peer, "ls")
    assert result.returncode == 0, result.stderr + result.stdout


def test_restart_keeps_port_and_files(peer: SambaPeer) -> None:
    """restart() brings up a new smbd on the same port, serving the same share contents."""
    (peer.share_path / "kept.txt").write_text("x")
    port, old_pid = peer.port, peer.pid

    peer.restart()

    assert peer.port == port
    assert peer.pid is not None
    assert peer.pid != old_pid
    result = run_smbclient(peer, "ls")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "kept.txt" in result.stdout


def test_encrypt_off_starts_and_refuses_encryption(
    smb_peer_factory: Callable[..., SambaPeer],
) -> None:
    """encrypt="off" starts and serves plain SMB; a client that demands encryption is refused."""
    plain = smb_peer_factory(encrypt="off")

    assert run_smbclient(plain, "ls").returncode == 0
    demanded = run_smbclient(plain, "ls", "--client-protection=encrypt")
    assert demanded.returncode != 0


def test_encrypt_desired_accepts_encrypting_smbclient(peer: SambaPeer) -> None:
    """The default peer (encrypt="desired") serves a client that insists on SMB3 encryption."""
    result = run_smbclient(peer, "ls", "--client-protection=encrypt")

    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.usefixtures("py_smbclient")
def test_smbprotocol_with_encryption_lists_the_share(peer: SambaPeer) -> None:
    """With encrypt=True, smbprotocol authenticates and lists the share (SMB3 encryption works)."""
    (peer.share_path / "seen.txt").write_text("x")

    smbclient.register_session(
        smbd.HOST,
        username=peer.user,
        password=peer.password,
        port=peer.port,
        encrypt=True,
    )
    names = smbclient.listdir(peer.unc(), port=peer.port)

    assert "seen.txt" in names


def test_stop_leaves_no_process_behind(smb_peer_factory: Callable[..., SambaPeer]) -> None:
    """stop() ends the master, its children and the samba-dcerpcd it spawns on demand."""
    peer = smb_peer_factory()
    # Listing shares goes through the srvsvc pipe, which makes smbd start samba-dcerpcd
    # in a session of its own (outside smbd's process group).
    listing = subprocess.run(
        ["smbclient", "-L", smbd.HOST, "-p", str(peer.port), "-U", f"{peer.user}%{peer.password}"],
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT,
        check=False,
    )
    assert listing.returncode == 0, listing.stderr + listing.stdout
    pgid = peer.pid
    assert pgid is not None
    helpers = smbd._live_processes(pgid, peer.conf_path)
    assert any(group != pgid for group in helpers.values()), "no samba-dcerpcd was started"

    peer.stop()

    assert not peer.running
    assert smbd._live_processes(pgid, peer.conf_path) == {}
    wait_for(lambda: not port_open(peer.port), timeout=10, what="the port to close")


def test_start_refuses_a_port_in_use(samba_base: Path) -> None:
    """start() raises SambaUnavailableError instead of mistaking another listener for smbd."""
    with socket.socket() as squatter:
        squatter.bind((smbd.HOST, 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        root = samba_base / f"squatted-{uuid.uuid4().hex[:8]}"
        peer = SambaPeer(root=root, share_path=root / "share", port=port)

        with pytest.raises(SambaUnavailableError, match="already in use"):
            peer.start()
    assert not peer.running


def test_smbd_dying_at_start_raises_with_reason(
    samba_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If smbd exits during start-up, start() raises SambaUnavailableError with the exit code."""
    real_find = smbd._find_binary
    monkeypatch.setattr(
        smbd, "_find_binary", lambda name: "/bin/false" if name == "smbd" else real_find(name)
    )

    with pytest.raises(SambaUnavailableError, match="exited at start with code 1"):
        smbd.start_peer(samba_base)


def test_jobs_dirs_are_fresh_and_writable(jobs_dirs: list[tuple[SambaPeer, str, Path]]) -> None:
    """jobs_dirs gives each shared peer a new, empty t-<uuid8>/jobs folder the test user owns."""
    assert len(jobs_dirs) == 2
    assert len({peer.port for peer, _, _ in jobs_dirs}) == 2
    uid = pwd.getpwnam(smbd.TEST_USER).pw_uid
    for peer, unc, disk in jobs_dirs:
        assert disk.is_dir()
        assert list(disk.iterdir()) == []
        assert disk.stat().st_uid == uid
        assert disk.parent.name.startswith("t-")
        assert unc == peer.unc(disk.parent.name, "jobs")
        share_relative = os.path.relpath(disk, peer.share_path).replace("/", "\\")
        result = run_smbclient(peer, f'cd "{share_relative}"; mkdir made')
        assert result.returncode == 0, result.stderr + result.stdout
        assert (disk / "made").is_dir()


def port_open(port: int) -> bool:
    """Tell whether something accepts TCP connections on loopback ``port``."""
    try:
        with socket.create_connection((smbd.HOST, port), timeout=0.2):
            return True
    except OSError:
        return False
