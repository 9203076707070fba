"""The SMB channel's framing and integrity checks, against a scripted server on a socket pair.

Real servers never send forged, unsigned or interim replies on demand; these tests play the
server's side of the socket to prove the channel refuses or handles each. Every file transfer
over the channel is tested against real smbd in test_channel_smb.py.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from jobsync.transport.smb import statuses, wire
from jobsync.transport.smb.channel import Channel, SessionLostError
from jobsync.transport.smb.framing import (
    AES_128_GCM,
    AES_CMAC,
    ChannelClosedError,
    IntegrityError,
    Sealer,
    Session,
    Signer,
)
from jobsync.transport.smb.wire import MalformedReplyError

_HEADER = struct.Struct("<4sHHIHHIIQIIQ16s")
_RESPONSE_FLAG, _ASYNC_FLAG = 0x1, 0x2
KEY_IN, KEY_OUT = os.urandom(16), os.urandom(16)


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected client socket and the scripted server's end."""
    client, server = socket.socketpair()
    yield client, server
    client.close()
    server.close()


def _channel(
    sock: socket.socket,
    *,
    sealed: bool = True,
    signed: bool = False,
    timeout: float = 2.0,
    pending_limit: float = 60.0,
) -> Channel:
    session = Session(
        session_id=7,
        tree_id=1,
        dialect=0x0311,
        sealer=Sealer(AES_128_GCM, session_id=7, encrypt_key=KEY_IN, decrypt_key=KEY_OUT)
        if sealed
        else None,
        signer=Signer(AES_CMAC, KEY_IN) if signed else None,
        dfs=False,
        multi_credit=True,
    )
    return Channel(
        sock,
        session,
        next_id=5,
        granted=20,
        credits_wanted=16,
        timeout=timeout,
        pending_limit=pending_limit,
    )


def _server_sealer() -> Sealer:
    return Sealer(AES_128_GCM, session_id=7, encrypt_key=KEY_OUT, decrypt_key=KEY_IN)


def _reply(message_id: int, *, status: int = 0, flags: int = 0, granted: int = 1) -> bytes:
    header = _HEADER.pack(
        b"\xfeSMB", 64, 0, status, wire.ECHO, granted, _RESPONSE_FLAG | flags, 0, message_id,
        0, 1, 7, b"",
    )  # fmt: skip
    return header + struct.pack("<HH", 4, 0)


def _frame(message: bytes) -> bytes:
    return len(message).to_bytes(4, "big") + message


def _request(server: socket.socket) -> bytes:
    """The next request the channel sent, opened with the server's keys."""
    size = int.from_bytes(server.recv(4), "big")
    data = b""
    while len(data) < size:
        data += server.recv(size - len(data))
    return _server_sealer().open(data)


