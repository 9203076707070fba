"""A peer's jobs folder over SMB 2/3.

:mod:`~jobsync.transport.smb.logon` connects and logs on; then jobsync's own
:class:`~jobsync.transport.smb.channel.Channel` carries every request of the run on that one
connection and session. A copy is two compounds: CREATE temp + WRITE + SET_INFO(write time) +
READ back, then, once the bytes that came back are the bytes that were sent, SET_INFO(rename over
the target) + CLOSE. Up to ``WINDOW`` files are in flight at once.

Sizes follow what the server negotiated: no request asks for more than its MaxTransactSize,
MaxReadSize or MaxWriteSize, nor for more credits than its window holds, so a server that caps
answers at 64 KiB (SMB 2.0.2, many NAS boxes) or grants few credits is slower, never refused.

Every wait is bounded: the channel's by ``timeout`` of silence (or, for a request the server
said it is working on, by ``PENDING_LIMIT_SECONDS``), the logon by a timer. A peer that stops
answering fails in seconds instead of hanging for the library's ten minutes.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobsync.config import PeerConfig, UncPath
from jobsync.errors import (
    PeerError,
    PeerFileNotFoundError,
    PeerIOError,
    PeerPathError,
    PeerSecurityError,
    PeerSessionLostError,
    PeerUnreachableError,
)
from jobsync.transport.base import FileWrite, RemoteFile, WriteOutcome, checked_parts, coarse_mtime
from jobsync.transport.smb import pipeline, statuses, wire
from jobsync.transport.smb.channel import Channel, ChannelClosedError, Reply, SessionLostError
from jobsync.transport.smb.logon import Connector
from jobsync.transport.smb.pipeline import Operation
from jobsync.transport.smb.security import IntegrityError
from jobsync.transport.smb.wire import MalformedReplyError

# A write's progress: the temp file's id (None when it was not created), the first failed
# reply, and the bytes read back.
_Written = tuple[bytes | None, Reply | None, bytes]

WINDOW = 64  # compounds in flight per connection
CREDITS_WANTED = 512  # the channel keeps about this many requests' worth of credits
IDLE_CHECK_SECONDS = 60.0  # a connection idle this long is checked (ECHO) before it is reused
# How long a request the server answered STATUS_PENDING may take before jobsync cancels it:
# longer than the 35 s a Windows or Samba server waits for another client to let go of a file.
PENDING_LIMIT_SECONDS = 60.0
_MAX_CHUNK_CREDITS = 16  # 1 MiB reads and writes when the server allows them
_LIST_CREDITS = 4  # 256 KiB of directory entries per answer when the server allows it
_NOT_FOUND = (statuses.STATUS_OBJECT_NAME_NOT_FOUND, statuses.STATUS_OBJECT_PATH_NOT_FOUND)
_BROKEN = (ChannelClosedError, IntegrityError, MalformedReplyError, OSError)


@dataclass(frozen=True)
class Sizes:
    """Request sizes that fit what the server negotiated and the credits it grants."""

    chunk: int  # bytes per READ or WRITE of a large file
    listing: int  # bytes of directory entries asked for per QUERY_DIRECTORY
    first_read: int  # bytes of a file read with its open, in one compound
    small: int  # files up to this size are written and read back in one compound

    @classmethod
    def of(cls, channel: Channel) -> Sizes:
        """The sizes for ``channel``'s server as it stands now."""
        session, unit = channel.session, wire.CREDIT_UNIT
        limits = session.limits
        units = max(1, min(_MAX_CHUNK_CREDITS, channel.peak // 2)) if session.multi_credit else 1
        return cls(
            chunk=max(1, min(limits.max_read, limits.max_write, units * unit)),
            listing=max(1, min(limits.max_transact, min(units, _LIST_CREDITS) * unit)),
            first_read=max(1, min(limits.max_read, unit)),
            small=max(0, min(unit - 1, limits.max_write, limits.max_read - 1)),
        )


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
        self._connector: Connector | None = None
        self._channel: Channel | None = None
        self._broken: PeerError | None = None
        self._renew = False  # the server ended the session: log on again at the next call
        self._lock = threading.Lock()  # guards _connector against abort() from other threads
        self._last_used = time.monotonic()
        try:
            self._connect()
        except BaseException:
            self.close()  # the caller never gets this object: release the socket here
            raise

    # -- connection ---------------------------------------------------------------------------

    def _connect(self) -> None:
        connector = Connector(
            self._config,
            self._unc,
            timeout=self._timeout,
            pending_limit=PENDING_LIMIT_SECONDS,
            credits_wanted=CREDITS_WANTED,
        )
        with self._lock:
            self._connector = connector
        try:
            self._channel = connector.connect()
        except BaseException:
            connector.discard()
            raise
        self._last_used = time.monotonic()
        self._renew = False
        self._check_folder()

    def _check_folder(self) -> None:
        def op() -> Operation[Reply]:
            replies = yield [wire.open_dir(self._unc.folder), wire.close()], True
            return replies[0]

        reply = self._run([op()])[0]
        if not reply.ok:
            raise PeerPathError(
                f"peer {self.name}: folder {self._unc} cannot be opened: {_status_text(reply)}"
            )

    def abort(self) -> None:
        """Cut the connection from any thread; every call under way fails at once."""
        self._broken = self._broken or PeerUnreachableError(f"peer {self.name}: connection cut")
        with self._lock:
            connector = self._connector
        if connector is not None:
            connector.shutdown()

    def _lost(self, exc: BaseException, doing: str) -> PeerError:
        """Translate an error and mark the connection unusable; returns the error."""
        connector = self._connector
        error = (
            connector.translate(exc, doing=doing)
            if connector is not None
            else PeerUnreachableError(f"peer {self.name}: {exc}")
        )
        if isinstance(exc, IntegrityError):
            error = PeerSecurityError(f"peer {self.name}: {exc}; connection dropped")
        elif isinstance(exc, MalformedReplyError):
            error = PeerUnreachableError(
                f"peer {self.name}: the server sent a malformed reply ({exc}); connection dropped"
            )
        self._broken = error
        if connector is not None:
            connector.shutdown()
        return error

    def close(self) -> None:
        """Log off and disconnect, within the timeout; safe to call twice."""
        self._close(log_off=self._broken is None and not self._renew)

    def _close(self, *, log_off: bool) -> None:
        channel, self._channel = self._channel, None
        with self._lock:
            connector, self._connector = self._connector, None
        if channel is not None and log_off:
            # Logging off is a courtesy; the socket is closed below whatever happens.
            with contextlib.suppress(Exception):
                ids = channel.send([wire.tree_disconnect(), wire.logoff()], related=False)
                for message_id in ids:
                    channel.receive(message_id)
        if connector is not None:
            connector.discard()

    @property
    def protection(self) -> str:
        """The dialect and how messages are protected, e.g. "SMB 3.1.1, encrypted with ..."."""
        return self._channel.protection if self._channel is not None else "not connected"

    # -- running compounds --------------------------------------------------------------------

    def _run(self, operations: Sequence[Operation[Any]]) -> list[Any]:
        if self._broken is not None:
            raise self._broken
        if self._renew or (
            time.monotonic() - self._last_used > IDLE_CHECK_SECONDS and not self._alive()
        ):
            self._reconnect()
        channel = self._channel
        if channel is None:
            raise PeerUnreachableError(f"peer {self.name}: not connected")
        try:
            return pipeline.run(channel, operations, window=WINDOW)
        except SessionLostError as exc:
            # Not broken: the next call logs on again, as a Windows client does.
            self._renew = True
            raise PeerSessionLostError(f"peer {self.name}: {exc}; logging on again") from None
        except (*_BROKEN, TimeoutError) as exc:
            raise self._lost(exc, "waiting for an answer") from None
        except Exception:
            # A fault of jobsync's own: requests may still be in flight, so the connection
            # cannot be trusted for the next call. The caller reports the fault itself.
            self._lost(ChannelClosedError("dropped after an internal error"), "working")
            raise
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
        except (*_BROKEN, TimeoutError):
            return False

    def _reconnect(self) -> None:
        self._close(log_off=False)  # the server no longer answers on it, or forgot the session
        self._connect()

    def _path(self, relative: str) -> str:
        parts = checked_parts(relative) if relative else []
        return "\\".join(p for p in [self._unc.folder, *parts] if p)

    def _sizes(self) -> Sizes:
        channel = self._channel
        if channel is None:
            raise PeerUnreachableError(f"peer {self.name}: not connected")
        return Sizes.of(channel)

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
        size = self._sizes().listing
        replies = yield (
            [wire.open_dir(path), wire.query_directory(restart=True, out_length=size)],
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
                [wire.query_directory(restart=False, out_length=size, file_id=file_id)],
                False,
            )
        yield [wire.close(file_id=file_id)], False
        # An empty NTFS volume root has no "." and "..": its first answer is NO_SUCH_FILE.
        empty = not entries and _status(reply) == statuses.STATUS_NO_SUCH_FILE
        if _status(reply) != statuses.STATUS_NO_MORE_FILES and not empty:
            return self._io_error(path, reply)
        return entries

    def read_files(self, paths: Sequence[str]) -> Mapping[str, bytes | PeerIOError]:
        """The content of each path, read in parallel compounds."""
        results = self._run([self._read_op(p) for p in paths])
        return dict(zip(paths, results, strict=True))

    def _read_op(self, relative: str) -> Operation[bytes | PeerIOError]:
        path = self._path(relative)
        first = self._sizes().first_read
        replies = yield (
            [wire.open_file(path, access=wire.READ_ACCESS), wire.read(first), wire.close()],
            True,
        )
        if not replies[0].ok:
            return self._io_error(relative, replies[0])
        if not replies[1].ok:
            return (
                b""
                if _status(replies[1]) == statuses.STATUS_END_OF_FILE
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
        chunk, buffer = self._sizes().chunk, bytearray()
        while limit is None or len(buffer) <= limit:
            (reply,) = yield [wire.read(chunk, offset=len(buffer), file_id=file_id)], False
            if not reply.ok:
                if _status(reply) == statuses.STATUS_END_OF_FILE:
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
        small = len(data) <= self._sizes().small
        steps = self._write_small(write) if small else self._write_large(write)
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
        chunk = self._sizes().chunk
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
        missing = _status(reply) == statuses.STATUS_OBJECT_NAME_NOT_FOUND
        kind = PeerFileNotFoundError if missing else PeerIOError
        return kind(f"peer {self.name}: {path}: {_status_text(reply)}")


def _status(reply: Reply) -> int | None:
    return None if reply.ok else reply.status


def _status_text(reply: Reply) -> str:
    status = _status(reply)
    if status is None:
        return "ok"
    if status == statuses.STATUS_CANCELLED:
        return (
            f"still held by another program after {PENDING_LIMIT_SECONDS:g} s, so jobsync "
            f"gave up waiting ({statuses.describe(status)}); a later pass tries again"
        )
    return statuses.describe(status)
