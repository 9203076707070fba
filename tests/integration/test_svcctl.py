r"""Remote service control (MS-SCMR) against Samba's built-in ``Spooler`` service.

Each test has its own smbd (``spooler=True``: the test user is a member of
BUILTIN\Administrators, one ``rpcd_classic`` worker holds the state) and cross-checks what
jobsync's client did with Samba's own client (``net rpc service status``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from jobsync.config.model import PeerConfig, UncPath
from jobsync.credentials import Secret
from jobsync.errors import PeerTimeoutError, PeerUnreachableError
from jobsync.transport.smb.peer import SmbPeer
from jobsync.transport.smb.svcctl import (
    ServiceAccessDeniedError,
    ServiceControlUnsupportedError,
    ServiceManager,
    ServiceNotFoundError,
)

from support.cluster import peer_config
from support.ports import free_port
from support.smbd import ADMIN_SHARE, DEFAULT_PASSWORD, HOST, SambaPeer

pytestmark = pytest.mark.smb

TIMEOUT = 5.0
PLAIN_USER = "jobsyncplain"


@pytest.fixture
def spooler(smb_peer_factory: Callable[..., SambaPeer]) -> SambaPeer:
    """A node whose Spooler service the test user may control."""
    return smb_peer_factory(spooler=True)


def manager(samba: SambaPeer, *, timeout: float = TIMEOUT, **changes: object) -> ServiceManager:
    """Open the service manager of ``samba`` as node2, with ``changes`` to its peer config."""
    config = dataclasses.replace(peer_config(samba), **changes)
    return ServiceManager.open(config, timeout=timeout)


def test_stop_then_start_as_samba_sees_it(spooler: SambaPeer) -> None:
    """A stop leaves Spooler STOPPED and a start RUNNING, as Samba's own client reports too."""
    assert spooler.service_state() == "running"
    with manager(spooler) as scm:
        scm.stop("Spooler")
        assert scm.wait_for("Spooler", "stopped", timeout=TIMEOUT).state == "stopped"
        assert spooler.service_state() == "stopped"
        scm.start("Spooler")
        assert scm.wait_for("Spooler", "running", timeout=TIMEOUT).state == "running"
        assert spooler.service_state() == "running"


def test_starting_a_running_service_is_success(spooler: SambaPeer) -> None:
    """Starting a running service (1056, already running) is what was asked: no error."""
    with manager(spooler) as scm:
        scm.start("Spooler")
        scm.start("Spooler")
        assert scm.status("Spooler").state == "running"
    assert spooler.service_state() == "running"


def test_stopping_a_stopped_service_is_success(spooler: SambaPeer) -> None:
    """Stopping a stopped service (Windows: 1062, not active; Samba: success) is no error."""
    with manager(spooler) as scm:
        scm.stop("Spooler")
        scm.wait_for("Spooler", "stopped", timeout=TIMEOUT)
        scm.stop("Spooler")
        assert scm.status("Spooler").state == "stopped"
    assert spooler.service_state() == "stopped"


def test_unknown_service_is_named_in_words(spooler: SambaPeer) -> None:
    """A display name instead of the service name: 1060, the name and the hint in the message."""
    with manager(spooler) as scm, pytest.raises(ServiceNotFoundError) as caught:
        scm.status("Print Spooler")
    assert caught.value.code == 1060
    assert caught.value.service == "Print Spooler"
    message = str(caught.value)
    assert "peer node2: 127.0.0.1 has no service named 'Print Spooler'" in message
    assert "short name" in message


def test_plain_user_may_query_but_not_stop(spooler: SambaPeer) -> None:
    """A user who is not an administrator reads the state, and is refused a stop in words."""
    spooler.add_user(PLAIN_USER, DEFAULT_PASSWORD)
    with manager(spooler, username=PLAIN_USER) as scm:
        assert scm.status("Spooler").state == "running"
        with pytest.raises(ServiceAccessDeniedError) as caught:
            scm.stop("Spooler")
        assert scm.status("Spooler").state == "running"  # the session survives the refusal
    assert caught.value.code == 5
    assert str(caught.value) == (
        "peer node2: access denied stopping Spooler on 127.0.0.1 (Windows error 5): the account "
        f"jobsync logs on with ({PLAIN_USER}) is not a local administrator of 127.0.0.1: remote "
        "service control needs one"
    )
    assert spooler.service_state() == "running"


def test_changing_the_start_type_is_unsupported_on_samba(spooler: SambaPeer) -> None:
    """Samba faults RChangeServiceConfigW: a distinct error that says what to do by hand."""
    with manager(spooler) as scm:
        with pytest.raises(ServiceControlUnsupportedError) as caught:
            scm.set_start_type("Spooler", "disabled")
        assert scm.status("Spooler").state == "running"  # a fault leaves the pipe usable
    assert caught.value.code == 0x1C010002
    assert str(caught.value) == (
        "peer node2: the server 127.0.0.1 does not support changing a service's start type "
        "(MS-SCMR RChangeServiceConfigW); set Spooler to Disabled by hand"
    )


