"""jobsync's own message path on a connection smbprotocol has logged on.

smbprotocol does the hard, rarely run part: negotiating the dialect, authenticating (NTLM or
Kerberos) and deriving the session keys (see :mod:`jobsync.transport.smb.logon`). For the many
small requests of a sync its general message path costs several times what the work itself
does, so once the share is connected a :class:`Channel` packs, seals, sends and reads whole
compounds itself, on the calling thread.

What a Windows client does and the channel does too:

- **Credits.** It never sends past the server's grant (MS-SMB2 3.2.4.1.5). When the grant is
  short and nothing is in flight it asks for more with an ECHO (:meth:`Channel.top_up`), and
  :attr:`Channel.peak` tells callers how large a request the server's window allows.
- **Interim answers.** A server that must wait (another client holds a lease or an oplock on the
  file and the server is breaking it) answers STATUS_PENDING with an AsyncId, and the final
  answer may take up to the break timeout (35 s on Windows and Samba). The channel keeps the
  AsyncId, waits up to ``pending_limit`` for that request, independently of ``timeout`` for
  ordinary silence, and then cancels it (SMB2 CANCEL): the request ends STATUS_CANCELLED and
  only its own file fails. While it waits, an ECHO every ``timeout`` proves the server alive.
- **A lost session** (expired Kerberos ticket, logged off, share closed) raises
  :class:`SessionLostError`, so the connection is logged on again rather than failed.

Requests sent and not finally answered: which ones the server said it is working on.
A server that must wait (another client holds a lease or an oplock on the file, and the server
is breaking it) answers STATUS_PENDING with an AsyncId, and the final answer may take up to its
break timeout. Such a request may wait ``pending_limit`` seconds; what follows it in its
compound waits with it. Silence while only such requests wait is not a frozen server.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass

from jobsync.transport.smb import statuses, wire
from jobsync.transport.smb.framing import (
    TRANSFORM_PROTOCOL,
    ChannelClosedError,
    FrameSocket,
    IntegrityError,
    Reply,
    Session,
)
from jobsync.transport.smb.wire import MalformedReplyError


@dataclass
class Waiting:
    """A request sent and not finally answered yet."""

    chain: tuple[int, ...]  # the ids of its compound, in order
    pending_until: float | None = None  # set once the server answered STATUS_PENDING
    async_id: int | None = None
    cancelled: bool = False


class Outstanding:
    """The requests of one connection still waiting for their final answers."""

    def __init__(self, *, pending_limit: float, sent: Iterable[int] = ()) -> None:
        """Track ``sent`` (requests sent before the channel took the connection over)."""
        self._pending_limit = pending_limit
        self._waiting = {message_id: Waiting((message_id,)) for message_id in sent}

    def __len__(self) -> int:
        """How many requests wait."""
        return len(self._waiting)

    def sent(self, chain: tuple[int, ...]) -> None:
        """A compound went out."""
        for message_id in chain:
            self._waiting[message_id] = Waiting(chain)

    def get(self, message_id: int) -> Waiting | None:
        """The request ``message_id`` if it still waits."""
        return self._waiting.get(message_id)

    def answered(self, message_id: int) -> None:
        """Its final answer came."""
        del self._waiting[message_id]

    def pending(self, message_id: int, async_id: int) -> None:
        """The server works on ``message_id``; what follows it in its compound waits with it."""
        waiting = self._waiting[message_id]
        until = time.monotonic() + self._pending_limit
        waiting.async_id = async_id
        waiting.pending_until = None if waiting.cancelled else until
        for later in waiting.chain[waiting.chain.index(message_id) + 1 :]:
            behind = self._waiting.get(later)
            if behind is not None and behind.pending_until is None and not behind.cancelled:
                behind.pending_until = until

    def quiet_limit(self, timeout: float) -> float:
        """How long silence may last: ``timeout``, or less when a pending request falls due."""
        deadlines = [w.pending_until for w in self._waiting.values() if w.pending_until]
        if deadlines and len(deadlines) == len(self._waiting):
            return max(0.0, min(timeout, min(deadlines) - time.monotonic()))
        return timeout

    def overdue(self) -> list[int]:
        """After silence: the pending requests past their limit, to cancel.

        Raises ``TimeoutError`` when a request the server never said it works on is among
        those waiting: the server itself is silent.
        """
        if not self._waiting or any(w.pending_until is None for w in self._waiting.values()):
            raise TimeoutError("no answer from the server")
        now = time.monotonic()
        return [i for i, w in self._waiting.items() if w.pending_until and w.pending_until <= now]


_HEADER = struct.Struct("<4sHHIHHIIQIIQ16s")  # MS-SMB2 2.2.1.2, 64 bytes
_RESPONSE = struct.Struct("<IHHIIQ")  # Status, Command, CreditResponse, Flags, Next, MessageId
_ASYNC_ID = struct.Struct("<Q")  # at offset 32 of an async header (2.2.1.1)
_PROTOCOL = b"\xfeSMB"
_FLAG_ASYNC = 0x2
_FLAG_RELATED = 0x4
_FLAG_DFS = 0x10000000
_UNSOLICITED = 0xFFFFFFFFFFFFFFFF  # e.g. an oplock break; jobsync asks for none
_TOP_UP_TRIES = 4


class SessionLostError(ChannelClosedError):
    """The server no longer knows the session or the share: log on again (``status`` says why)."""

    def __init__(self, status: int) -> None:
        """Record the NT status that ended the session."""
        super().__init__(statuses.describe(status))
        self.status = status


class CreditsError(ChannelClosedError):
    """The server grants fewer credits at once than one request needs, even when asked."""


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
        pending_limit: float = 60.0,
        outstanding: tuple[int, ...] = (),
    ) -> None:
        """Continue the connection from message id ``next_id``; ids below ``granted`` may be used.

        The socket is switched to non-blocking: waits happen in ``select``, bounded
        by ``timeout`` of silence, or ``pending_limit`` for a request the server said it is
        working on. ``outstanding`` are requests sent before the channel took over.
        """
        self._frames = FrameSocket(sock, timeout=timeout)
        self._session = session
        self._next_id = next_id
        self._granted = granted
        self._wanted = credits_wanted
        self._timeout = timeout
        self._replies: dict[int, Reply] = {}
        self._waiting = Outstanding(pending_limit=pending_limit, sent=outstanding)
        self._probes: set[int] = set()  # ECHOs the channel sent itself; their replies are dropped
        self._peak = self.credits

    @property
    def protection(self) -> str:
        """The dialect and how messages are protected."""
        return self._session.describe()

    @property
    def session(self) -> Session:
        """The session and share this channel carries."""
        return self._session

    @property
    def credits(self) -> int:
        """Credits the server has granted and no request has spent yet."""
        return self._granted - self._next_id

    @property
    def peak(self) -> int:
        """The most credits ever on hand at once: the size of the server's window."""
        return self._peak

    def cost(self, compound: list[wire.Request]) -> int:
        """Credits sending ``compound`` spends."""
        if not self._session.multi_credit:
            return len(compound)
        return sum(max(r.charge, 1) for r in compound)

    # -- sending ------------------------------------------------------------------------------

    def send(self, compound: list[wire.Request], *, related: bool) -> list[int]:
        """Send the requests as one compound; returns their message ids.

        Raises :class:`CreditsError` when the grant cannot cover it: callers wait for replies
        or :meth:`top_up` first.
        """
        if self.credits < self.cost(compound):
            raise CreditsError(
                f"a request needs {self.cost(compound)} credits and the server granted "
                f"{self.credits}"
            )
        session = self._session
        ids: list[int] = []
        parts: list[bytes] = []
        last = len(compound) - 1
        for i, request in enumerate(compound):
            charge = request.charge if session.multi_credit else 0
            message_id = self._next_id
            self._next_id += max(charge, 1)
            # Ask for what the request spends, and a little more while below the wanted window.
            asked = max(charge, 1) + max(request.ask, 8 if self.credits < self._wanted else 0)
            flags = (_FLAG_RELATED if related and i else 0) | (_FLAG_DFS if session.dfs else 0)
            length = wire.HEADER_SIZE + len(request.body)
            padding = 0 if i == last else -length % 8
            header = _HEADER.pack(
                _PROTOCOL, 64, charge, 0, request.command, asked, flags,
                0 if i == last else length + padding, message_id, 0, session.tree_id,
                session.session_id, b"",
            )  # fmt: skip
            parts.append(self._signed(header + request.body + bytes(padding)))
            ids.append(message_id)
        self._waiting.sent(tuple(ids))
        self._send_message(b"".join(parts))
        return ids

    def _signed(self, message: bytes) -> bytes:
        session = self._session
        if session.signer is None or session.sealer is not None:
            return message
        signed = bytearray(message)
        session.signer.sign(signed)
        return bytes(signed)

    def _send_message(self, data: bytes) -> None:
        if self._session.sealer is not None:
            data = self._session.sealer.seal(data)
        self._frames.send(data)

    def top_up(self, needed: int) -> None:
        """With nothing in flight, ask the server for credits until ``needed`` are on hand.

        Raises :class:`CreditsError` when the server will not grant that many at once.
        """
        for _ in range(_TOP_UP_TRIES):
            if self.credits >= needed:
                return
            (message_id,) = self.send([wire.echo(ask=needed - self.credits + 8)], related=False)
            self.receive(message_id)
        if self.credits < needed:
            raise CreditsError(
                f"the server grants at most {self._peak} credits at once; a request needs {needed}"
            )

    def cancel(self, message_id: int) -> None:
        """Ask the server to give up a request it answered STATUS_PENDING (MS-SMB2 3.2.4.24).

        The request then ends with its final answer (usually STATUS_CANCELLED). A CANCEL spends
        no credit and gets no answer of its own.
        """
        waiting = self._waiting.get(message_id)
        if waiting is None or waiting.async_id is None or waiting.cancelled:
            return
        waiting.cancelled = True
        waiting.pending_until = None  # its final answer is now due like any other
        session = self._session
        flags = _FLAG_ASYNC | (_FLAG_DFS if session.dfs else 0)
        async_low, async_high = waiting.async_id & 0xFFFFFFFF, waiting.async_id >> 32
        header = _HEADER.pack(
            _PROTOCOL, 64, 0, 0, wire.CANCEL, 0, flags, 0, message_id, async_low, async_high,
            session.session_id, b"",
        )  # fmt: skip
        self._send_message(self._signed(header + wire.cancel_body()))

    # -- receiving ----------------------------------------------------------------------------

    def receive(self, message_id: int) -> Reply:
        """The final reply to ``message_id``, reading from the socket until it arrives."""
        while message_id not in self._replies:
            self.wait()
        return self._replies.pop(message_id)

    def take(self, message_id: int) -> Reply:
        """The final reply to ``message_id``, which must have arrived."""
        return self._replies.pop(message_id)

    def wait(self) -> list[int]:
        """Block until at least one final reply arrives; returns the ids it answers."""
        while True:
            filed = self._file_frames()
            if filed:
                return filed
            if self._frames.fill():
                continue
            if self._frames.readable(self._waiting.quiet_limit(self._timeout)):
                self._frames.fill()
            else:
                self._on_silence()

    def _on_silence(self) -> None:
        """Nothing arrived for a while: a frozen server, or requests that are being worked on."""
        overdue = self._waiting.overdue()  # raises when the server itself is silent
        for message_id in overdue:
            self.cancel(message_id)
        if not overdue and not self._probes and self.credits >= 1:
            # Everything waits on the server's own timers: prove the server itself still
            # answers, so a frozen one is found within a timeout or two.
            (probe,) = self.send([wire.echo()], related=False)
            self._probes.add(probe)

    def _file_frames(self) -> list[int]:
        """File every whole frame received; returns the ids of final replies filed."""
        filed: list[int] = []
        for frame in self._frames.frames():
            self._file(frame, filed)
        return filed

    def _file(self, frame: bytes, filed: list[int]) -> None:
        session = self._session
        if frame[:4] == TRANSFORM_PROTOCOL:
            if session.sealer is None:
                raise IntegrityError("encrypted message on a session without encryption")
            frame = session.sealer.open(frame)
        elif session.sealer is not None:
            _raise_if_session_lost(frame)  # a server that lost the session can no longer seal
            raise IntegrityError("unencrypted message on an encrypted session")
        pos = 0
        while True:
            if frame[pos : pos + 4] != _PROTOCOL or len(frame) < pos + wire.HEADER_SIZE:
                raise MalformedReplyError("not an SMB2 message")
            status, _command, granted, flags, next_command, message_id = _RESPONSE.unpack_from(
                frame, pos + 8
            )
            end = pos + next_command if next_command else len(frame)
            if next_command and (next_command < wire.HEADER_SIZE or end > len(frame)):
                raise MalformedReplyError("a compounded reply points past its message")
            self._granted += granted
            self._peak = max(self._peak, self.credits)
            self._file_one(frame[pos:end], status, flags, message_id, filed)
            if not next_command:
                return
            pos = end

    def _file_one(
        self, message: bytes, status: int, flags: int, message_id: int, filed: list[int]
    ) -> None:
        if message_id == _UNSOLICITED:
            return  # an oplock or lease break for some other open: jobsync holds none
        waiting = self._waiting.get(message_id)
        if waiting is None:
            raise MalformedReplyError(f"a reply to message {message_id}, which was not sent")
        if status == statuses.STATUS_PENDING and flags & _FLAG_ASYNC:
            self._waiting.pending(message_id, _ASYNC_ID.unpack_from(message, 32)[0])
            return
        session = self._session
        if session.signer is not None and session.sealer is None:
            try:
                session.signer.verify(message)
            except IntegrityError:
                _raise_if_session_lost(message)  # ... nor sign
                raise
        if status in statuses.SESSION_LOST:
            raise SessionLostError(status)
        self._waiting.answered(message_id)
        if message_id in self._probes:
            self._probes.discard(message_id)
            return
        self._replies[message_id] = Reply(status, message[wire.HEADER_SIZE :])
        filed.append(message_id)


def _raise_if_session_lost(message: bytes) -> None:
    """Raise :class:`SessionLostError` if ``message`` says the session or share is gone.

    Such a message cannot be sealed or signed (the server has dropped the keys), so it is
    taken at its word: the worst a forged one can do is make jobsync log on again.
    """
    if message[:4] == _PROTOCOL and len(message) >= wire.HEADER_SIZE:
        status = _RESPONSE.unpack_from(message, 8)[0]
        if status in statuses.SESSION_LOST:
            raise SessionLostError(status)
