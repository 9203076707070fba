"""SMB2 over TCP: length-prefixed frames on a non-blocking socket (MS-SMB2 2.1)."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator

_READ_SIZE = 1 << 18
_PREFIX = 4  # a zero byte and a 24-bit length before each message


class ChannelClosedError(ConnectionError):
    """The server closed the connection, or it was cut."""


class FrameSocket:
    """Sends whole frames and collects the frames that arrive; waits are bounded by select."""

    def __init__(self, sock: socket.socket, *, timeout: float) -> None:
        """Use ``sock``, switched to non-blocking; a send blocked ``timeout`` s is a timeout."""
        sock.setblocking(False)  # noqa: FBT003 - the stdlib's own signature
        self._sock = sock
        self._timeout = timeout
        self._inbox = bytearray()

    def send(self, data: bytes) -> None:
        """Send one frame; while the server is not reading, take in what it sends meanwhile.

        (So neither side waits for the other with full buffers.)
        """
        frame = memoryview(len(data).to_bytes(_PREFIX, "big") + data)
        while frame:
            try:
                sent = self._sock.send(frame)
            except BlockingIOError:
                sent = 0
            except OSError as exc:
                raise ChannelClosedError(f"connection lost: {exc}") from None
            frame = frame[sent:]
            if frame:
                readable, writable, _ = select.select([self._sock], [self._sock], [], self._timeout)
                if not readable and not writable:
                    raise TimeoutError("no answer from the server")
                if readable:
                    self.fill()

    def fill(self) -> bool:
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

    def readable(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for something to read; whether it came."""
        readable, _, _ = select.select([self._sock], [], [], timeout)
        return bool(readable)

    def frames(self) -> Iterator[bytes]:
        """Every whole frame received so far, oldest first, removed from the inbox."""
        inbox = self._inbox
        while len(inbox) >= _PREFIX:
            size = int.from_bytes(inbox[1:_PREFIX], "big")
            if len(inbox) < _PREFIX + size:
                return
            frame = bytes(inbox[_PREFIX : _PREFIX + size])
            del inbox[: _PREFIX + size]
            yield frame
