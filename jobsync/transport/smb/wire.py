"""SMB2 requests jobsync sends, and the few response fields it reads.

Requests are built with smbprotocol's structures; responses are read straight from their bytes
(MS-SMB2 2.2.x, MS-FSCC 2.4.10), which keeps write times at full 100 ns precision and costs far
less CPU than unpacking whole structures for every file of a large folder.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from smbprotocol.file_info import (
    FileBasicInformation,
    FileDispositionInformation,
    FileInformationClass,
    FileRenameInformation,
)
from smbprotocol.open import (
    CloseFlags,
    CreateDisposition,
    CreateOptions,
    DirectoryAccessMask,
    FilePipePrinterAccessMask,
    ImpersonationLevel,
    QueryDirectoryFlags,
    RequestedOplockLevel,
    ShareAccess,
    SMB2CloseRequest,
    SMB2CreateRequest,
    SMB2QueryDirectoryRequest,
    SMB2ReadRequest,
    SMB2SetInfoRequest,
    SMB2WriteRequest,
)

# MS-SMB2 3.2.4.1.4: this FileId means "the file opened by the CREATE earlier in this compound".
RELATED_FILE_ID = b"\xff" * 16
HEADER_SIZE = 64
CREDIT_UNIT = 65536
_FILETIME_EPOCH = 116_444_736_000_000_000  # 1601-01-01 to 1970-01-01 in 100 ns ticks
_ATTRIBUTE_DIRECTORY = 0x10
_DIR_ENTRY = struct.Struct("<IIqqqqqqII")  # FileDirectoryInformation up to FileNameLength

ALL_SHARING = (
    ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE | ShareAccess.FILE_SHARE_DELETE
)
READ_ACCESS = (
    FilePipePrinterAccessMask.FILE_READ_DATA | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES
)
WRITE_ACCESS = (
    FilePipePrinterAccessMask.FILE_READ_DATA
    | FilePipePrinterAccessMask.FILE_WRITE_DATA
    | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES
    | FilePipePrinterAccessMask.FILE_WRITE_ATTRIBUTES
    | FilePipePrinterAccessMask.DELETE
)
DELETE_ACCESS = FilePipePrinterAccessMask.DELETE | FilePipePrinterAccessMask.FILE_READ_ATTRIBUTES
LIST_ACCESS = DirectoryAccessMask.FILE_LIST_DIRECTORY | DirectoryAccessMask.FILE_READ_ATTRIBUTES


def ns_to_filetime(ns: int) -> int:
    """Unix nanoseconds to a Windows FILETIME."""
    return ns // 100 + _FILETIME_EPOCH


def filetime_to_ns(filetime: int) -> int:
    """A Windows FILETIME to Unix nanoseconds."""
    return (filetime - _FILETIME_EPOCH) * 100


def credit_charge(message: Any) -> int:  # noqa: ANN401 - smbprotocol structures are untyped
    """Credits a request costs: one per started 64 KiB of payload (MS-SMB2 3.1.5.2)."""
    if isinstance(message, SMB2ReadRequest | SMB2WriteRequest):
        payload = message["length"].get_value()
    elif isinstance(message, SMB2QueryDirectoryRequest):
        payload = message["output_buffer_length"].get_value()
    else:
        return 1
    return int(max(0, payload - 1) // CREDIT_UNIT + 1)


def create(
    path: str, *, access: int, disposition: int, options: int, share: int = ALL_SHARING
) -> SMB2CreateRequest:
    """Open or create ``path`` (share-relative, backslashes)."""
    req = SMB2CreateRequest()
    req["requested_oplock_level"] = RequestedOplockLevel.SMB2_OPLOCK_LEVEL_NONE
    req["impersonation_level"] = ImpersonationLevel.Impersonation
    req["desired_access"] = access
    req["file_attributes"] = 0
    req["share_access"] = share
    req["create_disposition"] = disposition
    req["create_options"] = options
    req["buffer_path"] = path.encode("utf-16-le") if path else b"\x00\x00"
    return req


def create_temp(path: str) -> SMB2CreateRequest:
    """Create a new file that must not exist yet, open for write, read-back and rename."""
    return create(
        path,
        access=WRITE_ACCESS,
        disposition=CreateDisposition.FILE_CREATE,
        options=CreateOptions.FILE_NON_DIRECTORY_FILE,
        share=ShareAccess.FILE_SHARE_READ,
    )


def open_file(path: str, *, access: int) -> SMB2CreateRequest:
    """Open an existing regular file."""
    return create(
        path,
        access=access,
        disposition=CreateDisposition.FILE_OPEN,
        options=CreateOptions.FILE_NON_DIRECTORY_FILE,
    )


def open_dir(path: str, *, make: bool = False) -> SMB2CreateRequest:
    """Open a directory, creating it when ``make``."""
    return create(
        path,
        access=LIST_ACCESS,
        disposition=CreateDisposition.FILE_OPEN_IF if make else CreateDisposition.FILE_OPEN,
        options=CreateOptions.FILE_DIRECTORY_FILE,
    )


def write(data: bytes, *, offset: int = 0, file_id: bytes = RELATED_FILE_ID) -> SMB2WriteRequest:
    """Write ``data`` at ``offset``."""
    req = SMB2WriteRequest()
    req["length"] = len(data)
    req["offset"] = offset
    req["file_id"] = file_id
    req["buffer"] = data
    return req


def read(length: int, *, offset: int = 0, file_id: bytes = RELATED_FILE_ID) -> SMB2ReadRequest:
    """Read up to ``length`` bytes at ``offset``."""
    req = SMB2ReadRequest()
    req["length"] = length
    req["offset"] = offset
    req["minimum_count"] = 0
    req["file_id"] = file_id
    req["padding"] = b"\x50"
    return req


def _set_info(info: Any, file_id: bytes) -> SMB2SetInfoRequest:  # noqa: ANN401
    req = SMB2SetInfoRequest()
    req["info_type"] = info.INFO_TYPE
    req["file_info_class"] = info.INFO_CLASS
    req["file_id"] = file_id
    req["buffer"] = info
    return req


def set_write_time(mtime_ns: int, *, file_id: bytes = RELATED_FILE_ID) -> SMB2SetInfoRequest:
    """Set the last-write time; zero in the other fields means "leave unchanged"."""
    info = FileBasicInformation()
    info["creation_time"] = 0
    info["last_access_time"] = 0
    info["last_write_time"] = ns_to_filetime(mtime_ns)
    info["change_time"] = 0
    info["file_attributes"] = 0
    return _set_info(info, file_id)


def rename(target: str, *, replace: bool, file_id: bytes = RELATED_FILE_ID) -> SMB2SetInfoRequest:
    """Rename the open file to ``target`` (share-relative)."""
    info = FileRenameInformation()
    info["replace_if_exists"] = replace
    info["file_name"] = target
    return _set_info(info, file_id)


def delete_on_close(*, file_id: bytes = RELATED_FILE_ID) -> SMB2SetInfoRequest:
    """Mark the open file for deletion when its last handle closes."""
    info = FileDispositionInformation()
    info["delete_pending"] = True
    return _set_info(info, file_id)


def close(*, file_id: bytes = RELATED_FILE_ID, attributes: bool = False) -> SMB2CloseRequest:
    """Close the file, optionally asking for its final size and write time."""
    req = SMB2CloseRequest()
    req["file_id"] = file_id
    if attributes:
        req["flags"] = CloseFlags.SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB
    return req


def query_directory(
    *, restart: bool, out_length: int, file_id: bytes = RELATED_FILE_ID
) -> SMB2QueryDirectoryRequest:
    """List the open directory, continuing where the last query stopped unless ``restart``."""
    req = SMB2QueryDirectoryRequest()
    req["file_information_class"] = FileInformationClass.FILE_DIRECTORY_INFORMATION
    req["flags"] = QueryDirectoryFlags.SMB2_RESTART_SCANS if restart else 0
    req["file_index"] = 0
    req["file_id"] = file_id
    req["output_buffer_length"] = out_length
    req["buffer"] = "*".encode("utf-16-le")
    return req


def body(header: Any) -> bytes:  # noqa: ANN401
    """The bytes of a response after its 64-byte header."""
    data: bytes = header["data"].get_value()
    return data


def created_file_id(header: Any) -> bytes:  # noqa: ANN401
    """The FileId from a CREATE response."""
    return body(header)[64:80]


def read_data(header: Any) -> bytes:  # noqa: ANN401
    """The data of a READ response."""
    raw = body(header)
    offset, length = raw[2], struct.unpack_from("<I", raw, 4)[0]
    start = offset - HEADER_SIZE
    return raw[start : start + length]


@dataclass(frozen=True)
class Attributes:
    """Size and write time as the server reports them."""

    size: int
    mtime_ns: int


def close_attributes(header: Any) -> Attributes:  # noqa: ANN401
    """Size and write time from a CLOSE response sent with ``attributes=True``."""
    raw = body(header)
    write_time = struct.unpack_from("<q", raw, 24)[0]
    size = struct.unpack_from("<q", raw, 48)[0]
    return Attributes(size=size, mtime_ns=filetime_to_ns(write_time))


@dataclass(frozen=True)
class DirEntry:
    """One entry of a directory listing."""

    name: str
    size: int
    mtime_ns: int
    is_dir: bool


def directory_entries(header: Any) -> list[DirEntry]:  # noqa: ANN401
    """The entries of a QUERY_DIRECTORY response (FileDirectoryInformation)."""
    raw = body(header)
    buf_offset, buf_length = struct.unpack_from("<HI", raw, 2)
    buf = memoryview(raw)[buf_offset - HEADER_SIZE : buf_offset - HEADER_SIZE + buf_length]
    entries = []
    pos = 0
    while pos < len(buf):
        (next_offset, _, _, _, write_time, _, size, _, attributes, name_length) = (
            _DIR_ENTRY.unpack_from(buf, pos)
        )
        start = pos + _DIR_ENTRY.size
        name = bytes(buf[start : start + name_length]).decode("utf-16-le", "surrogatepass")
        if name not in (".", ".."):
            entries.append(
                DirEntry(
                    name=name,
                    size=size,
                    mtime_ns=filetime_to_ns(write_time),
                    is_dir=bool(attributes & _ATTRIBUTE_DIRECTORY),
                )
            )
        if not next_offset:
            break
        pos += next_offset
    return entries
