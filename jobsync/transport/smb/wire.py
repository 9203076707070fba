"""The SMB2 requests jobsync sends and the response fields it reads, as plain bytes.

Each request body is packed with one ``struct`` call and each response field is read straight
from the bytes (MS-SMB2 2.2, MS-FSCC 2.4), which keeps write times at full 100 ns precision and
costs a small fraction of building and parsing whole message objects for every file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, NamedTuple

# Commands (MS-SMB2 2.2.1)
LOGOFF: Final = 0x02
TREE_DISCONNECT: Final = 0x04
CREATE: Final = 0x05
CLOSE: Final = 0x06
READ: Final = 0x08
WRITE: Final = 0x09
IOCTL: Final = 0x0B
CANCEL: Final = 0x0C
ECHO: Final = 0x0D
QUERY_DIRECTORY: Final = 0x0E
QUERY_INFO: Final = 0x10
SET_INFO: Final = 0x11

# MS-SMB2 3.2.4.1.4: this FileId means "the file opened by the CREATE earlier in this compound".
RELATED_FILE_ID: Final = b"\xff" * 16
HEADER_SIZE: Final = 64
CREDIT_UNIT: Final = 65536
_FILETIME_EPOCH = 116_444_736_000_000_000  # 1601-01-01 to 1970-01-01 in 100 ns ticks

# Access masks, sharing, dispositions and options (MS-SMB2 2.2.13)
_FILE_READ_DATA = 0x1
_FILE_WRITE_DATA = 0x2
_FILE_READ_ATTRIBUTES = 0x80
_FILE_WRITE_ATTRIBUTES = 0x100
_DELETE = 0x10000
_READ_CONTROL = 0x20000
_FILE_SHARE_READ, _FILE_SHARE_WRITE, _FILE_SHARE_DELETE = 0x1, 0x2, 0x4
ALL_SHARING: Final = _FILE_SHARE_READ | _FILE_SHARE_WRITE | _FILE_SHARE_DELETE
READ_ACCESS: Final = _FILE_READ_DATA | _FILE_READ_ATTRIBUTES
WRITE_ACCESS: Final = (
    _FILE_READ_DATA | _FILE_WRITE_DATA | _FILE_READ_ATTRIBUTES | _FILE_WRITE_ATTRIBUTES | _DELETE
)
DELETE_ACCESS: Final = _DELETE | _FILE_READ_ATTRIBUTES
LIST_ACCESS: Final = _FILE_READ_DATA | _FILE_READ_ATTRIBUTES  # FILE_LIST_DIRECTORY is bit 0
_FILE_OPEN, _FILE_CREATE, _FILE_OPEN_IF = 1, 2, 3
_FILE_DIRECTORY_FILE, _FILE_NON_DIRECTORY_FILE, _FILE_DELETE_ON_CLOSE = 0x1, 0x40, 0x1000
_IMPERSONATION = 2
_PIPE_ACCESS: Final = _FILE_READ_DATA | _FILE_WRITE_DATA | _FILE_READ_ATTRIBUTES
_FSCTL_PIPE_TRANSCEIVE = 0x0011C017  # MS-FSCC 2.3.49: write a message, read the answer
_IOCTL_IS_FSCTL = 0x1

# Information classes (MS-FSCC 2.4)
_INFO_FILE = 1
_INFO_FILESYSTEM = 2
_INFO_SECURITY = 3
_FILE_FS_FULL_SIZE_INFORMATION = 7  # MS-FSCC 2.5.4: 32 bytes
# OWNER_, GROUP_ and DACL_SECURITY_INFORMATION (MS-DTYP 2.4.7): not the SACL, which needs a
# privilege the service account does not have.
_OWNER_GROUP_DACL = 0x1 | 0x2 | 0x4
_FILE_DIRECTORY_INFORMATION = 1
_FILE_BASIC_INFORMATION = 4
_FILE_RENAME_INFORMATION = 10
_FILE_DISPOSITION_INFORMATION = 13
_RESTART_SCANS = 0x1
_CLOSE_POSTQUERY_ATTRIB = 0x1
_ATTRIBUTE_DIRECTORY = 0x10

_CREATE = struct.Struct("<HBBIQQIIIIIHHII")
_WRITE = struct.Struct("<HHIQ16sIIHHI")
_READ = struct.Struct("<HBBIQ16sIIIHHx")
_SET_INFO = struct.Struct("<HBBIHHI16s")
_CLOSE = struct.Struct("<HHI16s")
_QUERY_DIRECTORY = struct.Struct("<HBBI16sHHI")
_QUERY_INFO = struct.Struct("<HBBIHHIII16s")
_IOCTL = struct.Struct("<HHI16sIIIIIIII")
_BASIC_INFO = struct.Struct("<qqqqII")
_RENAME_INFO = struct.Struct("<B7xQI")
_SMALL_REQUEST = struct.Struct("<HH")  # StructureSize and Reserved: ECHO, LOGOFF, TREE_DISCONNECT
_DIR_ENTRY = struct.Struct("<IIqqqqqqII")  # FileDirectoryInformation up to FileNameLength


class MalformedReplyError(ValueError):
    """A reply is shorter, or points further, than its own fields say: it cannot be trusted."""


@dataclass(frozen=True, slots=True)
class Request:
    """One request of a compound: its command, its body, the credits it costs, extra to ask for."""

    command: int
    body: bytes
    charge: int = 1
    ask: int = 0


def _charge(payload: int) -> int:
    """Credits a request costs: one per started 64 KiB of payload (MS-SMB2 3.1.5.2)."""
    return max(0, payload - 1) // CREDIT_UNIT + 1


def ns_to_filetime(ns: int) -> int:
    """Unix nanoseconds to a Windows FILETIME."""
    return ns // 100 + _FILETIME_EPOCH


def filetime_to_ns(filetime: int) -> int:
    """A Windows FILETIME to Unix nanoseconds."""
    return (filetime - _FILETIME_EPOCH) * 100


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le", "surrogatepass")


def create(
    path: str, *, access: int, disposition: int, options: int, share: int = ALL_SHARING
) -> Request:
    """Open or create ``path`` (share-relative, backslashes)."""
    name = _utf16(path)
    fixed = _CREATE.pack(
        57, 0, 0, _IMPERSONATION, 0, 0, access, 0, share, disposition, options,
        HEADER_SIZE + _CREATE.size, len(name), 0, 0,
    )  # fmt: skip
    return Request(CREATE, fixed + (name or b"\x00"))


def create_temp(path: str) -> Request:
    """Create a new file that must not exist yet, open for write, read-back and rename."""
    return create(
        path,
        access=WRITE_ACCESS,
        disposition=_FILE_CREATE,
        options=_FILE_NON_DIRECTORY_FILE,
        share=_FILE_SHARE_READ,
    )


def create_probe(path: str) -> Request:
    """Create a new file that is gone when closed, open to read its security descriptor."""
    return create(
        path,
        access=_READ_CONTROL | _DELETE | _FILE_READ_ATTRIBUTES,
        disposition=_FILE_CREATE,
        options=_FILE_NON_DIRECTORY_FILE | _FILE_DELETE_ON_CLOSE,
        share=0,
    )


def open_file(path: str, *, access: int) -> Request:
    """Open an existing regular file."""
    return create(path, access=access, disposition=_FILE_OPEN, options=_FILE_NON_DIRECTORY_FILE)


def open_dir(path: str, *, make: bool = False) -> Request:
    """Open a directory, creating it when ``make``."""
    return create(
        path,
        access=LIST_ACCESS,
        disposition=_FILE_OPEN_IF if make else _FILE_OPEN,
        options=_FILE_DIRECTORY_FILE,
    )


def open_pipe(name: str) -> Request:
    """Open a named pipe on the ``IPC$`` share (``svcctl``) to read and write messages."""
    return create(
        name,
        access=_PIPE_ACCESS,
        disposition=_FILE_OPEN,
        options=0,
        share=_FILE_SHARE_READ | _FILE_SHARE_WRITE,
    )


def pipe_transceive(data: bytes, *, out_length: int, file_id: bytes) -> Request:
    """Write ``data`` to an open pipe and read its answer, in one round trip (MS-SMB2 2.2.31)."""
    fixed = _IOCTL.pack(
        57, 0, _FSCTL_PIPE_TRANSCEIVE, file_id, HEADER_SIZE + _IOCTL.size, len(data), 0, 0, 0,
        out_length, _IOCTL_IS_FSCTL, 0,
    )  # fmt: skip
    return Request(IOCTL, fixed + data, _charge(max(len(data), out_length)))


def write(data: bytes, *, offset: int = 0, file_id: bytes = RELATED_FILE_ID) -> Request:
    """Write ``data`` at ``offset``."""
    fixed = _WRITE.pack(49, HEADER_SIZE + _WRITE.size, len(data), offset, file_id, 0, 0, 0, 0, 0)
    return Request(WRITE, fixed + data, _charge(len(data)))


def read(length: int, *, offset: int = 0, file_id: bytes = RELATED_FILE_ID) -> Request:
    """Read up to ``length`` bytes at ``offset``."""
    body = _READ.pack(49, 0x50, 0, length, offset, file_id, 0, 0, 0, 0, 0)
    return Request(READ, body, _charge(length))


def _set_info(info_class: int, info: bytes, file_id: bytes) -> Request:
    fixed = _SET_INFO.pack(
        33, _INFO_FILE, info_class, len(info), HEADER_SIZE + _SET_INFO.size, 0, 0, file_id
    )
    return Request(SET_INFO, fixed + info)


def set_write_time(mtime_ns: int, *, file_id: bytes = RELATED_FILE_ID) -> Request:
    """Set the last-write time; zero in the other fields means "leave unchanged"."""
    info = _BASIC_INFO.pack(0, 0, ns_to_filetime(mtime_ns), 0, 0, 0)
    return _set_info(_FILE_BASIC_INFORMATION, info, file_id)


def rename(target: str, *, replace: bool, file_id: bytes = RELATED_FILE_ID) -> Request:
    """Rename the open file to ``target`` (share-relative)."""
    name = _utf16(target)
    info = _RENAME_INFO.pack(int(replace), 0, len(name)) + name
    return _set_info(_FILE_RENAME_INFORMATION, info, file_id)


def delete_on_close(*, file_id: bytes = RELATED_FILE_ID) -> Request:
    """Mark the open file for deletion when its last handle closes."""
    return _set_info(_FILE_DISPOSITION_INFORMATION, b"\x01", file_id)


def close(*, file_id: bytes = RELATED_FILE_ID, attributes: bool = False) -> Request:
    """Close the file, optionally asking for its final size and write time."""
    flags = _CLOSE_POSTQUERY_ATTRIB if attributes else 0
    return Request(CLOSE, _CLOSE.pack(24, flags, 0, file_id))


def query_directory(*, restart: bool, out_length: int, file_id: bytes = RELATED_FILE_ID) -> Request:
    """List the open directory, continuing where the last query stopped unless ``restart``."""
    pattern = _utf16("*")
    fixed = _QUERY_DIRECTORY.pack(
        33, _FILE_DIRECTORY_INFORMATION, _RESTART_SCANS if restart else 0, 0, file_id,
        HEADER_SIZE + _QUERY_DIRECTORY.size, len(pattern), out_length,
    )  # fmt: skip
    return Request(QUERY_DIRECTORY, fixed + pattern, _charge(out_length))


def query_security(*, out_length: int, file_id: bytes = RELATED_FILE_ID) -> Request:
    """Ask for the open file's owner, group and access list (MS-SMB2 2.2.37)."""
    body = _QUERY_INFO.pack(
        41, _INFO_SECURITY, 0, out_length, 0, 0, 0, _OWNER_GROUP_DACL, 0, file_id
    )
    return Request(QUERY_INFO, body, _charge(out_length))


