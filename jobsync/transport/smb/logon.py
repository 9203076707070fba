"""Connecting and logging on with smbprotocol, then handing the connection to the channel.

This is the only module that touches smbprotocol's internals (the receive thread, the socket,
the credit window), which is why pyproject.toml pins the tested 1.17 line and
:func:`check_library` refuses any other; tests/unit/test_smb_library.py fails loudly if the pinned
version stops having what :func:`take_over` relies on. smbprotocol's errors are translated, by
type, in :mod:`~jobsync.transport.smb.statuses`.

Where smbprotocol differs from a Windows client, this module makes up the difference:

- Against an SMB 2.x server, smbprotocol still announces SMB 3 capabilities (it offered SMB 3
  too), so a server that wants encryption asks the 2.x session for it, which smbprotocol then
  refuses (Samba's ``smb encrypt = desired``). A client limited to 2.x announces none, is not
  asked, and signs: :meth:`Connector._connect` negotiates again offering only that dialect.
- Every wait is bounded: session setup and tree connect take no timeout in smbprotocol, so a
  timer shuts the socket down when they outlive the peer's timeout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

import smbprotocol
from smbprotocol.connection import Connection, SMB2Echo
from smbprotocol.session import Session as SmbSession
from smbprotocol.tree import TreeConnect

from jobsync.config.model import PeerConfig, UncPath
from jobsync.errors import (
    InstallationError,
    PeerError,
    PeerPathError,
    PeerSecurityError,
    PeerUnreachableError,
)
from jobsync.transport.smb.channel import Channel
from jobsync.transport.smb.framing import (
    AES_128_CCM,
    AES_CMAC,
    HMAC_SHA256,
    Limits,
    Sealer,
    Session,
    Signer,
)
from jobsync.transport.smb.statuses import translate

SUPPORTED_VERSION = "1.17."  # the receive thread, transport and window this module relies on
_DIALECT_2_0_2, _DIALECT_3_0, _DIALECT_3_1_1 = 0x0202, 0x0300, 0x0311


def library_version() -> str:
    """The installed smbprotocol's version, from its ``.dist-info`` folder beside the package.

    The folder's name carries the version (PEP 427); reading it costs a directory listing,
    where ``importlib.metadata`` costs every push a tenth of its start-up. Other layouts (an
    egg, a zip) fall back to ``importlib.metadata``.
    """
    site = Path(smbprotocol.__file__).resolve().parent.parent
    for info in site.glob("smbprotocol-*.dist-info"):
        return info.name.removeprefix("smbprotocol-").removesuffix(".dist-info")
    import importlib.metadata

    try:
        return importlib.metadata.version("smbprotocol")
    except importlib.metadata.PackageNotFoundError:
        return "none"


def check_library() -> None:
    """Refuse an smbprotocol other than the tested line: :func:`take_over` relies on it."""
    version = library_version()
    if not version.startswith(SUPPORTED_VERSION):
        raise InstallationError(
            f"jobsync needs smbprotocol {SUPPORTED_VERSION}x, but {version} is installed; "
            "reinstall jobsync with its pinned dependencies"
        )


class Connector:
    """Sets up one logged-on connection to a peer's share, within the peer's timeout."""

    def __init__(
        self,
        config: PeerConfig,
        unc: UncPath,
        *,
        timeout: float,
        pending_limit: float,
        credits_wanted: int,
    ) -> None:
        """Prepare to connect to ``unc`` with ``config``'s port, account and protection."""
        self._config = config
        self._unc = unc
        self._timeout = timeout
        self._pending_limit = pending_limit
        self._credits_wanted = credits_wanted
        self._conn: Any = None
        self._sock: socket.socket | None = None
        self.timed_out = threading.Event()

    def connect(self) -> Channel:
        """Connect, log on and connect the share; raises a :class:`PeerError` naming the peer."""
        check_library()
        timer = threading.Timer(self._timeout, self._time_out)
        timer.daemon = True
        timer.start()
        try:
            return self._connect()
        except (PeerError, InstallationError):
            raise
        except Exception as exc:  # translated into the error tree here, once
            raise self.translate(exc, doing="connecting") from exc
        finally:
            timer.cancel()

    def _connect(self) -> Channel:
        config, unc = self._config, self._unc
        conn = self._negotiate(None)
        if int(conn.dialect) < _DIALECT_3_0:
            # A 2.x server: negotiate again offering only its dialect, as a 2.x client does.
            # Offering SMB 3 announces SMB 3 capabilities, and a server may then ask a 2.x
            # session for encryption (Samba does, and drops the connection at the first
            # interim answer it cannot encrypt).
            dialect = int(conn.dialect)
            self.discard()
            conn = self._negotiate(dialect)
        session = self._log_on(conn)
        tree = TreeConnect(session, f"\\\\{unc.host}\\{unc.share}")
        tree.connect()
        if tree.is_dfs_share:
            raise PeerPathError(
                f"peer {config.name}: \\\\{unc.host}\\{unc.share} is a DFS namespace, which "
                "jobsync does not follow; name the share of the server that holds the jobs "
                "folder (the DFS link's target) in the peer's path"
            )
        return take_over(
            conn,
            session,
            tree,
            credits_wanted=self._credits_wanted,
            timeout=self._timeout,
            pending_limit=self._pending_limit,
        )

    def _negotiate(self, dialect: int | None) -> Any:  # noqa: ANN401 - smbprotocol's Connection
        config, unc = self._config, self._unc
        conn = Connection(uuid.uuid4(), unc.host, config.port, require_signing=True)
        self._conn = conn
        try:
            # A little longer than the timer, which decides: it shuts the socket down and marks
            # the failure a timeout, whichever wait of smbprotocol's it interrupts.
            conn.connect(dialect=dialect, timeout=self._timeout + 1)
        except (ValueError, OSError) as exc:
            cause = exc.__cause__ or exc
            reason = getattr(cause, "strerror", None) or str(cause)
            raise PeerUnreachableError(
                f"peer {config.name}: cannot connect to {unc.host} port {config.port}: {reason}"
            ) from exc
        self._sock = conn.transport._sock  # noqa: SLF001 - so a timer can shut it down
        return conn

    def _log_on(self, conn: Any) -> Any:  # noqa: ANN401 - smbprotocol objects are untyped
        config = self._config
        dialect = int(conn.dialect)
        if config.encrypt and not conn.supports_encryption:
            raise PeerSecurityError(
                f"peer {config.name}: the server agreed to {_dialect_name(dialect)} without SMB3 "
                "encryption, which this peer requires; enable SMB 3 encryption on the server, "
                "or set encrypt = false for this peer only if the network is trusted"
            )
        session = SmbSession(
            conn,
            username=config.username,
            password=config.password.value if config.password else None,
            require_encryption=config.encrypt,
        )
        session.connect()
        return session

    def _time_out(self) -> None:
        self.timed_out.set()
        self.shutdown()

    def shutdown(self) -> None:
        """Wake every blocked send and receive of the connection being set up, from any thread."""
        sock = self._sock
        if sock is None and self._conn is not None:
            sock = getattr(self._conn.transport, "_sock", None)
        shutdown(sock)

    def discard(self) -> None:
        """Release a connection whose set-up failed (smbprotocol's thread may still read it)."""
        conn, self._conn = self._conn, None
        self.shutdown()
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.disconnect(close=False)
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def translate(self, exc: BaseException, *, doing: str) -> PeerError:
        """The most specific :class:`PeerError` for a failure of this connection."""
        return translate(
            exc,
            config=self._config,
            unc=self._unc,
            doing=doing,
            timeout=self._timeout,
            timed_out=self.timed_out.is_set(),
        )


