"""jobsync's own message path on a connection smbprotocol has logged on.

smbprotocol does the hard, rarely run part: negotiating the dialect, authenticating (NTLM or
Kerberos) and deriving the session keys. For the many small requests of a sync its general
message path costs several times what the work itself does: message objects built and parsed
field by field, a cipher object per message, a receive thread and a lock and event per request.
So once the share is connected, :func:`take_over` stops smbprotocol's receive thread and hands
the socket and the keys to a :class:`Channel`, which packs, seals, sends and reads whole
compounds itself, on the calling thread. smbprotocol is not used on that connection again.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Any

from jobsync.transport.smb import wire
from jobsync.transport.smb.security import (
    AES_128_CCM,
    AES_CMAC,
    HMAC_SHA256,
    TRANSFORM_PROTOCOL,
    IntegrityError,
    Sealer,
    Signer,
)

_HEADER = struct.Struct("<4sHHIHHIIQIIQ16s")  # MS-SMB2 2.2.1.2, 64 bytes
_RESPONSE = struct.Struct("<IHHIIQ")  # Status, Command, CreditResponse, Flags, Next, MessageId
_PROTOCOL = b"\xfeSMB"
_FLAG_ASYNC = 0x2
_FLAG_RELATED = 0x4
_FLAG_DFS = 0x10000000
_DIALECT_2_0_2 = 0x0202
_DIALECT_3_0 = 0x0300
_DIALECT_3_1_1 = 0x0311
_READ_SIZE = 1 << 18
_UNSOLICITED = 0xFFFFFFFFFFFFFFFF  # e.g. an oplock break; jobsync asks for none


class ChannelClosedError(ConnectionError):
    """The server closed the connection, or it was cut."""


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to one request: its NT status and its body (after the 64-byte header)."""

    status: int
    body: bytes = b""

    @property
    def ok(self) -> bool:
        """Whether the server carried the request out."""
        return self.status == wire.STATUS_SUCCESS


@dataclass(frozen=True)
class Session:
    """What the channel needs to know about a logged-on session and its share."""

    session_id: int
    tree_id: int
    dialect: int
    sealer: Sealer | None
    signer: Signer | None
    dfs: bool
    multi_credit: bool

    def describe(self) -> str:
        """The dialect and protection, e.g. "SMB 3.1.1, encrypted with AES-128-GCM"."""
        dialect = f"SMB {self.dialect >> 8}.{(self.dialect >> 4) & 0xF}.{self.dialect & 0xF}"
        dialect = dialect.removesuffix(".0")
        if self.sealer is not None:
            return f"{dialect}, encrypted with {self.sealer.name}"
        if self.signer is not None:
            return f"{dialect}, signed with {self.signer.name}"
        return f"{dialect}, neither signed nor encrypted"


