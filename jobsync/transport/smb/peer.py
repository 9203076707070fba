"""A peer's jobs folder over SMB 2/3.

:mod:`~jobsync.transport.smb.logon` connects and logs on; then jobsync's own
:class:`~jobsync.transport.smb.channel.Channel` carries every request of the run on that one
connection and session, up to ``WINDOW`` file operations (:mod:`operations`) in flight at once.

Every wait is bounded: the channel's by ``timeout`` of silence (or, for a request the server
said it is working on, by ``PENDING_LIMIT_SECONDS``), the logon by a timer. A peer that stops
answering fails in seconds instead of hanging for the library's ten minutes. When the server
ends the session (an expired Kerberos ticket), the next call logs on again.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from jobsync.config.model import PeerConfig, UncPath
from jobsync.errors import (
    PeerError,
    PeerIOError,
    PeerPathError,
    PeerSecurityError,
    PeerSessionLostError,
    PeerUnreachableError,
)
from jobsync.jobs_folder import RemoteFile
from jobsync.transport.base import FileWrite, WriteOutcome, checked_parts
from jobsync.transport.smb import wire
from jobsync.transport.smb.channel import Channel, SessionLostError
from jobsync.transport.smb.framing import ChannelClosedError, IntegrityError
from jobsync.transport.smb.logon import Connector
from jobsync.transport.smb.operations import FileOps, Operation, Sizes, run_pipeline
from jobsync.transport.smb.wire import MalformedReplyError

WINDOW = 64  # compounds in flight per connection
CREDITS_WANTED = 512  # the channel keeps about this many requests' worth of credits
IDLE_CHECK_SECONDS = 60.0  # a connection idle this long is checked (ECHO) before it is reused
# How long a request the server answered STATUS_PENDING may take before jobsync cancels it:
# longer than the 35 s a Windows or Samba server waits for another client to let go of a file.
PENDING_LIMIT_SECONDS = 60.0
_BROKEN = (ChannelClosedError, IntegrityError, MalformedReplyError, OSError)


class SmbPeer:
    """A jobs folder on an SMB share."""

    def __init__(self, config: PeerConfig, unc: UncPath, *, timeout: float) -> None:
        """Connect to ``unc`` and log on; raises a :class:`PeerError` naming the peer if not."""
        self.name = config.name
        self._config = config
        self._unc = unc
        self._timeout = timeout
        self._connector: Connector | None = None
        self._channel: Channel | None = None
        self._broken: PeerError | None = None
        self._renew = False  # the server ended the session: log on again at the next call
        self._lock = threading.Lock()  # guards _connector against abort() from other threads
        self._last_used = time.monotonic()
        self._ops = FileOps(
            self.name, self._unc.folder, sizes=self._sizes, pending_limit=PENDING_LIMIT_SECONDS
        )
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
        reply = self._run([self._ops.open_dir_op("")])[0]
        if not reply.ok:
            raise PeerPathError(
                f"peer {self.name}: folder {self._unc} cannot be opened: {self._ops.text(reply)}"
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
            return run_pipeline(channel, operations, window=WINDOW)
        except SessionLostError as exc:
            # Not broken: the next call logs on again, as a Windows client does.
            self._renew = True
            raise PeerSessionLostError(f"peer {self.name}: {exc}; logging on again") from exc
        except (*_BROKEN, TimeoutError) as exc:
            raise self._lost(exc, "waiting for an answer") from exc
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

    def _sizes(self) -> Sizes:
        channel = self._channel
        if channel is None:
            raise PeerUnreachableError(f"peer {self.name}: not connected")
        return Sizes.of(channel)

    # -- the Peer interface -------------------------------------------------------------------

    def list_files(self, folder: str = "") -> list[RemoteFile]:
        """The regular files directly in ``folder``; none when it does not exist."""
        result = self._run([self._ops.list_op(self._ops.path(folder))])[0]
        if isinstance(result, PeerIOError):
            raise result
        return [
            # FILETIMEs are whole 100 ns steps already: no coarse_mtime() needed per entry.
            RemoteFile(e.name, e.size, e.mtime_ns)
            for e in result
            if not e.is_dir
        ]

    def read_files(self, paths: Sequence[str]) -> Mapping[str, bytes | PeerIOError]:
        """The content of each path, read in parallel compounds."""
        results = self._run([self._ops.read_op(p) for p in paths])
        return dict(zip(paths, results, strict=True))

    def write_files(self, writes: Sequence[FileWrite]) -> list[WriteOutcome]:
        """Write each file under its temp name, read it back, and rename it over the target."""
        return self._run([self._ops.write_op(w) for w in writes])

    def move_files(self, moves: Sequence[tuple[str, str]]) -> Mapping[str, PeerIOError | None]:
        """Rename each ``(src, dst)``, refusing to replace an existing ``dst``."""
        results = self._run([self._ops.move_op(src, dst) for src, dst in moves])
        return dict(zip((src for src, _ in moves), results, strict=True))

    def remove_files(self, paths: Sequence[str]) -> Mapping[str, PeerIOError | None]:
        """Delete each path; one already gone counts as removed."""
        results = self._run([self._ops.remove_op(p) for p in paths])
        return dict(zip(paths, results, strict=True))

    def new_file_permissions(self, paths: Sequence[str]) -> Mapping[str, bytes | None]:
        """The security descriptor (owner, group, access list) a new file at each path gets."""
        results = self._run([self._ops.permissions_op(p) for p in paths])
        return dict(zip(paths, results, strict=True))

    def free_bytes(self) -> int:
        """The free space the logged-on account may use where the jobs folder is."""
        result = self._run([self._ops.free_bytes_op()])[0]
        if isinstance(result, PeerIOError):
            raise result
        return int(result)

    def make_dirs(self, folder: str) -> None:
        """Create ``folder`` and its parents when missing."""
        parts = checked_parts(folder)
        for depth in range(1, len(parts) + 1):
            op = self._ops.open_dir_op("/".join(parts[:depth]), make=True)
            reply = self._run([op])[0]
            if not reply.ok:
                raise PeerIOError(
                    f"peer {self.name}: cannot create {folder}: {self._ops.text(reply)}"
                )