def shutdown(sock: socket.socket | None) -> None:
    """Shut a socket down, waking every thread blocked on it; harmless if already closed."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _dialect_name(dialect: int) -> str:
    text = f"SMB {dialect >> 8}.{(dialect >> 4) & 0xF}.{dialect & 0xF}"
    return text.removesuffix(".0")


# -- taking a connection over from smbprotocol -----------------------------------------------


class _Released:
    """Stands in for smbprotocol's transport so its receive thread ends at its next read."""

    def __init__(self, real: Any) -> None:  # noqa: ANN401 - smbprotocol's Tcp is untyped
        self._real = real
        self.connected = real.connected

    def send(self, data: bytes) -> None:
        self._real.send(data)

    def recv(self, _timeout: float) -> bytes:
        return b""  # "the socket closed": the receive thread returns

    def close(self) -> None:
        """Nothing: the channel owns the socket now."""


def take_over(
    conn: Any,  # noqa: ANN401 - smbprotocol objects are untyped
    session: Any,  # noqa: ANN401
    tree: Any,  # noqa: ANN401
    *,
    credits_wanted: int,
    timeout: float,
    pending_limit: float,
) -> Channel:
    """Stop smbprotocol's receive thread and continue the connection on a :class:`Channel`.

    An ECHO asking for ``credits_wanted`` credits wakes the receive thread, which then finds
    the stand-in transport and ends. If the thread ended before the reply came, the channel
    reads the reply itself. Raises ``TimeoutError`` if the thread does not end in time.
    """
    real = conn.transport
    worker = getattr(conn, "_t_worker", None)  # the thread to stop
    sock = getattr(real, "_sock", None)  # the socket to continue on
    if not isinstance(worker, threading.Thread) or not isinstance(sock, socket.socket):
        raise InstallationError("this smbprotocol version is not supported (see pyproject.toml)")
    conn.transport = _Released(real)
    request = conn.send(SMB2Echo(), sid=session.session_id, credit_request=credits_wanted)
    echo_id = request.message["message_id"].get_value()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError("the SMB receive thread did not stop")
    window = conn.sequence_window  # what smbprotocol spent and was granted so far
    channel = Channel(
        sock,
        _session_of(conn, session, tree),
        next_id=window["low"],
        granted=window["high"],
        credits_wanted=credits_wanted,
        timeout=timeout,
        pending_limit=pending_limit,
        outstanding=() if request.response is not None else (echo_id,),
    )
    if request.response is None:
        channel.receive(echo_id)  # the thread ended before the reply: read it here
    return channel