class Channel:
    """Sends compounds and reads their replies on one socket; one thread at a time."""

    def __init__(
        self,
        sock: socket.socket,
        session: Session,
        *,
        next_id: int,
        granted: int,
        credits_wanted: int,
        timeout: float,
    ) -> None:
        """Continue the connection from message id ``next_id``; ids below ``granted`` may be used.

        The socket is switched to non-blocking: waits happen in :func:`select.select`, bounded
        by ``timeout``, and only when the socket cannot move data at once.
        """
        sock.setblocking(False)  # noqa: FBT003 - the stdlib's own signature
        self._sock = sock
        self._session = session
        self._next_id = next_id
        self._granted = granted
        self._wanted = credits_wanted
        self._timeout = timeout
        self._inbox = bytearray()
        self._replies: dict[int, Reply] = {}

    @property
    def protection(self) -> str:
        """The dialect and how messages are protected."""
        return self._session.describe()

    @property
    def credits(self) -> int:
        """Credits the server has granted and no request has spent yet."""
        return self._granted - self._next_id

    def send(self, compound: list[wire.Request], *, related: bool) -> list[int]:
        """Send the requests as one compound; returns their message ids."""
        session = self._session
        ids: list[int] = []
        parts: list[bytes] = []
        last = len(compound) - 1
        for i, request in enumerate(compound):
            charge = request.charge if session.multi_credit else 0
            message_id = self._next_id
            if self.credits < max(charge, 1):
                raise ChannelClosedError("the server granted too few credits")
            self._next_id += max(charge, 1)
            # Ask for what the request spends, and a little more while below the wanted window.
            asked = max(charge, 1) + (8 if self.credits < self._wanted else 0)
            flags = (_FLAG_RELATED if related and i else 0) | (_FLAG_DFS if session.dfs else 0)
            length = wire.HEADER_SIZE + len(request.body)
            padding = 0 if i == last else -length % 8
            header = _HEADER.pack(
                _PROTOCOL, 64, charge, 0, request.command, asked, flags,
                0 if i == last else length + padding, message_id, 0, session.tree_id,
                session.session_id, b"",
            )  # fmt: skip
            message = header + request.body + bytes(padding)
            if session.signer is not None and session.sealer is None:
                signed = bytearray(message)
                session.signer.sign(signed)
                message = bytes(signed)
            parts.append(message)
            ids.append(message_id)
        data = b"".join(parts)
        if session.sealer is not None:
            data = session.sealer.seal(data)
        self._send_frame(data)
        return ids

    def receive(self, message_id: int) -> Reply:
        """The final reply to ``message_id``, reading from the socket until it arrives."""
        while message_id not in self._replies:
            self._read_frames()
        return self._replies.pop(message_id)

    # -- the socket ---------------------------------------------------------------------------

    def _send_frame(self, data: bytes) -> None:
        frame = memoryview(len(data).to_bytes(4, "big") + data)
        while frame:
            try:
                sent = self._sock.send(frame)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                raise ChannelClosedError(f"connection lost: {exc}") from None
            frame = frame[sent:]
            if frame:
                # The server is not reading: take in what it sends meanwhile, so neither side
                # waits for the other with full buffers.
                self._wait(write=True)

    def _wait(self, *, write: bool) -> None:
        """Wait until the socket can be read (then read it) or, when ``write``, written."""
        readable, writable, _ = select.select(
            [self._sock], [self._sock] if write else [], [], self._timeout
        )
        if not readable and not writable:
            raise TimeoutError("no answer from the server")
        if readable:
            self._fill()

    def _fill(self) -> bool:
        """Read what has arrived; returns False when nothing had."""
        try:
            data = self._sock.recv(_READ_SIZE)
        except BlockingIOError:
            return False
        except OSError as exc:
            raise ChannelClosedError(f"connection lost: {exc}") from None
        if not data:
            raise ChannelClosedError("the server closed the connection")
        self._inbox += data
        return True

    def _read_frames(self) -> None:
        """Read at least one whole frame and file every reply in it."""
        while True:
            inbox = self._inbox
            if len(inbox) >= 4:  # noqa: PLR2004 - the length prefix
                size = int.from_bytes(inbox[1:4], "big")
                if len(inbox) >= 4 + size:
                    frame = bytes(inbox[4 : 4 + size])
                    del inbox[: 4 + size]
                    self._file(frame)
                    return
            if not self._fill():
                self._wait(write=False)

    def _file(self, frame: bytes) -> None:
        session = self._session
        if frame[:4] == TRANSFORM_PROTOCOL:
            if session.sealer is None:
                raise IntegrityError("encrypted message on a session without encryption")
            frame = session.sealer.open(frame)
        elif session.sealer is not None:
            raise IntegrityError("unencrypted message on an encrypted session")
        pos = 0
        while True:
            if frame[pos : pos + 4] != _PROTOCOL:
                raise IntegrityError("not an SMB2 message")
            status, _command, granted, flags, next_command, message_id = _RESPONSE.unpack_from(
                frame, pos + 8
            )
            end = pos + next_command if next_command else len(frame)
            self._granted += granted
            interim = status == wire.STATUS_PENDING and flags & _FLAG_ASYNC
            if not interim and message_id != _UNSOLICITED:
                if session.signer is not None and session.sealer is None:
                    session.signer.verify(frame[pos:end])
                self._replies[message_id] = Reply(status, frame[pos + wire.HEADER_SIZE : end])
            if not next_command:
                return
            pos = end


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
) -> Channel:
    """Stop smbprotocol's receive thread and continue the connection on a :class:`Channel`.

    An ECHO asking for ``credits_wanted`` credits wakes the receive thread, which then finds
    the stand-in transport and ends. If the thread ended before the reply came, the channel
    reads the reply itself. Raises ``TimeoutError`` if the thread does not end in time.
    """
    from smbprotocol.connection import SMB2Echo  # noqa: PLC0415 - only needed here

    real = conn.transport
    worker = getattr(conn, "_t_worker", None)  # the thread to stop
    sock = getattr(real, "_sock", None)  # the socket to continue on
    if not isinstance(worker, threading.Thread) or not isinstance(sock, socket.socket):
        raise TypeError("this smbprotocol version is not supported (see pyproject.toml)")
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
    )
    if request.response is None:
        channel.receive(echo_id)  # the thread ended before the reply: read it here
    return channel


def _session_of(conn: Any, session: Any, tree: Any) -> Session:  # noqa: ANN401
    dialect = int(conn.dialect)
    encrypt = bool(session.encrypt_data or tree.encrypt_data)
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
    )
