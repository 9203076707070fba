"""NDR, the encoding of DCE/RPC stub data (C706 chapter 14, little-endian).

Only the few shapes the Windows service calls use: DWORDs, context handles and UTF-16 strings,
by reference or by unique pointer. Everything is aligned from the stub's start, as NDR requires.
"""

from __future__ import annotations

import struct

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
