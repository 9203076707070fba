r"""Folder paths in ``jobsync.toml``: UNC paths of SMB peers and local folders.

A UNC path names the host, the share and the folder inside it (``\\host\share\folder``); a path
that stops at the share is refused unless the peer says so (``share_root = true``), because a
typo for ``\\node2\integrify$\app\...\jobs`` would otherwise write jobs into the root of the
install share.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path, PureWindowsPath

from jobsync.config.model import UncPath
from jobsync.config.reader import shown
from jobsync.errors import ConfigError
from jobsync.names import windows_name_problem

Fail = Callable[[str], ConfigError]


def _default_fail(message: str) -> ConfigError:
    return ConfigError(message)


def parse_unc(text: str, *, fail: Fail = _default_fail) -> UncPath | None:
    r"""Parse ``\\host\share\rest`` or ``//host/share/rest``; ``None`` when not a UNC path.

    ``.``, ``..`` and empty components are refused *before* any normalisation, which would
    otherwise quietly turn ``\\srv\share\..\..\x`` into ``\\srv\share\x``.
    """
    if not (text.startswith(("\\\\", "//"))):
        return None
    body = text.replace("/", "\\")
    if body.upper().startswith("\\\\?\\UNC\\"):
        body = "\\\\" + body[len("\\\\?\\UNC\\") :]
    if body.startswith(("\\\\.\\", "\\\\?\\")):
        raise fail(f"path {shown(text)} is a device path, not a share")
    parts = body[2:].split("\\")
    if len(parts) > 2 and parts[-1] == "":  # noqa: PLR2004 - host and share come first
        parts.pop()  # one trailing separator is harmless
    if len(parts) < 2:  # noqa: PLR2004
        raise fail(f"path {shown(text)} names no share: use \\\\host\\share\\folder")
    for part in parts:
        if part in ("", ".", ".."):
            raise fail(f"path {shown(text)} has an empty, '.' or '..' component")
        problem = windows_name_problem(part.rstrip("$"))
        if problem is not None:
            raise fail(
                f"path {shown(text)}: component {shown(part)} is not a valid Windows name: "
                f"{problem}"
            )
    return UncPath(host=parts[0], share=parts[1], folder="\\".join(parts[2:]))


def local_folder(text: str, *, base: Path | None, fail: Fail = _default_fail) -> Path:
    """A local folder path; relative ones are taken from ``base`` (refused without one)."""
    if not text.strip():
        raise fail("path must not be empty")
    parts = PureWindowsPath(text).parts if "\\" in text else Path(text).parts
    if ".." in parts:
        raise fail(f"path {shown(text)} has a '..' component")
    candidate = Path(text)
    if not candidate.is_absolute():
        if base is None:
            raise fail(f"path {shown(text)} must be absolute (or a \\\\host\\share UNC path)")
        candidate = base / candidate
    return candidate


def same_folder(a: Path, b: Path) -> bool:
    """Whether two paths are one folder (as far as resolving them can tell)."""
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