def query_volume_size(*, file_id: bytes = RELATED_FILE_ID) -> Request:
    """Ask for the size and free space of the open file's volume (FileFsFullSizeInformation)."""
    body = _QUERY_INFO.pack(
        41, _INFO_FILESYSTEM, _FILE_FS_FULL_SIZE_INFORMATION, 32, 0, 0, 0, 0, 0, file_id
    )
    return Request(QUERY_INFO, body, _charge(32))


def volume_free_bytes(data: bytes) -> int:
    """The bytes the caller may still use, from a FileFsFullSizeInformation buffer.

    The caller's share, not the volume's: a quota counts, as it does for Integrify's writes.
    """
    _need(data, 32, "FileFsFullSizeInformation")
    _total, caller_units, _actual, sectors, sector_bytes = struct.unpack_from("<qqqII", data)
    return int(caller_units * sectors * sector_bytes)


def echo(*, ask: int = 0) -> Request:
    """A no-op the server answers at once: proves the connection alive, or asks for credits."""
    return Request(ECHO, _SMALL_REQUEST.pack(4, 0), ask=ask)


def cancel_body() -> bytes:
    """The body of an SMB2 CANCEL (its header names the request, MS-SMB2 2.2.30)."""
    return _SMALL_REQUEST.pack(4, 0)


