"""A peer that is a local or mounted folder (a mapped drive, an NFS or CIFS mount, the demo)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from jobsync.errors import PeerFileNotFoundError, PeerIOError, PeerUnreachableError
from jobsync.jobs_folder import RemoteFile, coarse_mtime
from jobsync.transport.base import FileWrite, WriteOutcome, checked_parts


class LocalPeer:
    """A jobs folder reached through the local file system."""

    def __init__(self, name: str, root: Path) -> None:
        """Use ``root`` as the peer's jobs folder, which must already exist."""
        self.name = name
        self._root = root
        if not root.is_dir():
            raise PeerUnreachableError(f"peer {name}: folder {root} does not exist")

    @property
    def protection(self) -> str:
        """A local or mounted folder: whatever the file system provides."""
        return "local folder"

    def _path(self, relative: str) -> Path:
        return self._root.joinpath(*checked_parts(relative)) if relative else self._root

    def list_files(self, folder: str = "") -> list[RemoteFile]:
        """The regular files directly in ``folder``."""
        try:
            entries = list(os.scandir(self._path(folder)))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise PeerUnreachableError(
                f"peer {self.name}: cannot list {folder or '.'}: {exc}"
            ) from exc
        files = []
        for entry in entries:
            with contextlib.suppress(OSError):  # vanished between listing and stat
                if entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    files.append(RemoteFile(entry.name, st.st_size, coarse_mtime(st.st_mtime_ns)))
        return files

    def read_files(self, paths: Sequence[str]) -> Mapping[str, bytes | PeerIOError]:
        """The content of each path."""
        result: dict[str, bytes | PeerIOError] = {}
        for path in paths:
            try:
                result[path] = self._path(path).read_bytes()
            except OSError as exc:
                result[path] = _io_error(self.name, path, exc)
        return result

    def write_files(self, writes: Sequence[FileWrite]) -> list[WriteOutcome]:
        """Write each file under its temp name, verify it, and rename it into place."""
        return [self._write_one(w) for w in writes]

    def _write_one(self, write: FileWrite) -> WriteOutcome:
        temp, target = self._path(write.temp), self._path(write.path)
        try:
            with temp.open("xb") as handle:
                handle.write(write.data)
                handle.flush()
                os.fsync(handle.fileno())
            os.utime(temp, ns=(write.mtime_ns, write.mtime_ns))
            if temp.read_bytes() != write.data:
                temp.unlink()
                return WriteOutcome(
                    write.path,
                    error=PeerIOError(
                        f"peer {self.name}: {write.path}: read-back did not match what was written"
                    ),
                )
            temp.replace(target)
            st = target.stat()
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            return WriteOutcome(write.path, error=_io_error(self.name, write.path, exc))
        return WriteOutcome(
            write.path, landed=RemoteFile(target.name, st.st_size, coarse_mtime(st.st_mtime_ns))
        )

    def move_files(self, moves: Sequence[tuple[str, str]]) -> Mapping[str, PeerIOError | None]:
        """Rename each ``(src, dst)`` without replacing an existing ``dst``."""
        result: dict[str, PeerIOError | None] = {}
        for src, dst in moves:
            try:
                _move_no_replace(self._path(src), self._path(dst))
                result[src] = None
            except OSError as exc:
                result[src] = _io_error(self.name, src, exc)
        return result

    def remove_files(self, paths: Sequence[str]) -> Mapping[str, PeerIOError | None]:
        """Delete each path."""
        result: dict[str, PeerIOError | None] = {}
        for path in paths:
            try:
                self._path(path).unlink()
                result[path] = None
            except FileNotFoundError:
                result[path] = None
            except OSError as exc:
                result[path] = _io_error(self.name, path, exc)
        return result

    def new_file_permissions(self, paths: Sequence[str]) -> Mapping[str, bytes | None]:
        """Not known: no portable way reads them, so jobs are written beside the jobs here."""
        return dict.fromkeys(paths)

    def free_bytes(self) -> int:
        """The free space on the folder's volume."""
        try:
            return shutil.disk_usage(self._root).free
        except OSError as exc:
            raise PeerUnreachableError(f"peer {self.name}: {exc}") from exc

    def make_dirs(self, folder: str) -> None:
        """Create ``folder`` and its parents."""
        try:
            self._path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PeerUnreachableError(f"peer {self.name}: cannot create {folder}: {exc}") from exc

    def close(self) -> None:
        """Nothing to release."""

    def abort(self) -> None:
        """Local calls never hang on a network: nothing to cut."""


def _move_no_replace(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target`` unless ``target`` exists."""
    try:
        # link + unlink refuses an existing target, which a plain rename would replace.
        os.link(source, target)
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        # File systems without hard links (FAT, some network mounts): check, then rename.
        if target.exists():
            raise FileExistsError(errno.EEXIST, "already exists", str(target)) from exc
        source.rename(target)
    else:
        source.unlink()


_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


def _io_error(peer: str, path: str, exc: OSError) -> PeerIOError:
    reason = {
        errno.ENOSPC: "disk full",
        errno.EACCES: "access denied",
        errno.EPERM: "access denied",
        errno.ENOENT: "not found",
        errno.EEXIST: "already exists",
    }.get(exc.errno or 0, exc.strerror or str(exc))
    kind = PeerFileNotFoundError if exc.errno == errno.ENOENT else PeerIOError
    return kind(f"peer {peer}: {path}: {reason}")
