"""NDR stubs, DCE/RPC answers and Windows errors as the service calls see them; no server.

The PDU tests hand :class:`RpcPipe` canned SMB replies in place of a channel, to pin what a
real server seldom sends: answers split into fragments, and fragments split across reads.
"""

from __future__ import annotations

import struct
import uuid

import pytest

from jobsync.config.model import PeerConfig, UncPath
from jobsync.errors import PeerIOError, PeerUnreachableError
from jobsync.transport.smb import statuses, wire
from jobsync.transport.smb.framing import Reply
from jobsync.transport.smb.rpc import (
    NCA_S_OP_RNG_ERROR,
    NDR,
    NdrReader,
    NdrWriter,
    RpcFaultError,
    RpcPipe,
    SyntaxId,
)
from jobsync.transport.smb.svcctl import (
    SVCCTL,
    ServiceAccessDeniedError,
    ServiceControlError,
    ServiceManager,
    ServiceNotFoundError,
    _settings,
    _status,
)
from jobsync.transport.smb.wire import MalformedReplyError

HANDLE = bytes(range(20))


def test_dwords_and_handles_are_little_endian_and_aligned() -> None:
    """A DWORD after a string of odd length starts on the next multiple of four."""
    stub = NdrWriter().handle(HANDLE).string("ab").u32(0x11223344).bytes()
    assert stub[:20] == HANDLE
    assert stub[20:32] == struct.pack("<III", 3, 0, 3)  # max count, offset, actual count
    assert stub[32:38] == "ab\0".encode("utf-16-le")
    assert stub[38:40] == b"\0\0"  # padding
    assert stub[40:] == b"\x44\x33\x22\x11"


def test_unique_strings_are_null_or_a_referent_and_the_string() -> None:
    """A null unique pointer is four zero bytes; a present one a non-zero referent id first."""
    assert NdrWriter().unique_string(None).bytes() == bytes(4)
    stub = NdrWriter().unique_string("Spooler").bytes()
    referent, maximum, offset, count = struct.unpack_from("<IIII", stub)
    assert referent != 0
    assert (maximum, offset, count) == (8, 0, 8)
    assert stub[16:] == "Spooler\0".encode("utf-16-le")


def test_a_handle_must_be_twenty_bytes() -> None:
    """Anything else is a caller's bug, refused before it reaches the wire."""
    with pytest.raises(ValueError, match="20 bytes"):
        NdrWriter().handle(b"short")


def test_reader_reads_what_the_writer_wrote() -> None:
    """Round trip: DWORD, handle, string (NUL dropped), then an aligned DWORD."""
    stub = NdrWriter().u32(7).handle(HANDLE).string("Print Spooler").u32(9).bytes()
    reader = NdrReader(stub)
    assert reader.u32() == 7
    assert reader.handle() == HANDLE
    assert reader.string() == "Print Spooler"
    assert reader.u32() == 9


@pytest.mark.parametrize(
    "stub",
    [
        b"\x01\x00",  # shorter than its first count
        struct.pack("<III", 2, 0, 3) + bytes(6),  # more characters than the maximum
        struct.pack("<III", 4, 0, 4) + bytes(2),  # fewer bytes than the count says
    ],
    ids=["short", "count-over-maximum", "truncated"],
)
def test_malformed_answers_are_refused(stub: bytes) -> None:
    """An answer shorter than, or inconsistent with, its own counts is malformed."""
    reader = NdrReader(stub)
    with pytest.raises(MalformedReplyError):
        reader.string()


def test_syntax_identifiers_pack_as_on_the_wire() -> None:
    """The NDR transfer syntax: its UUID in little-endian fields, then version 2.0."""
    assert NDR.pack().hex() == "045d888aeb1cc9119fe808002b10486002000000"
    assert SyntaxId(uuid.UUID(int=0), 1, 2).pack() == bytes(16) + b"\x01\x00\x02\x00"


def test_service_config_answer_is_read_in_order() -> None:
    """Fixed fields and pointers first, then the strings they point to, absent ones skipped."""
    answer = (
        NdrWriter()
        .u32(0x10)  # own process
        .u32(2)  # auto
        .u32(1)
        .u32(0x200FC)  # the program's path, further on
        .u32(0)  # no load order group
        .u32(0)  # tag
        .u32(0)  # no dependencies
        .u32(0x20100)
        .u32(0x20104)
        .string("C:\\Integrify\\service.exe")
        .string("CORP\\svc-integrify$")
        .string("Integrify Service")
        .u32(321)  # bytes needed
        .u32(0)  # success
    )
    reader = NdrReader(answer.bytes())
    settings = _settings("Integrify", reader)
    assert settings.start_type == "auto"
    assert settings.binary_path == "C:\\Integrify\\service.exe"
    assert settings.account == "CORP\\svc-integrify$"
    assert settings.display_name == "Integrify Service"
    assert (reader.u32(), reader.u32()) == (321, 0)


def test_service_status_in_words() -> None:
    """States 1 to 7 are words; any other number is a malformed answer."""
    status = _status("Spooler", NdrReader(struct.pack("<7I", 0x10, 2, 0, 0, 0, 3, 2000)))
    assert (status.state, status.checkpoint, status.wait_hint_ms) == ("start pending", 3, 2000)
    with pytest.raises(MalformedReplyError):
        _status("Spooler", NdrReader(struct.pack("<7I", 0x10, 8, 0, 0, 0, 0, 0)))


