"""DCE/RPC calls over a named pipe of a peer's ``IPC$`` share, with their NDR encoding.

Remote service control (MS-SCMR) is DCE/RPC over the ``svcctl`` pipe. The libraries that speak
it either bring an SMB stack of their own (impacket) or wait without a limit (pypsexec), so this
module carries the few PDUs a client needs (MS-RPCE 12.6: BIND, REQUEST, and their answers) on a
:class:`~jobsync.transport.smb.channel.Channel`, where every wait is bounded. Each call is one
FSCTL_PIPE_TRANSCEIVE (write the request, read the answer in one round trip); an answer longer
than that reply is read on with READs. The pipe's bytes are parsed as a stream of fragments,
so a server that splits or joins messages is read the same way.

The stub data is NDR (:mod:`jobsync.transport.smb.rpc`).

NDR, the encoding of DCE/RPC stub data (C706 chapter 14, little-endian).
Only the few shapes the Windows service calls use: DWORDs, context handles and UTF-16 strings,
by reference or by unique pointer. Everything is aligned from the stub's start, as NDR requires.
"""

from __future__ import annotations

import contextlib
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from jobsync.config.model import PeerConfig, UncPath
from jobsync.errors import (
    PeerError,
    PeerIOError,
    PeerPathError,
    PeerSecurityError,
    PeerUnreachableError,
)
from jobsync.transport.smb import statuses, wire
from jobsync.transport.smb.channel import Channel
from jobsync.transport.smb.framing import ChannelClosedError, IntegrityError, Reply
from jobsync.transport.smb.logon import Connector
from jobsync.transport.smb.wire import MalformedReplyError

_U32 = struct.Struct("<I")


class NdrWriter:
    """The stub of one request, aligned from its start as NDR requires."""

    def __init__(self) -> None:
        """Start an empty stub."""
        self._data = bytearray()
        self._referent = 0

    def u32(self, value: int) -> NdrWriter:
        """A DWORD."""
        self._data += bytes(-len(self._data) % 4) + _U32.pack(value)
        return self

    def handle(self, handle: bytes) -> NdrWriter:
        """A context handle (20 bytes, as the server gave it)."""
        if len(handle) != 20:  # noqa: PLR2004 - the size of a context handle
            raise ValueError("a context handle is 20 bytes")
        self._data += bytes(-len(self._data) % 4) + handle
        return self

    def string(self, text: str) -> NdrWriter:
        """A ``[string] wchar_t*`` reference: a conformant varying UTF-16 string with its NUL."""
        chars = (text + "\0").encode("utf-16-le", "surrogatepass")
        count = len(chars) // 2
        self.u32(count).u32(0).u32(count)
        self._data += chars
        return self

    def unique_string(self, text: str | None) -> NdrWriter:
        """A ``[unique, string] wchar_t*``: null, or a referent id and the string."""
        if text is None:
            return self.u32(0)
        self._referent += 4
        return self.u32(0x20000 + self._referent).string(text)

    def bytes(self) -> bytes:
        """The stub built so far."""
        return bytes(self._data)


class NdrReader:
    """Reads a response stub in order; a short or inconsistent one is malformed."""

    def __init__(self, data: bytes) -> None:
        """Read ``data`` from its start."""
        self._data = data
        self._pos = 0

    def _take(self, size: int, align: int) -> bytes:
        start = self._pos + (-self._pos % align)
        end = start + size
        if end > len(self._data):
            raise MalformedReplyError(f"an RPC answer of {len(self._data)} bytes is too short")
        self._pos = end
        return self._data[start:end]

    def u32(self) -> int:
        """A DWORD."""
        value: int = _U32.unpack(self._take(4, 4))[0]
        return value

    def pointer(self) -> bool:
        """A unique pointer's referent id: whether its target follows (here or deferred)."""
        return self.u32() != 0

    def handle(self) -> bytes:
        """A context handle."""
        return self._take(20, 4)

    def string(self) -> str:
        """A conformant varying UTF-16 string, without its terminating NUL."""
        maximum, offset, count = self.u32(), self.u32(), self.u32()
        if offset > maximum or count > maximum - offset:
            raise MalformedReplyError("an RPC string is longer than its own bounds")
        text = self._take(2 * count, 2).decode("utf-16-le", "surrogatepass")
        return text.split("\0", 1)[0]


NCA_S_OP_RNG_ERROR = 0x1C010002  # the server does not implement the operation number
_FAULT_WORDS = {
    NCA_S_OP_RNG_ERROR: "the server does not implement this call",
    0x1C010003: "the server does not offer this interface",
    0x1C01000B: "the server saw a protocol error",
    0x1C00001A: "the server no longer knows the handle",
    0x00000005: "access denied",
    0x000006F7: "the server could not read the call's arguments",
}
_HEADER = struct.Struct("<BBBB4sHHI")  # version, minor, type, flags, data rep, length, auth, call
_REQUEST = struct.Struct("<IHH")  # allocation hint, context id, operation number
_BIND = struct.Struct("<HHIB3xHBx")  # fragment sizes, group, one context: its id, one syntax
_ACK_SIZES = struct.Struct("<HH")  # the largest fragments the server sends, and receives
_REQUEST_PDU, _RESPONSE_PDU, _FAULT_PDU, _BIND_PDU, _BIND_ACK_PDU = 0, 2, 3, 11, 12
_FIRST, _LAST = 0x1, 0x2
_LITTLE_ENDIAN_ASCII_IEEE = b"\x10\x00\x00\x00"
_FRAGMENT = 4280  # the fragment size Windows clients offer
_PIPE_READ = 65536  # one credit's worth
_BROKEN = (ChannelClosedError, IntegrityError, MalformedReplyError, OSError)