def _session_of(conn: Any, session: Any, tree: Any) -> Session:  # noqa: ANN401
    dialect = int(conn.dialect)
    encrypt = dialect >= _DIALECT_3_0 and bool(session.encrypt_data or tree.encrypt_data)
    sealer = None
    if encrypt:
        cipher = int(conn.cipher_id) if dialect >= _DIALECT_3_1_1 else AES_128_CCM
        sealer = Sealer(
            cipher,
            session_id=session.session_id,
            encrypt_key=session.encryption_key,
            decrypt_key=session.decryption_key,
        )
    signer = None
    if session.signing_required and session.signing_key:
        if dialect >= _DIALECT_3_1_1 and conn.signing_algorithm_id is not None:
            algorithm = int(conn.signing_algorithm_id)
        else:
            algorithm = AES_CMAC if dialect >= _DIALECT_3_0 else HMAC_SHA256
        signer = Signer(algorithm, session.signing_key)
    return Session(
        session_id=session.session_id,
        tree_id=tree.tree_connect_id,
        dialect=dialect,
        sealer=sealer,
        signer=signer,
        dfs=bool(tree.is_dfs_share),
        multi_credit=dialect > _DIALECT_2_0_2 and bool(conn.supports_multi_credit),
        limits=Limits(
            max_transact=int(conn.max_transact_size),
            max_read=int(conn.max_read_size),
            max_write=int(conn.max_write_size),
        ),
    )