def tree_disconnect() -> Request:
    """Leave the share."""
    return Request(TREE_DISCONNECT, _SMALL_REQUEST.pack(4, 0))


def logoff() -> Request:
    """End the session."""
    return Request(LOGOFF, _SMALL_REQUEST.pack(4, 0))


# -- responses (``body`` is the response after its 64-byte header) ---------------------------


def _need(body: bytes, end: int, what: str) -> None:
    """Refuse a reply too short for the field being read."""
    if len(body) < end:
        raise MalformedReplyError(f"{what} reply of {len(body)} bytes is too short")


def created_file_id(body: bytes) -> bytes:
    """The FileId from a CREATE response."""
    _need(body, 80, "CREATE")
    return body[64:80]


def read_data(body: bytes) -> bytes:
    """The data of a READ response."""
    _need(body, 16, "READ")
    return _buffer(body, body[2], struct.unpack_from("<I", body, 4)[0], "READ")


def ioctl_output(body: bytes) -> bytes:
    """The output of an IOCTL response: for a pipe transceive, the first part of the answer."""
    _need(body, 40, "IOCTL")
    offset, length = struct.unpack_from("<II", body, 32)
    return _buffer(body, offset, length, "IOCTL") if length else b""


def _buffer(body: bytes, offset: int, length: int, what: str) -> bytes:
    """The ``length`` bytes a reply says start at ``offset`` (counted from the header)."""
    start = offset - HEADER_SIZE
    if start < 0:
        raise MalformedReplyError(f"{what} reply data starts inside its header")
    _need(body, start + length, what)
    return body[start : start + length]