@dataclass(frozen=True)
class SyntaxId:
    """An RPC interface or transfer syntax: its UUID and version."""

    uuid: uuid.UUID
    major: int
    minor: int = 0

    def pack(self) -> bytes:
        """The 20 bytes of a syntax identifier on the wire."""
        return self.uuid.bytes_le + struct.pack("<HH", self.major, self.minor)


NDR = SyntaxId(uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860"), 2)


class RpcFaultError(PeerError):
    """The server answered a call with a FAULT; ``status`` is its fault code."""

    def __init__(self, message: str, *, status: int) -> None:
        """Keep the fault code beside the message."""
        super().__init__(message)
        self.status = status


def fault_words(status: int) -> str:
    """A fault code in words, with its code."""
    words = _FAULT_WORDS.get(status, "the call failed on the server")
    return f"{words} (RPC fault 0x{status:08X})"


class RpcPipe:
    """One bound DCE/RPC interface on a named pipe of a peer; calls one at a time."""

    def __init__(self, config: PeerConfig, host: str, *, timeout: float) -> None:
        """Prepare; :meth:`connect` makes one."""
        self.name = config.name
        self.host = host
        self._config = config
        self._timeout = timeout
        self._connector: Connector | None = None
        self._channel: Channel | None = None
        self._file_id = b""
        self._call_id = 0
        self._max_send = _FRAGMENT
        self._inbox = bytearray()
        self._broken: PeerError | None = None

    @classmethod
    def connect(
        cls,
        config: PeerConfig,
        *,
        pipe: str,
        syntax: SyntaxId,
        timeout: float,
        pending_limit: float,
    ) -> RpcPipe:
        r"""Log on to ``\\host\IPC$``, open ``pipe`` and bind ``syntax``; raises a PeerError.

        ``timeout`` bounds silence; ``pending_limit`` a call the server says it works on.
        """
        if not isinstance(config.target, UncPath):
            raise PeerPathError(
                f"peer {config.name}: its path is a local folder, not \\\\host\\share: "
                "jobsync cannot tell which computer's services to control"
            )
        rpc = cls(config, config.target.host, timeout=timeout)
        unc = UncPath(host=rpc.host, share="IPC$", folder="")
        rpc._connector = Connector(
            config, unc, timeout=timeout, pending_limit=pending_limit, credits_wanted=16
        )
        try:
            rpc._channel = rpc._connector.connect()
            rpc._open(pipe)
            rpc._bind(syntax)
        except BaseException:
            rpc.close()
            raise
        return rpc

    def _open(self, pipe: str) -> None:
        reply = self._send(wire.open_pipe(pipe))
        if not reply.ok:
            raise PeerIOError(
                f"peer {self.name}: cannot open the {pipe} pipe on {self.host}: "
                f"{statuses.describe(reply.status)}"
            )
        with self._guard("opening the pipe"):
            self._file_id = wire.created_file_id(reply.body)

    @property
    def protection(self) -> str:
        """The dialect and how messages are protected."""
        return self._channel.protection if self._channel is not None else "not connected"

    def call(self, opnum: int, stub: bytes) -> bytes:
        """Call operation ``opnum`` with ``stub``; its answer's stub, reassembled from fragments.

        A FAULT raises :class:`RpcFaultError`; the pipe stays usable after it.
        """
        body = _REQUEST.pack(len(stub), 0, opnum) + stub
        if _HEADER.size + len(body) > self._max_send:
            raise ValueError("an RPC request larger than one fragment is not supported")
        answer = bytearray()
        with self._guard("waiting for an RPC answer"):
            ptype, flags, data = self._exchange(_REQUEST_PDU, body)
            while True:
                if ptype == _FAULT_PDU:
                    status = _U32.unpack_from(data, 8)[0] if len(data) >= 12 else 0  # noqa: PLR2004
                    raise RpcFaultError(
                        f"peer {self.name}: {self.host}: {fault_words(status)}", status=status
                    )
                if ptype != _RESPONSE_PDU or len(data) < 8:  # noqa: PLR2004
                    raise MalformedReplyError(f"an RPC answer of type {ptype} to a request")
                answer += data[8:]
                if flags & _LAST:
                    return bytes(answer)
                ptype, flags, data = self._fragment()

    def _bind(self, syntax: SyntaxId) -> None:
        body = _BIND.pack(_FRAGMENT, _FRAGMENT, 0, 1, 0, 1) + syntax.pack() + NDR.pack()
        with self._guard("binding the RPC interface"):
            ptype, _flags, data = self._exchange(_BIND_PDU, body)
        refused = f"peer {self.name}: the server on {self.host} refused interface {syntax.uuid}"
        if ptype != _BIND_ACK_PDU or len(data) < 10:  # noqa: PLR2004
            raise PeerIOError(f"{refused} (answer type {ptype})")
        (_, self._max_send) = _ACK_SIZES.unpack_from(data)
        address = struct.unpack_from("<H", data, 8)[0]
        results = 10 + address + (-(_HEADER.size + 10 + address) % 4)
        if len(data) < results + 8:
            raise PeerIOError(f"{refused} (a short answer)")
        result, reason = struct.unpack_from("<HH", data, results + 4)
        if result != 0:
            raise PeerIOError(f"{refused} (result {result}, reason {reason})")

    def _exchange(self, ptype: int, body: bytes) -> tuple[int, int, bytes]:
        """Send a PDU of one fragment, read the first fragment of the answer."""
        if self._broken is not None:
            raise self._broken
        self._call_id += 1
        pdu = _HEADER.pack(
            5, 0, ptype, _FIRST | _LAST, _LITTLE_ENDIAN_ASCII_IEEE, _HEADER.size + len(body), 0,
            self._call_id,
        ) + body  # fmt: skip
        reply = self._send(wire.pipe_transceive(pdu, out_length=_PIPE_READ, file_id=self._file_id))
        self._take(reply, "an RPC call")
        self._inbox += wire.ioctl_output(reply.body)
        return self._fragment()

    def _fragment(self) -> tuple[int, int, bytes]:
        """The next PDU fragment of the answer: its type, flags and what follows its header."""
        while True:
            if len(self._inbox) >= _HEADER.size:
                _v, _m, ptype, flags, _rep, length, auth, call_id = _HEADER.unpack_from(self._inbox)
                if length < _HEADER.size or auth:
                    raise MalformedReplyError("an RPC fragment with a bad length")
                if len(self._inbox) >= length:
                    data = bytes(self._inbox[_HEADER.size : length])
                    del self._inbox[:length]
                    if call_id != self._call_id:
                        raise MalformedReplyError(f"an RPC answer to call {call_id}")
                    return ptype, flags, data
            reply = self._send(wire.read(_PIPE_READ, file_id=self._file_id))
            self._take(reply, "reading an RPC answer")
            self._inbox += wire.read_data(reply.body)

    def _take(self, reply: Reply, doing: str) -> None:
        """Refuse an SMB failure of the pipe (more data waiting is no failure)."""
        if not reply.ok and reply.status != statuses.STATUS_BUFFER_OVERFLOW:
            raise PeerUnreachableError(
                f"peer {self.name}: the pipe failed on {self.host} while {doing}: "
                f"{statuses.describe(reply.status)}"
            )

    def _send(self, request: wire.Request) -> Reply:
        channel = self._channel
        if self._broken is not None:
            raise self._broken
        if channel is None:
            raise PeerUnreachableError(f"peer {self.name}: not connected")
        with self._guard("waiting for an answer"):
            cost = channel.cost([request])
            if channel.credits < cost:
                channel.top_up(cost)
            (message_id,) = channel.send([request], related=False)
            return channel.receive(message_id)

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Translate a failure of the connection once, and keep the pipe from further use."""
        try:
            yield
        except RpcFaultError:
            raise
        except PeerError as exc:
            self._broken = self._broken or exc
            raise
        except (*_BROKEN, TimeoutError) as exc:
            raise self._lost(exc, doing) from exc

    def _lost(self, exc: BaseException, doing: str) -> PeerError:
        connector = self._connector
        if isinstance(exc, IntegrityError):
            error: PeerError = PeerSecurityError(f"peer {self.name}: {exc}; connection dropped")
        elif isinstance(exc, MalformedReplyError):
            error = PeerUnreachableError(
                f"peer {self.name}: the server sent a malformed reply ({exc}); connection dropped"
            )
        elif connector is not None:
            error = connector.translate(exc, doing=doing)
        else:
            error = PeerUnreachableError(f"peer {self.name}: {exc}")
        self._broken = error
        if connector is not None:
            connector.shutdown()
        return error

    def close(self) -> None:
        """Close the pipe, log off and disconnect, within the timeout; safe to call twice."""
        channel, self._channel = self._channel, None
        connector, self._connector = self._connector, None
        if channel is not None and self._broken is None:
            # A courtesy: the socket is closed below whatever happens.
            with contextlib.suppress(Exception):
                requests = [wire.tree_disconnect(), wire.logoff()]
                if self._file_id:
                    requests.insert(0, wire.close(file_id=self._file_id))
                for message_id in channel.send(requests, related=False):
                    channel.receive(message_id)
        self._broken = self._broken or PeerUnreachableError(f"peer {self.name}: closed")
        if connector is not None:
            connector.discard()