def test_config_reports_the_spooler_settings(spooler: SambaPeer) -> None:
    """The settings come back in words: display name, start type and account."""
    with manager(spooler) as scm:
        settings = scm.config("Spooler")
    assert settings.display_name == "Print Spooler"
    assert settings.start_type == "demand"
    assert settings.account == "LocalSystem"
    assert settings.binary_path


def test_config_reports_the_account_in_the_registry(spooler: SambaPeer) -> None:
    """The account is what the node's registry says (ObjectName), changed behind our back."""
    account = "CORP\\svc-integrify$"
    with manager(spooler) as scm:
        scm.status("Spooler")  # the helpers have started: they no longer reset the value
        spooler.set_service_value("Spooler", "ObjectName", account)
        assert scm.config("Spooler").account == account


def test_wait_for_gives_up_at_its_deadline(spooler: SambaPeer) -> None:
    """wait_for returns the last status once the (injected) clock passes the deadline."""
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    with manager(spooler) as scm:
        status = scm.wait_for(
            "Spooler", "paused", timeout=1.0, interval=0.4, clock=lambda: now[0], sleep=sleep
        )
    assert status.state == "running"
    assert slept == pytest.approx([0.4, 0.4, 0.2])


def test_a_frozen_server_fails_the_call_within_the_timeout(spooler: SambaPeer) -> None:
    """A node that stops answering mid-session fails the next call in about one timeout."""
    timeout = 1.0
    with manager(spooler, timeout=timeout) as scm:
        scm.status("Spooler")
        spooler.freeze()
        started = time.monotonic()
        with pytest.raises((PeerTimeoutError, PeerUnreachableError)):
            scm.stop("Spooler")
        elapsed = time.monotonic() - started
    assert elapsed < 3 * timeout


def test_a_frozen_server_fails_the_logon_within_the_timeout(spooler: SambaPeer) -> None:
    """A node frozen before the call: opening its service manager fails in about one timeout."""
    timeout = 1.0
    spooler.freeze()
    started = time.monotonic()
    with pytest.raises((PeerTimeoutError, PeerUnreachableError)):
        manager(spooler, timeout=timeout)
    assert time.monotonic() - started < 3 * timeout


def test_an_unreachable_node_is_the_file_transport_error(spooler: SambaPeer) -> None:
    """Nothing listening: the same PeerUnreachableError a file transfer raises."""
    with pytest.raises(PeerUnreachableError) as caught:
        manager(spooler, port=free_port())
    assert "cannot connect to 127.0.0.1 port" in str(caught.value)


@pytest.mark.parametrize(
    ("server", "encrypt", "protection"),
    [("required", True, "encrypted with"), ("off", False, "signed with")],
    ids=["encrypted", "signed"],
)
def test_encrypted_and_signed_sessions(
    smb_peer_factory: Callable[..., SambaPeer], server: str, encrypt: bool, protection: str
) -> None:
    """Service control works over an encrypted session and over a signed-only one."""
    samba = smb_peer_factory(spooler=True, encrypt=server)
    with manager(samba, encrypt=encrypt) as scm:
        assert protection in scm.protection
        scm.stop("Spooler")
        assert scm.wait_for("Spooler", "stopped", timeout=TIMEOUT).state == "stopped"
        scm.start("Spooler")
        assert scm.wait_for("Spooler", "running", timeout=TIMEOUT).state == "running"
    assert samba.service_state() == "running"


def test_admin_share_stands_in_for_c_dollar(
    smb_peer_factory: Callable[..., SambaPeer], tmp_path: Path
) -> None:
    """A peer with ``admin_root`` serves it as ``C$``: the hosts file is reachable there."""
    root = tmp_path / "c-drive"
    etc = root / "Windows" / "System32" / "drivers" / "etc"
    etc.mkdir(parents=True)
    (etc / "hosts").write_bytes(b"127.0.0.1 localhost\r\n")
    samba = smb_peer_factory(spooler=True, admin_root=root)
    unc = UncPath(host=HOST, share=ADMIN_SHARE, folder="Windows\\System32\\drivers\\etc")
    config = PeerConfig(
        name="node2",
        path=str(unc),
        target=unc,
        port=samba.port,
        username=samba.user,
        password=Secret(samba.password),
    )
    peer = SmbPeer(config, unc, timeout=TIMEOUT)
    try:
        assert [f.name for f in peer.list_files()] == ["hosts"]
    finally:
        peer.close()