# -- PDUs on a pipe, with canned SMB replies ---------------------------------------------------


def _pdu(ptype: int, flags: int, body: bytes, *, call_id: int = 1) -> bytes:
    return (
        struct.pack("<BBBB4sHHI", 5, 0, ptype, flags, b"\x10\0\0\0", 16 + len(body), 0, call_id)
        + body
    )


def _response(stub: bytes, flags: int, *, call_id: int = 1) -> bytes:
    return _pdu(2, flags, struct.pack("<IHBx", len(stub), 0, 0) + stub, call_id=call_id)


def _ioctl_reply(output: bytes, status: int = statuses.STATUS_SUCCESS) -> Reply:
    fixed = struct.pack(
        "<HHI16sIIIIII", 49, 0, 0x0011C017, bytes(16), 112, 0, 112, len(output), 0, 0
    )
    return Reply(status, fixed + output)


def _read_reply(data: bytes, status: int = statuses.STATUS_SUCCESS) -> Reply:
    return Reply(status, struct.pack("<HBxIII", 17, 0x50, len(data), 0, 0) + data)


def _pipe(replies: list[Reply]) -> tuple[RpcPipe, list[int]]:
    """A pipe whose SMB requests are answered from ``replies``; also the commands it sent."""
    config = PeerConfig(name="node2", path="", target=UncPath("h", "IPC$", ""))
    pipe = RpcPipe(config, "h", timeout=1.0)
    sent: list[int] = []

    def send(request: wire.Request) -> Reply:
        sent.append(request.command)
        return replies.pop(0)

    pipe._send = send
    return pipe, sent


def test_an_answer_in_fragments_is_reassembled() -> None:
    """Two fragments, the second split between the transceive and a READ, make one stub."""
    first, second = _response(b"abcd", 0x1), _response(b"efgh", 0x2)
    replies = [
        _ioctl_reply(first + second[:10], statuses.STATUS_BUFFER_OVERFLOW),
        _read_reply(second[10:]),
    ]
    pipe, sent = _pipe(replies)
    assert pipe.call(6, NdrWriter().handle(HANDLE).bytes()) == b"abcdefgh"
    assert sent == [wire.IOCTL, wire.READ]


def test_a_fault_names_its_status_and_leaves_the_pipe_usable() -> None:
    """nca_s_op_rng_error in words; the next call goes out on the same pipe."""
    fault = _pdu(3, 0x3, struct.pack("<IHBxII", 0, 0, 0, NCA_S_OP_RNG_ERROR, 0))
    pipe, _ = _pipe([_ioctl_reply(fault), _ioctl_reply(_response(b"ok!!", 0x3, call_id=2))])
    with pytest.raises(RpcFaultError) as caught:
        pipe.call(11, b"")
    assert caught.value.status == NCA_S_OP_RNG_ERROR
    assert "the server does not implement this call (RPC fault 0x1C010002)" in str(caught.value)
    assert pipe.call(6, b"") == b"ok!!"


def test_an_answer_to_another_call_drops_the_connection() -> None:
    """A call id that is not the one asked: malformed, and the pipe is not used again."""
    pipe, _ = _pipe([_ioctl_reply(_response(b"x", 0x3, call_id=9))])
    with pytest.raises(PeerUnreachableError, match="malformed"):
        pipe.call(6, b"")
    with pytest.raises(PeerUnreachableError):
        pipe.call(6, b"")


def test_the_bind_answer_is_checked() -> None:
    """A BIND_ACK whose result refuses the interface is an error naming the interface."""
    address = b"\\PIPE\\svcctl\0"
    ack = struct.pack("<HHIH", 4280, 4280, 1, len(address)) + address
    ack += bytes(-(16 + len(ack)) % 4)
    ack += struct.pack("<BxxxHH", 1, 2, 1) + NDR.pack()  # provider rejection
    pipe, _ = _pipe([_ioctl_reply(_pdu(12, 0x3, ack))])
    with pytest.raises(PeerIOError, match=str(SVCCTL.uuid)):
        pipe._bind(SVCCTL)


# -- Windows errors in words -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error", "words"),
    [
        (1058, ServiceControlError, "starting Integrify on node3.corp: it is disabled and cannot"),
        (1069, ServiceControlError, "starting Integrify on node3.corp: its account could not log"),
        (1053, ServiceControlError, "it did not answer its service manager in time"),
        (1060, ServiceNotFoundError, "node3.corp has no service named 'Integrify'"),
        (5, ServiceAccessDeniedError, "(svc-jobsync) is not a local administrator of node3.corp"),
        (4242, ServiceControlError, "starting Integrify on node3.corp: the call failed"),
    ],
)
def test_windows_errors_name_the_node_the_service_and_the_code(
    code: int, error: type[ServiceControlError], words: str
) -> None:
    """Each error says where, what, and its number; the class and ``code`` say it to callers."""
    config = PeerConfig(
        name="node3", path="", target=UncPath("node3.corp", "IPC$", ""), username="svc-jobsync"
    )
    manager = ServiceManager(RpcPipe(config, "node3.corp", timeout=1.0), config)
    with pytest.raises(error) as caught:
        manager._check(code, "Integrify", "starting")
    assert type(caught.value) is error
    assert caught.value.code == code
    assert str(caught.value).startswith("peer node3: ")
    assert words in str(caught.value)
    assert f"(Windows error {code})" in str(caught.value)