def test_requests_are_sealed_and_carry_ids_and_credits(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """Ids advance by each request's credit charge; compounds are aligned, related, sealed."""
    client, server = pair
    channel = _channel(client)
    ids = channel.send([wire.echo(), wire.read(200_000)], related=True)
    assert ids == [5, 6]  # a 200 KB read costs 4 credits, so the next id would be 10
    message = _request(server)
    first_next = struct.unpack_from("<I", message, 20)[0]
    assert first_next % 8 == 0
    second = message[first_next:]
    assert struct.unpack_from("<H", second, 6) == (4,)  # credit charge
    assert struct.unpack_from("<H", second, 12) == (wire.READ,)
    assert struct.unpack_from("<I", second, 16)[0] & 0x4  # related
    assert channel.credits == 20 - 10


def test_an_interim_reply_is_skipped_and_its_credits_kept(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """STATUS_PENDING is not the answer: the channel waits for the final reply."""
    client, server = pair
    channel = _channel(client)
    (message_id,) = channel.send([wire.echo()], related=False)
    _request(server)
    sealer = _server_sealer()
    interim = _reply(message_id, status=statuses.STATUS_PENDING, flags=_ASYNC_FLAG, granted=3)
    server.sendall(_frame(sealer.seal(interim)) + _frame(sealer.seal(_reply(message_id))))
    assert channel.receive(message_id).ok
    assert channel.credits == 20 - 6 + 3 + 1


def test_a_forged_encrypted_reply_is_refused(pair: tuple[socket.socket, socket.socket]) -> None:
    """One flipped bit of ciphertext fails the AEAD check: the reply is never used."""
    client, server = pair
    channel = _channel(client)
    (message_id,) = channel.send([wire.echo()], related=False)
    sealed = bytearray(_server_sealer().seal(_reply(message_id)))
    sealed[-1] ^= 1
    server.sendall(_frame(bytes(sealed)))
    with pytest.raises(IntegrityError, match="integrity"):
        channel.receive(message_id)


def test_a_plain_reply_on_an_encrypted_session_is_refused(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """Someone on the path cannot downgrade an encrypted session by answering in clear."""
    client, server = pair
    channel = _channel(client)
    (message_id,) = channel.send([wire.echo()], related=False)
    server.sendall(_frame(_reply(message_id)))
    with pytest.raises(IntegrityError, match="unencrypted"):
        channel.receive(message_id)


def test_signed_sessions_check_every_reply(pair: tuple[socket.socket, socket.socket]) -> None:
    """A signed reply passes; an unsigned one on a signing session is refused."""
    client, server = pair
    channel = _channel(client, sealed=False, signed=True)
    first, second = channel.send([wire.echo(), wire.echo()], related=False)
    signed = bytearray(_reply(first))
    Signer(AES_CMAC, KEY_IN).sign(signed)
    server.sendall(_frame(bytes(signed)))
    assert channel.receive(first).ok
    server.sendall(_frame(_reply(second)))
    with pytest.raises(IntegrityError, match="unsigned"):
        channel.receive(second)


def test_silence_times_out_and_a_closed_socket_is_reported(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """A silent server costs the timeout, no more; a closed one is reported as such."""
    client, server = pair
    channel = _channel(client, timeout=0.2)  # a short wait keeps the test quick
    (message_id,) = channel.send([wire.echo()], related=False)
    with pytest.raises(TimeoutError):
        channel.receive(message_id)
    server.close()
    with pytest.raises(ChannelClosedError):
        channel.receive(message_id)


def _serve(script: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=script, name="scripted-server")
    thread.start()
    return thread


def test_a_request_pending_past_the_limit_is_cancelled(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """The AsyncId of an interim answer is kept; past the limit a CANCEL names it.

    Meanwhile an ECHO proves the server alive; the request then ends with its final answer
    (STATUS_CANCELLED), and only it: the connection goes on.
    """
    client, server = pair
    channel = _channel(client, timeout=0.2, pending_limit=0.5)
    sealer = _server_sealer()
    seen: list[bytes] = []

    def script() -> None:
        request = _request(server)
        message_id = struct.unpack_from("<Q", request, 24)[0]
        interim = bytearray(_reply(message_id, status=statuses.STATUS_PENDING, flags=_ASYNC_FLAG))
        struct.pack_into("<Q", interim, 32, 0xABCDEF0123)  # the AsyncId
        server.sendall(_frame(sealer.seal(bytes(interim))))
        while True:  # silence: the channel checks with ECHOs that the server is there
            request = _request(server)
            seen.append(request)
            if struct.unpack_from("<H", request, 12)[0] != wire.ECHO:
                break
            server.sendall(_frame(sealer.seal(_reply(struct.unpack_from("<Q", request, 24)[0]))))
        final = _reply(message_id, status=statuses.STATUS_CANCELLED, flags=_ASYNC_FLAG)
        server.sendall(_frame(sealer.seal(final)))

    (message_id,) = channel.send([wire.echo()], related=False)
    thread = _serve(script)
    reply = channel.receive(message_id)
    thread.join(timeout=5)

    assert reply.status == statuses.STATUS_CANCELLED
    *probes, cancel = seen
    assert probes  # the server was asked for ECHOs while the request waited
    assert struct.unpack_from("<H", cancel, 12)[0] == wire.CANCEL
    assert struct.unpack_from("<I", cancel, 16)[0] & _ASYNC_FLAG
    assert struct.unpack_from("<Q", cancel, 24)[0] == message_id
    assert struct.unpack_from("<Q", cancel, 32)[0] == 0xABCDEF0123
    assert struct.unpack_from("<H", cancel, 6)[0] == 0  # a CANCEL spends no credit


def test_a_server_that_freezes_while_a_request_is_pending_is_found_in_two_timeouts(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """Pending requests may wait long, but an unanswered ECHO still shows a frozen server."""
    client, server = pair
    channel = _channel(client, timeout=0.2, pending_limit=60.0)
    (message_id,) = channel.send([wire.echo()], related=False)
    _request(server)
    interim = _reply(message_id, status=statuses.STATUS_PENDING, flags=_ASYNC_FLAG)
    server.sendall(_frame(_server_sealer().seal(interim)))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        channel.receive(message_id)
    assert time.monotonic() - started < 5  # two timeouts, not the 60 s pending limit


def test_a_session_the_server_ended_is_reported_even_unencrypted(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """A server that dropped the session cannot seal its answer: it is taken as "log on again"."""
    client, server = pair
    channel = _channel(client)
    (message_id,) = channel.send([wire.echo()], related=False)
    server.sendall(_frame(_reply(message_id, status=statuses.STATUS_USER_SESSION_DELETED)))
    with pytest.raises(SessionLostError) as lost:
        channel.receive(message_id)
    assert lost.value.status == statuses.STATUS_USER_SESSION_DELETED


@pytest.mark.parametrize(
    "body",
    [
        b"",
        struct.pack("<HBBI", 17, 0x50, 0, 100),  # READ: data past the end
        struct.pack("<HHI", 9, 8, 40),  # QUERY_DIRECTORY: offset inside the header
        struct.pack("<HHI", 9, 72, 400),  # QUERY_INFO: a descriptor longer than the reply
    ],
)
def test_malformed_bodies_are_refused_not_misread(body: bytes) -> None:
    """Parsers check every length against the bytes that came: a short reply is an error."""
    with pytest.raises(MalformedReplyError):
        wire.read_data(body)
    with pytest.raises(MalformedReplyError):
        wire.directory_entries(body)
    with pytest.raises(MalformedReplyError):
        wire.created_file_id(body)
    with pytest.raises(MalformedReplyError):
        wire.query_info_data(body)


def test_a_security_descriptor_is_read_from_where_the_reply_says() -> None:
    """QUERY_INFO's buffer starts at its offset, counted from the 64-byte header."""
    descriptor = b"\x01\x00\x04\x80" + bytes(16)
    body = struct.pack("<HHI", 9, 72, len(descriptor)) + descriptor
    assert wire.query_info_data(body) == descriptor
