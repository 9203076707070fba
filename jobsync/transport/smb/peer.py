"""A peer's jobs folder over SMB 2/3.

smbprotocol connects and logs on; then jobsync's own :class:`~jobsync.transport.smb.channel.
Channel` carries every request of the run on that one connection and session. A copy is two
compounds: CREATE temp + WRITE + SET_INFO(write time) + READ back, then, once the bytes that
came back are the bytes that were sent, SET_INFO(rename over the target) + CLOSE. Up to
``WINDOW`` files are in flight at once.

Every wait is bounded by the peer's timeout: the channel's reads and writes by ``select``, and
the library calls that take no timeout (session setup, tree connect) by a timer that shuts the
socket down. A peer that stops answering therefore fails in seconds instead of hanging for the
library's ten minutes.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from smbprotocol.connection import Connection
from smbprotocol.exceptions import (
    AccessDenied,
    BadNetworkName,
    LogonFailure,
    SMBAuthenticationError,
    SMBException,
    SMBResponseException,
    WrongPassword,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from jobsync.config import PeerConfig, UncPath
from jobsync.errors import (
    PeerAuthError,
    PeerError,
    PeerFileNotFoundError,
    PeerIOError,
    PeerSecurityError,
    PeerTimeoutError,
    PeerUnreachableError,
)
from jobsync.transport.base import FileWrite, RemoteFile, WriteOutcome, checked_parts, coarse_mtime
from jobsync.transport.smb import pipeline, wire
from jobsync.transport.smb.channel import Channel, ChannelClosedError, Reply, take_over
from jobsync.transport.smb.pipeline import Operation
from jobsync.transport.smb.security import IntegrityError

# A write's progress: the temp file's id (None when it was not created), the first failed
# reply, and the bytes read back.
_Written = tuple[bytes | None, Reply | None, bytes]

WINDOW = 64  # compounds in flight per connection
CREDITS_WANTED = 512  # the channel keeps about this many requests' worth of credits
IDLE_CHECK_SECONDS = 60.0  # a connection idle this long is checked (ECHO) before it is reused
SMALL = wire.CREDIT_UNIT - 1  # files up to this size travel in a single compound
LIST_BUFFER = 4 * wire.CREDIT_UNIT
_STATUS_TEXT = {
    wire.STATUS_ACCESS_DENIED: "access denied",
    wire.STATUS_DISK_FULL: "disk full",
    wire.STATUS_QUOTA_EXCEEDED: "disk quota exceeded",
    wire.STATUS_SHARING_VIOLATION: "in use by another program (sharing violation)",
    wire.STATUS_OBJECT_NAME_NOT_FOUND: "not found",
    wire.STATUS_OBJECT_PATH_NOT_FOUND: "folder not found",
    wire.STATUS_OBJECT_NAME_COLLISION: "already exists",
    wire.STATUS_DELETE_PENDING: "being deleted (delete pending)",
    wire.STATUS_OBJECT_NAME_INVALID: "name not valid on the peer",
}
_NOT_FOUND = (wire.STATUS_OBJECT_NAME_NOT_FOUND, wire.STATUS_OBJECT_PATH_NOT_FOUND)


class SmbPeer:
    """A jobs folder on an SMB share."""

    def __init__(self, config: PeerConfig, *, timeout: float) -> None:
        """Connect and log on; raises a :class:`PeerError` naming the peer when that fails."""
        if config.unc is None:
            raise ValueError("SmbPeer needs a UNC path")
        self.name = config.name
        self._config = config
        self._unc: UncPath = config.unc
        self._timeout = timeout
        self._conn: Connection | None = None
        self._sock: socket.socket | None = None
        self._channel: Channel | None = None
        self._broken: PeerError | None = None
        self._aborted = threading.Event()
        self._last_used = time.monotonic()
        try:
            self._connect()
        except BaseException:
            self.close()  # the caller never gets this object: release the socket here
            raise

    # -- connection ---------------------------------------------------------------------------

    def _connect(self) -> None:
        config, unc = self._config, self._unc
        conn = Connection(uuid.uuid4(), unc.host, config.port, require_signing=True)
        self._conn = conn
        with self._bounded("connecting"):
            try:
                conn.connect(timeout=self._timeout)
                self._sock = conn.transport._sock  # noqa: SLF001 - so a timer can shut it down
                session = Session(
                    conn,
                    username=config.username,
                    password=config.password.value if config.password else None,
                    require_encryption=config.encrypt,
                )
                session.connect()
                tree = TreeConnect(session, f"\\\\{unc.host}\\{unc.share}")
                tree.connect()
                self._channel = take_over(
                    conn, session, tree, credits_wanted=CREDITS_WANTED, timeout=self._timeout
                )
            except Exception as exc:  # noqa: BLE001 - translated into the error tree here, once
                raise self._lost(exc, "connecting") from None
        self._last_used = time.monotonic()
        self._check_folder()

    def _check_folder(self) -> None:
        def op() -> Operation[Reply]:
            replies = yield [wire.open_dir(self._unc.folder), wire.close()], True
            return replies[0]

        reply = self._run([op()])[0]
        if not reply.ok:
            raise PeerUnreachableError(
                f"peer {self.name}: folder {self._unc} cannot be opened: {_status_text(reply)}"
            )

    @contextmanager
    def _bounded(self, doing: str) -> Iterator[None]:
        """Shut the socket down if the block outlives the timeout (for calls that take none)."""
        timer = threading.Timer(self._timeout, self._abort)
        timer.daemon = True
        timer.start()
        try:
            yield
        except PeerError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated into the error tree here, once
            raise self._lost(exc, doing) from None
        finally:
            timer.cancel()

    def abort(self) -> None:
        """Cut the connection from any thread; every call under way fails at once."""
        self._broken = self._broken or PeerUnreachableError(f"peer {self.name}: connection cut")
        self._shutdown()

    def _abort(self) -> None:
        self._aborted.set()
        self._shutdown()

    def _shutdown(self) -> None:
        """Shut the socket down from any thread, waking every blocked send and receive."""
        sock = self._sock
        if sock is None and self._conn is not None:
            sock = getattr(self._conn.transport, "_sock", None)
        _shutdown(sock)

    def _lost(self, exc: BaseException, doing: str) -> PeerError:
        """Translate a library error and mark the connection unusable; returns the error."""
        error = _translate(
            exc,
            peer=self.name,
            unc=self._unc,
            doing=doing,
            timeout=self._timeout,
            timed_out=self._aborted.is_set(),
            username=self._config.username,
        )
        self._broken = error
        self._abort()
        return error

    def close(self) -> None:
        """Log off and disconnect, within the timeout; safe to call twice."""
        self._close(log_off=self._broken is None)

    def _close(self, *, log_off: bool) -> None:
        channel, self._channel = self._channel, None
        conn, self._conn = self._conn, None
        if channel is not None and log_off:
            # Logging off is a courtesy; the socket is closed below whatever happens.
            with contextlib.suppress(Exception):
                ids = channel.send([wire.tree_disconnect(), wire.logoff()], related=False)
                for message_id in ids:
                    channel.receive(message_id)
        if channel is None and conn is not None:
            # smbprotocol's receive thread may still read this socket: let it end first.
            _shutdown(self._sock or getattr(conn.transport, "_sock", None))
            with contextlib.suppress(Exception):
                conn.disconnect(close=False)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()

    @property
    def protection(self) -> str:
        """The dialect and how messages are protected, e.g. "SMB 3.1.1, encrypted with ..."."""
        return self._channel.protection if self._channel is not None else "not connected"

    # -- running compounds --------------------------------------------------------------------

    def _run(self, operations: Sequence[Operation[Any]]) -> list[Any]:
        if self._broken is not None:
            raise self._broken
        if time.monotonic() - self._last_used > IDLE_CHECK_SECONDS and not self._alive():
            self._reconnect()
        channel = self._channel
        if channel is None:
            raise PeerUnreachableError(f"peer {self.name}: not connected")
        try:
            return pipeline.run(channel, operations, window=WINDOW)
        except (ChannelClosedError, IntegrityError, OSError) as exc:
            raise self._lost(exc, "waiting for an answer") from None
        finally:
            self._last_used = time.monotonic()

    def _alive(self) -> bool:
        """Whether a connection that sat idle still answers (servers drop idle ones)."""
        channel = self._channel
        if channel is None:
            return False
        try:
            (message_id,) = channel.send([wire.echo()], related=False)
            return channel.receive(message_id).ok
        except (ChannelClosedError, IntegrityError, OSError):
            return False

    def _reconnect(self) -> None:
        self._close(log_off=False)  # the server no longer answers on it
        self._sock = None
        self._connect()

    def _path(self, relative: str) -> str:
        parts = checked_parts(relative) if relative else []
        return "\\".join(p for p in [self._unc.folder, *parts] if p)

    @property
    def _chunk(self) -> int:
        conn = self._conn
        assert conn is not None  # noqa: S101
        return int(min(conn.max_read_size, conn.max_write_size, 16 * wire.CREDIT_UNIT))

    # -- the Peer interface -------------------------------------------------------------------

    def list_files(self, folder: str = "") -> list[RemoteFile]:
        """The regular files directly in ``folder``; none when it does not exist."""
        result = self._run([self._list_op(self._path(folder))])[0]
        if isinstance(result, PeerIOError):
            raise result
        return [
            # FILETIMEs are whole 100 ns steps already: no coarse_mtime() needed per entry.
            RemoteFile(e.name, e.size, e.mtime_ns)
            for e in result
            if not e.is_dir
        ]

    def _list_op(self, path: str) -> Operation[list[wire.DirEntry] | PeerIOError]:
        replies = yield (
            [wire.open_dir(path), wire.query_directory(restart=True, out_length=LIST_BUFFER)],
            True,
        )
        if not replies[0].ok:
            if _status(replies[0]) in _NOT_FOUND:
                return []
            return self._io_error(path, replies[0])
        file_id = wire.created_file_id(replies[0].body)
        entries: list[wire.DirEntry] = []
        reply = replies[1]
        while reply.ok:
            entries.extend(wire.directory_entries(reply.body))
            (reply,) = yield (
                [wire.query_directory(restart=False, out_length=LIST_BUFFER, file_id=file_id)],
                False,
            )
        yield [wire.close(file_id=file_id)], False
        if _status(reply) != wire.STATUS_NO_MORE_FILES:
            return self._io_error(path, reply)
        return entries

    def read_files(self, paths: Sequence[str]) -> Mapping[str, bytes | PeerIOError]:
        """The content of each path, read in parallel compounds."""
        results = self._run([self._read_op(p) for p in paths])
        return dict(zip(paths, results, strict=True))

    def _read_op(self, relative: str) -> Operation[bytes | PeerIOError]:
        path = self._path(relative)
        first = wire.CREDIT_UNIT
        replies = yield (
            [wire.open_file(path, access=wire.READ_ACCESS), wire.read(first), wire.close()],
            True,
        )
        if not replies[0].ok:
            return self._io_error(relative, replies[0])
        if not replies[1].ok:
            return (
                b""
                if _status(replies[1]) == wire.STATUS_END_OF_FILE
                else self._io_error(relative, replies[1])
            )
        data = wire.read_data(replies[1].body)
        if len(data) < first:
            return data
        # A larger file: open it again and read it in big chunks.
        (reply,) = yield [wire.open_file(path, access=wire.READ_ACCESS)], False
        if not reply.ok:
            return self._io_error(relative, reply)
        file_id = wire.created_file_id(reply.body)
        content = yield from self._read_all(file_id)
        yield [wire.close(file_id=file_id)], False
        return content if isinstance(content, bytes) else self._io_error(relative, content)

    def _read_all(self, file_id: bytes, limit: int | None = None) -> Operation[bytes | Reply]:
        chunk, buffer = self._chunk, bytearray()
        while limit is None or len(buffer) <= limit:
            (reply,) = yield [wire.read(chunk, offset=len(buffer), file_id=file_id)], False
            if not reply.ok:
                if _status(reply) == wire.STATUS_END_OF_FILE:
                    break
                return reply
            data = wire.read_data(reply.body)
            buffer += data
            if len(data) < chunk:
                break
        return bytes(buffer)

    def write_files(self, writes: Sequence[FileWrite]) -> list[WriteOutcome]:
        """Write each file under its temp name, read it back, and rename it over the target."""
        return self._run([self._write_op(w) for w in writes])

    def _write_op(self, write: FileWrite) -> Operation[WriteOutcome]:
        data = write.data
        steps = self._write_small(write) if len(data) <= SMALL else self._write_large(write)
        file_id, failed, landed = yield from steps
        if file_id is None:
            return self._failed(write, failed)
        if failed is not None or landed != data:
            yield [wire.delete_on_close(file_id=file_id), wire.close(file_id=file_id)], False
            if failed is not None:
                return self._failed(write, failed)
            mismatch = PeerIOError(
                f"peer {self.name}: {write.path}: the bytes read back differ from those written"
            )
            return WriteOutcome(write.path, error=mismatch)
        # Unrelated on purpose: the CLOSE must run even when the rename is refused.
        renamed, closed = yield (
            [
                wire.rename(self._path(write.path), replace=True, file_id=file_id),
                wire.close(file_id=file_id, attributes=True),
            ],
            False,
        )
        if not renamed.ok:
            yield from self._remove_op(write.temp)
            return self._failed(write, renamed)
        attrs = (
            wire.close_attributes(closed.body)
            if closed.ok
            else wire.Attributes(len(data), write.mtime_ns)
        )
        name = write.path.rsplit("/", 1)[-1]
        landed_file = RemoteFile(name, attrs.size, coarse_mtime(attrs.mtime_ns))
        return WriteOutcome(write.path, landed=landed_file)

    def _write_small(self, write: FileWrite) -> Operation[_Written]:
        """Create, write, set the time and read back in one compound."""
        data = write.data
        compound = [wire.create_temp(self._path(write.temp))]
        if data:
            compound.append(wire.write(data))
        compound.append(wire.set_write_time(write.mtime_ns))
        if data:
            compound.append(wire.read(len(data) + 1))  # one byte more: a longer file shows
        replies = yield compound, True
        if not replies[0].ok:
            return None, replies[0], b""
        file_id = wire.created_file_id(replies[0].body)
        failed = next((r for r in replies[1:] if not r.ok), None)
        landed = wire.read_data(replies[-1].body) if data and failed is None else data
        return file_id, failed, landed

    def _write_large(self, write: FileWrite) -> Operation[_Written]:
        """Create, then write and read back in big chunks, one request at a time."""
        (reply,) = yield [wire.create_temp(self._path(write.temp))], False
        if not reply.ok:
            return None, reply, b""
        file_id = wire.created_file_id(reply.body)
        failed = yield from self._write_chunks(file_id, write.data)
        if failed is not None:
            return file_id, failed, b""
        (timed,) = yield [wire.set_write_time(write.mtime_ns, file_id=file_id)], False
        if not timed.ok:
            return file_id, timed, b""
        back = yield from self._read_all(file_id, limit=len(write.data))
        return (file_id, None, back) if isinstance(back, bytes) else (file_id, back, b"")

    def _write_chunks(self, file_id: bytes, data: bytes) -> Operation[Reply | None]:
        chunk = self._chunk
        for offset in range(0, len(data), chunk):
            (reply,) = yield (
                [wire.write(data[offset : offset + chunk], offset=offset, file_id=file_id)],
                False,
            )
            if not reply.ok:
                return reply
        return None

    def _failed(self, write: FileWrite, reply: Reply | None) -> WriteOutcome:
        if reply is None:
            return WriteOutcome(write.path, error=PeerIOError(f"peer {self.name}: write failed"))
        return WriteOutcome(write.path, error=self._io_error(write.path, reply))

    def move_files(self, moves: Sequence[tuple[str, str]]) -> Mapping[str, PeerIOError | None]:
        """Rename each ``(src, dst)``, refusing to replace an existing ``dst``."""
        results = self._run([self._move_op(src, dst) for src, dst in moves])
        return dict(zip((src for src, _ in moves), results, strict=True))

    def _move_op(self, src: str, dst: str) -> Operation[PeerIOError | None]:
        replies = yield (
            [
                wire.open_file(self._path(src), access=wire.DELETE_ACCESS),
                wire.rename(self._path(dst), replace=False),
                wire.close(),
            ],
            True,
        )
        failed = next((r for r in replies[:2] if not r.ok), None)
        return None if failed is None else self._io_error(src, failed)

    def remove_files(self, paths: Sequence[str]) -> Mapping[str, PeerIOError | None]:
        """Delete each path; one already gone counts as removed."""
        results = self._run([self._remove_op(p) for p in paths])
        return dict(zip(paths, results, strict=True))

    def _remove_op(self, relative: str) -> Operation[PeerIOError | None]:
        replies = yield (
            [
                wire.open_file(self._path(relative), access=wire.DELETE_ACCESS),
                wire.delete_on_close(),
                wire.close(),
            ],
            True,
        )
        if not replies[0].ok and _status(replies[0]) in _NOT_FOUND:
            return None
        failed = next((r for r in replies[:2] if not r.ok), None)
        return None if failed is None else self._io_error(relative, failed)

    def make_dirs(self, folder: str) -> None:
        """Create ``folder`` and its parents when missing."""
        parts = checked_parts(folder)

        def op(path: str) -> Operation[Reply]:
            replies = yield [wire.open_dir(path, make=True), wire.close()], True
            return replies[0]

        for depth in range(1, len(parts) + 1):
            reply = self._run([op(self._path("/".join(parts[:depth])))])[0]
            if not reply.ok:
                raise PeerIOError(
                    f"peer {self.name}: cannot create {folder}: {_status_text(reply)}"
                )

    def _io_error(self, path: str, reply: Reply) -> PeerIOError:
        missing = _status(reply) == wire.STATUS_OBJECT_NAME_NOT_FOUND
        kind = PeerFileNotFoundError if missing else PeerIOError
        return kind(f"peer {self.name}: {path}: {_status_text(reply)}")


def _shutdown(sock: socket.socket | None) -> None:
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _status(reply: Reply) -> int | None:
    return None if reply.ok else reply.status


def _status_text(reply: Reply) -> str:
    status = _status(reply)
    if status is None:
        return "ok"
    return _STATUS_TEXT.get(status, f"refused with NT status 0x{status:08X}")


def _translate(  # noqa: PLR0911 - one branch per kind of failure
    exc: BaseException,
    *,
    peer: str,
    unc: UncPath,
    doing: str,
    timeout: float,
    timed_out: bool,
    username: str | None,
) -> PeerError:
    """Map an smbprotocol or socket error to the most specific :class:`PeerError`."""
    text = str(exc)
    if isinstance(exc, PeerError):
        return exc
    if isinstance(exc, (LogonFailure, WrongPassword, SMBAuthenticationError)) or (
        isinstance(exc, AccessDenied) and doing == "connecting"
    ):
        who = f"user {username}" if username else "the current account"
        return PeerAuthError(f"peer {peer}: logon refused for {who} (wrong user name or password?)")
    if "encryption is required" in text:
        return PeerSecurityError(
            f"peer {peer}: the server does not offer SMB3 encryption, which this peer requires; "
            "set encrypt = false for this peer only if the network is trusted"
        )
    if isinstance(exc, IntegrityError):
        return PeerSecurityError(f"peer {peer}: {text}; connection dropped")
    if isinstance(exc, BadNetworkName):
        return PeerUnreachableError(
            f"peer {peer}: share \\\\{unc.host}\\{unc.share} does not exist"
        )
    if timed_out or isinstance(exc, TimeoutError) or "timeout" in text.lower():
        return PeerTimeoutError(f"peer {peer}: no answer within {timeout:g} s while {doing}")
    if isinstance(exc, ValueError) and text.startswith("Failed to connect"):
        reason = text.split(": ", 2)[-1] if ": " in text else text
        return PeerUnreachableError(f"peer {peer}: cannot connect to {unc.host}: {reason}")
    if isinstance(exc, SMBResponseException):
        return PeerIOError(f"peer {peer}: refused while {doing}: NT status 0x{exc.status:08X}")
    if isinstance(exc, (SMBException, OSError)):
        return PeerUnreachableError(f"peer {peer}: connection lost while {doing}: {text}")
    return PeerUnreachableError(f"peer {peer}: failed while {doing}: {type(exc).__name__}: {text}")


def open_smb_peer(config: PeerConfig, *, timeout: float) -> SmbPeer:
    """Connect to an SMB peer."""
    return SmbPeer(config, timeout=timeout)
