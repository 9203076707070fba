"""What jobsync relies on in smbprotocol, checked so that an upgrade fails here, loudly.

jobsync's channel takes over a connection smbprotocol has logged on (transport/smb/logon.py):
it stops smbprotocol's receive thread and continues on its socket with its keys and credit
window. Those are internals, so pyproject.toml pins the tested 1.17 line; these tests say what
must still be there before anyone raises the pin. Errors are mapped by type, so every
exception class smbprotocol has must land on a specific error of jobsync's tree.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import uuid

import pytest
import smbprotocol.exceptions as smb_errors
from smbprotocol.connection import Connection
from smbprotocol.header import NtStatus, SMB2HeaderResponse
from smbprotocol.session import Session
from smbprotocol.transport import Tcp
from smbprotocol.tree import TreeConnect

from jobsync.config.model import PeerConfig, UncPath
from jobsync.errors import PeerError
from jobsync.transport.smb.logon import check_library, library_version
from jobsync.transport.smb.statuses import translate

CONNECTION_FIELDS = (
    "_t_worker",  # the receive thread take_over() stops
    "transport",  # replaced by a stand-in whose recv() ends that thread
    "sequence_window",  # the credits spent and granted before the hand-over
    "dialect",
    "max_transact_size",
    "max_read_size",
    "max_write_size",
    "supports_multi_credit",
    "supports_encryption",
    "cipher_id",
    "signing_algorithm_id",
)
SESSION_FIELDS = (
    "session_id",
    "encryption_key",
    "decryption_key",
    "signing_key",
    "signing_required",
    "encrypt_data",
)
TREE_FIELDS = ("tree_connect_id", "is_dfs_share", "encrypt_data")


def test_the_pinned_smbprotocol_has_what_the_hand_over_uses() -> None:
    """Each attribute take_over() and _session_of() read exists in the pinned version."""
    check_library()
    conn = Connection(uuid.uuid4(), "127.0.0.1", 445)
    missing = [f"Connection.{name}" for name in CONNECTION_FIELDS if not hasattr(conn, name)]
    missing += [] if hasattr(Tcp("127.0.0.1", 445), "_sock") else ["Tcp._sock"]
    for cls, fields in ((Session, SESSION_FIELDS), (TreeConnect, TREE_FIELDS)):
        source = inspect.getsource(cls)
        missing += [f"{cls.__name__}.{f}" for f in fields if f"self.{f} =" not in source]
    assert "recv(self._receive_timeout)" in inspect.getsource(Connection), (
        "the receive thread no longer reads through transport.recv(): take_over() cannot end it"
    )
    assert missing == []


_UNC = UncPath(host="srv", share="integrify$", folder="jobs")
_CONFIG = PeerConfig(
    name="node2",
    path=str(_UNC),
    target=_UNC,
    port=445,
    username="svc",
    password=None,
    encrypt=True,
)


def _translate(exc: BaseException) -> PeerError:
    return translate(exc, config=_CONFIG, unc=_UNC, doing="listing", timeout=5, timed_out=False)


def _every_exception_class() -> list[type[smb_errors.SMBException]]:
    found: list[type[smb_errors.SMBException]] = []
    todo = [smb_errors.SMBException]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return [c for c in found if c.__module__ == smb_errors.__name__]


def _instance(cls: type[smb_errors.SMBException]) -> smb_errors.SMBException:
    if issubclass(cls, smb_errors.SMBResponseException):
        header = SMB2HeaderResponse()
        header["status"] = getattr(cls, "_STATUS_CODE", NtStatus.STATUS_UNSUCCESSFUL)
        return cls(header)
    if issubclass(cls, smb_errors.SMBOSError):
        return cls(NtStatus.STATUS_ACCESS_DENIED, "jobs")
    if issubclass(cls, smb_errors.SMBLinkRedirectionError):
        return cls("cannot redirect", r"\\h\s\jobs", r"\\other\s")
    if issubclass(cls, smb_errors.SMBUnsupportedFeature):
        return cls(0x0210, 0x0300, "Encryption", True)  # noqa: FBT003 - smbprotocol's signature
    return cls("what the library said")


@pytest.mark.parametrize("cls", _every_exception_class(), ids=lambda c: c.__name__)
def test_every_smbprotocol_exception_class_is_mapped(cls: type[smb_errors.SMBException]) -> None:
    """No smbprotocol error falls through to the catch-all: each has a specific translation."""
    error = _translate(_instance(cls))
    assert isinstance(error, PeerError)
    assert "failed while" not in str(error)  # the catch-all for what is not smbprotocol's
    assert str(error).startswith("peer node2: ")
    if issubclass(cls, smb_errors.SMBResponseException):
        assert "0x" in str(error)  # the NT status, in words and code


def test_something_that_is_not_smbprotocols_is_still_a_peer_error() -> None:
    """A foreign exception still becomes one line naming the peer and the exception."""
    error = _translate(KeyError("x"))
    assert str(error) == "peer node2: failed while listing: KeyError: 'x'"


def test_the_version_read_from_the_folder_name_is_the_installed_one() -> None:
    """The quick look at ``smbprotocol-*.dist-info`` agrees with ``importlib.metadata``."""
    assert library_version() == importlib.metadata.version("smbprotocol")
