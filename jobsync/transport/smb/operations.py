"""The file operations of an SMB peer, run as many compounds in flight.

The file operations of an SMB peer, each a generator of compounds (see pipeline.py).
A copy is two compounds: CREATE temp + WRITE + SET_INFO(write time) + READ back, then, once the
bytes that came back are the bytes that were sent, SET_INFO(rename over the target) + CLOSE.
A file larger than one answer is written and read back in chunks sized by :class:`Sizes`.
Sizes follow what the server negotiated: no request asks for more than its MaxTransactSize,
MaxReadSize or MaxWriteSize, nor for more credits than its window holds, so a server that caps
answers at 64 KiB (SMB 2.0.2, many NAS boxes) or grants few credits is slower, never refused.

Many SMB compounds in flight on one connection.
Each file operation is written as a generator that yields one compound (a list of requests)
at a time and receives the replies to it. The runner keeps up to ``window`` of them in flight,
never spends more credits than the server granted, and moves each operation on as soon as its
replies are in, whatever order they come in: a request the server keeps waiting (another client
holds the file) delays its own operation only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from jobsync.errors import PeerFileNotFoundError, PeerIOError
from jobsync.jobs_folder import RemoteFile, coarse_mtime
from jobsync.transport.base import FileWrite, WriteOutcome, checked_parts
from jobsync.transport.smb import statuses, wire
from jobsync.transport.smb.channel import Channel
from jobsync.transport.smb.framing import Reply
from jobsync.transport.smb.wire import Request

T = TypeVar("T")

Compound = list[Request]
Step = tuple[Compound, bool]  # the requests, and whether they are related to each other
Operation = Generator[Step, list[Reply], T]


class Link(Protocol):
    """What the runner needs from a connection, so the runner itself stays free of sockets."""

    @property
    def credits(self) -> int:
        """Credits granted and not yet spent."""
        ...

    def cost(self, compound: Compound) -> int:
        """Credits sending ``compound`` spends."""
        ...

    def top_up(self, needed: int) -> None:
        """With nothing in flight, get ``needed`` credits from the server (or raise)."""
        ...

    def send(self, compound: Compound, *, related: bool) -> list[int]:
        """Send one compound; returns the message ids of its requests."""
        ...

    def wait(self) -> list[int]:
        """Block until some final replies arrive; returns their message ids."""
        ...

    def take(self, message_id: int) -> Reply:
        """The reply to one request, once it has arrived."""
        ...


@dataclass
class _InFlight(Generic[T]):
    index: int
    operation: Operation[T]
    ids: list[int]
    left: int


def run_pipeline(link: Link, operations: Sequence[Operation[T]], *, window: int) -> list[T]:
    """Drive every operation to completion, ``window`` at a time; results in input order.

    A connection-level failure (raised by ``link``) aborts the run; a failed request is handed
    to its operation as a :class:`Reply` with its error status.
    """
    return _Run(link, operations, window).results()


class _Run(Generic[T]):
    """One :func:`run`: the operations not started, ready to send, and in flight."""

    def __init__(self, link: Link, operations: Sequence[Operation[T]], window: int) -> None:
        self._link = link
        self._window = window
        self._results: list[T | None] = [None] * len(operations)
        self._fresh = deque(enumerate(operations))
        self._ready: deque[tuple[int, Operation[T], Step]] = deque()
        self._by_id: dict[int, _InFlight[T]] = {}
        self._in_flight = 0

    def results(self) -> list[T]:
        while self._fresh or self._ready or self._in_flight:
            self._send_what_fits()
            if self._in_flight:
                self._collect()
        return self._results  # type: ignore[return-value] # every slot was filled

    def _advance(self, index: int, op: Operation[T], replies: list[Reply] | None) -> None:
        try:
            step = next(op) if replies is None else op.send(replies)
        except StopIteration as done:
            self._results[index] = done.value
        else:
            self._ready.append((index, op, step))

    def _send_what_fits(self) -> None:
        link, ready = self._link, self._ready
        while self._in_flight < self._window and (ready or self._fresh):
            if not ready:
                self._advance(*self._fresh.popleft(), None)
                continue
            index, op, (compound, related) = ready[0]
            needed = link.cost(compound)
            if link.credits < needed:
                if self._in_flight:
                    return  # replies will hand credits back
                link.top_up(needed)  # nothing will: ask the server
            ready.popleft()
            ids = link.send(compound, related=related)
            entry = _InFlight(index, op, ids, len(ids))
            for message_id in ids:
                self._by_id[message_id] = entry
            self._in_flight += 1

    def _collect(self) -> None:
        """Move on every operation whose replies are all in, in whatever order they came."""
        for message_id in self._link.wait():
            entry = self._by_id.pop(message_id, None)
            if entry is None:
                continue  # not one of this run's requests
            entry.left -= 1
            if not entry.left:
                self._in_flight -= 1
                replies = [self._link.take(i) for i in entry.ids]
                self._advance(entry.index, entry.operation, replies)


# A write's progress: the temp file's id (None when it was not created), the first failed
# reply, and the bytes read back.
_Written = tuple[bytes | None, Reply | None, bytes]

_MAX_CHUNK_CREDITS = 16  # 1 MiB reads and writes when the server allows them
_LIST_CREDITS = 4  # 256 KiB of directory entries per answer when the server allows it
# Room for an access list of hundreds of entries, within any server's MaxTransactSize (64 KiB+).
_SECURITY_LENGTH = 16384
_NOT_FOUND = (statuses.STATUS_OBJECT_NAME_NOT_FOUND, statuses.STATUS_OBJECT_PATH_NOT_FOUND)


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


class FileOps:
    """Builds the operations on one peer's jobs folder; paths are relative, with ``/``."""

    def __init__(
        self, name: str, folder: str, *, sizes: Callable[[], Sizes], pending_limit: float
    ) -> None:
        """Operate in ``folder`` (share-relative); ``sizes`` is asked as each operation starts."""
        self.name = name
        self._folder = folder
        self._sizes = sizes
        self._pending_limit = pending_limit

    def path(self, relative: str) -> str:
        """The share-relative path of a path relative to the jobs folder."""
        parts = checked_parts(relative) if relative else []
        return "\\".join(p for p in [self._folder, *parts] if p)

    def text(self, reply: Reply) -> str:
        """A failed reply's status in words."""
        return status_text(reply, pending_limit=self._pending_limit)

    def open_dir_op(self, relative: str, *, make: bool = False) -> Operation[Reply]:
        """Open (or, with ``make``, create) a folder and close it: whether it is there."""
        replies = yield [wire.open_dir(self.path(relative), make=make), wire.close()], True
        return replies[0]

    def list_op(self, path: str) -> Operation[list[wire.DirEntry] | PeerIOError]:
        """The entries of the folder at share-relative ``path``; none when it is missing."""
        size = self._sizes().listing
        replies = yield (
            [wire.open_dir(path), wire.query_directory(restart=True, out_length=size)],
            True,
        )
        if not replies[0].ok:
            if status_of(replies[0]) in _NOT_FOUND:
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
        empty = not entries and status_of(reply) == statuses.STATUS_NO_SUCH_FILE
        if status_of(reply) != statuses.STATUS_NO_MORE_FILES and not empty:
            return self._io_error(path, reply)
        return entries

    def read_op(self, relative: str) -> Operation[bytes | PeerIOError]:
        """A file's content: with its open in one compound, in chunks when it is larger."""
        path = self.path(relative)
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
                if status_of(replies[1]) == statuses.STATUS_END_OF_FILE
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
                if status_of(reply) == statuses.STATUS_END_OF_FILE:
                    break
                return reply
            data = wire.read_data(reply.body)
            buffer += data
            if len(data) < chunk:
                break
        return bytes(buffer)

    def write_op(self, write: FileWrite) -> Operation[WriteOutcome]:
        """Write under the temp name, read back, compare, and rename over the target."""
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
                wire.rename(self.path(write.path), replace=True, file_id=file_id),
                wire.close(file_id=file_id, attributes=True),
            ],
            False,
        )
        if not renamed.ok:
            yield from self.remove_op(write.temp)
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
        compound = [wire.create_temp(self.path(write.temp))]
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
        (reply,) = yield [wire.create_temp(self.path(write.temp))], False
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

    def move_op(self, src: str, dst: str) -> Operation[PeerIOError | None]:
        """Rename ``src`` to ``dst``, never replacing an existing ``dst``."""
        replies = yield (
            [
                wire.open_file(self.path(src), access=wire.DELETE_ACCESS),
                wire.rename(self.path(dst), replace=False),
                wire.close(),
            ],
            True,
        )
        failed = next((r for r in replies[:2] if not r.ok), None)
        return None if failed is None else self._io_error(src, failed)

    def remove_op(self, relative: str) -> Operation[PeerIOError | None]:
        """Delete a file; one already gone counts as removed."""
        replies = yield (
            [
                wire.open_file(self.path(relative), access=wire.DELETE_ACCESS),
                wire.delete_on_close(),
                wire.close(),
            ],
            True,
        )
        if not replies[0].ok and status_of(replies[0]) in _NOT_FOUND:
            return None
        failed = next((r for r in replies[:2] if not r.ok), None)
        return None if failed is None else self._io_error(relative, failed)

    def permissions_op(self, relative: str) -> Operation[bytes | None]:
        """The owner, group and access list a new file at ``relative`` gets (``None``: unknown).

        The file is created to be deleted when closed, in the same compound: nothing remains.
        """
        replies = yield (
            [
                wire.create_probe(self.path(relative)),
                wire.query_security(out_length=_SECURITY_LENGTH),
                wire.close(),
            ],
            True,
        )
        if not (replies[0].ok and replies[1].ok):
            return None
        return wire.query_info_data(replies[1].body)

    def free_bytes_op(self) -> Operation[int | PeerIOError]:
        """The free space the logged-on account may use on the jobs folder's volume."""
        replies = yield (
            [wire.open_dir(self.path("")), wire.query_volume_size(), wire.close()],
            True,
        )
        failed = next((r for r in replies[:2] if not r.ok), None)
        if failed is not None:
            return self._io_error(".", failed)
        return wire.volume_free_bytes(wire.query_info_data(replies[1].body))

    def _io_error(self, path: str, reply: Reply) -> PeerIOError:
        missing = status_of(reply) == statuses.STATUS_OBJECT_NAME_NOT_FOUND
        kind = PeerFileNotFoundError if missing else PeerIOError
        return kind(f"peer {self.name}: {path}: {self.text(reply)}")


def status_of(reply: Reply) -> int | None:
    """The NT status of a failed reply; ``None`` for a success."""
    return None if reply.ok else reply.status


def status_text(reply: Reply, *, pending_limit: float) -> str:
    """A failed reply's status in words; a request jobsync cancelled says why."""
    status = status_of(reply)
    if status is None:
        return "ok"
    if status == statuses.STATUS_CANCELLED:
        return (
            f"still held by another program after {pending_limit:g} s, so jobsync "
            f"gave up waiting ({statuses.describe(status)}); a later pass tries again"
        )
    return statuses.describe(status)