@dataclass(frozen=True)
class Attributes:
    """Size and write time as the server reports them."""

    size: int
    mtime_ns: int


def query_info_data(body: bytes) -> bytes:
    """The buffer of a QUERY_INFO response (a security descriptor, a volume's sizes)."""
    _need(body, 8, "QUERY_INFO")
    offset, length = struct.unpack_from("<HI", body, 2)
    return _buffer(body, offset, length, "QUERY_INFO")


def close_attributes(body: bytes) -> Attributes:
    """Size and write time from a CLOSE response sent with ``attributes=True``."""
    _need(body, 60, "CLOSE")
    write_time = struct.unpack_from("<q", body, 24)[0]
    size = struct.unpack_from("<q", body, 48)[0]
    return Attributes(size=size, mtime_ns=filetime_to_ns(write_time))


class DirEntry(NamedTuple):
    """One entry of a directory listing."""

    name: str
    size: int
    mtime_ns: int
    is_dir: bool


def directory_entries(body: bytes) -> list[DirEntry]:
    """The entries of a QUERY_DIRECTORY response (FileDirectoryInformation)."""
    _need(body, 8, "QUERY_DIRECTORY")
    buf_offset, buf_length = struct.unpack_from("<HI", body, 2)
    pos = buf_offset - HEADER_SIZE
    end = pos + buf_length
    if pos < 0:
        raise MalformedReplyError("QUERY_DIRECTORY reply data starts inside its header")
    _need(body, end, "QUERY_DIRECTORY")
    unpack, fixed = _DIR_ENTRY.unpack_from, _DIR_ENTRY.size
    entries = []
    while pos < end:
        if pos + fixed > end:
            raise MalformedReplyError("a directory entry runs past the listing")
        (next_offset, _, _, _, write_time, _, size, _, attributes, name_length) = unpack(body, pos)
        start = pos + fixed
        if start + name_length > end:
            raise MalformedReplyError("a file name runs past the listing")
        try:
            name = body[start : start + name_length].decode("utf-16-le", "surrogatepass")
        except UnicodeDecodeError:
            raise MalformedReplyError("a file name is not UTF-16") from None
        if name not in (".", ".."):
            is_dir = bool(attributes & _ATTRIBUTE_DIRECTORY)
            entries.append(DirEntry(name, size, filetime_to_ns(write_time), is_dir))
        if not next_offset:
            break
        pos += next_offset
    return entries
