"""The one seam between jobsync and a peer's jobs folder.

Paths given to a peer are relative to its jobs folder and use ``/``; a transport refuses any
path that could leave that folder. Methods that act on many files answer per file, so one
refused file never hides the rest; losing the peer itself raises a :class:`PeerError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from jobsync.errors import PeerError, PeerIOError
from jobsync.jobs_folder import RemoteFile


@dataclass(frozen=True)
class FileWrite:
    """Put ``data`` at ``path`` atomically: written as ``temp``, verified, renamed in one step."""

    path: str
    temp: str
    data: bytes = field(repr=False)
    mtime_ns: int


@dataclass(frozen=True)
class WriteOutcome:
    """What became of one :class:`FileWrite`: the landed file, or why it did not land."""

    path: str
    landed: RemoteFile | None = None
    error: PeerError | None = None


class Peer(Protocol):
    """A peer's jobs folder, reached over SMB or as a local or mounted folder."""

    name: str

    @property
    def protection(self) -> str:
        """How the connection is protected, for operators (e.g. the SMB dialect and cipher)."""
        ...

    def list_files(self, folder: str = "") -> list[RemoteFile]:
        """The regular files directly in ``folder`` (``""`` is the jobs folder itself)."""
        ...

    def read_files(self, paths: Sequence[str]) -> Mapping[str, bytes | PeerIOError]:
        """The content of each path, or why it could not be read."""
        ...

    def write_files(self, writes: Sequence[FileWrite]) -> list[WriteOutcome]:
        """Write each file atomically and verified; one outcome per write, in order."""
        ...

    def move_files(self, moves: Sequence[tuple[str, str]]) -> Mapping[str, PeerIOError | None]:
        """Rename each ``(src, dst)``, never replacing an existing ``dst``."""
        ...

    def remove_files(self, paths: Sequence[str]) -> Mapping[str, PeerIOError | None]:
        """Delete each path (jobsync's own files only: temp files, expired kept copies)."""
        ...

    def new_file_permissions(self, paths: Sequence[str]) -> Mapping[str, bytes | None]:
        """The permissions a new file at each path gets, as the server encodes them.

        Each file is created and at once deleted. ``None`` where they cannot be read.
        """
        ...

    def free_bytes(self) -> int:
        """The free space this account may use on the folder's volume; raises a PeerError."""
        ...

    def make_dirs(self, folder: str) -> None:
        """Create ``folder`` and its parents when missing."""
        ...

    def close(self) -> None:
        """Release the connection; safe to call twice."""
        ...

    def abort(self) -> None:
        """Cut the connection at once, from any thread: calls under way fail fast."""
        ...


def checked_parts(path: str) -> list[str]:
    """Split a relative peer path, refusing anything that could leave the jobs folder."""
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", "..") or "\\" in part or ":" in part:
            raise PeerIOError(f"refusing path {path!r}: it would leave the jobs folder")
    return parts
