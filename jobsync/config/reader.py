r"""Reading one TOML table key by key, and the folder paths in it.

Reading one TOML table key by key: types, empty values and leftover keys are refused.
Every refusal is one :class:`ConfigError` line that starts with where the key is (the file, and
the table or peer) and names the key. Values are shown as the administrator wrote them.

Folder paths in ``jobsync.toml``: UNC paths of SMB peers and local folders.
A UNC path names the host, the share and the folder inside it (``\\host\share\folder``); a path
that stops at the share is refused unless the peer says so (``share_root = true``), because a
typo for ``\\node2\integrify$\app\...\jobs`` would otherwise write jobs into the root of the
install share.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path, PureWindowsPath
from typing import Any, TypeVar, overload

from jobsync.config.model import UncPath
from jobsync.errors import ConfigError
from jobsync.jobs_folder import windows_name_problem

_T = TypeVar("_T")

_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}


def shown(text: str) -> str:
    r"""A value quoted for a message, backslashes as written (``'\\host'``, not ``'\\\\host'``)."""
    return f"'{text}'" if text.isprintable() else repr(text)


def type_name(kind: type) -> str:
    """How a message names a TOML type."""
    return _TYPE_NAMES.get(kind, kind.__name__)


class Table:
    """A TOML table being read key by key; leftover keys are errors."""

    def __init__(self, data: Mapping[str, Any], *, where: str) -> None:
        """Read ``data``; ``where`` starts every message (the file, then the table or peer)."""
        self._data = dict(data)
        self.where = where

    def fail(self, message: str) -> ConfigError:
        """The error for ``message`` about this table."""
        return ConfigError(f"{self.where}: {message}")

    def has(self, key: str) -> bool:
        """Whether the key is still to be read."""
        return key in self._data

    @overload
    def take(self, key: str, kind: type[_T]) -> _T | None: ...

    @overload
    def take(self, key: str, kind: type[_T], default: _T) -> _T: ...

    def take(self, key: str, kind: type[_T], default: _T | None = None) -> _T | None:
        """The value of ``key`` as ``kind``, or ``default`` when absent (typed as ``default``)."""
        if key not in self._data:
            return default
        value = self._data.pop(key)
        # bool is an int in Python, but never a valid number of seconds.
        if kind in (int, float) and isinstance(value, bool):
            raise self.fail(f"{key} must be a number, not {value!r}")
        if kind is float and isinstance(value, int):
            value = float(value)
        if not isinstance(value, kind):
            raise self.fail(f"{key} must be {type_name(kind)}, not {type_name(type(value))}")
        return value

    @overload
    def text(self, key: str) -> str | None: ...

    @overload
    def text(self, key: str, default: str) -> str: ...

    def text(self, key: str, default: str | None = None) -> str | None:
        """A string that must not be empty (or only spaces) when given: never guessed from."""
        value = self.take(key, str)
        if value is None:
            return default
        if not value.strip():
            raise self.fail(f"{key} must not be empty (leave the key out for its default)")
        return value

    def required_text(self, key: str) -> str:
        """A string that must be there and not be empty."""
        value = self.text(key)
        if value is None:
            raise self.fail(f"{key} is required")
        return value

    def positive(self, key: str, default: float) -> float:
        """A number of seconds (or a like amount) above zero."""
        value = self.take(key, float, default)
        if not math.isfinite(value) or value <= 0:
            raise self.fail(f"{key} must be a positive number")
        return value

    def whole(self, key: str, default: int, *, least: int) -> int:
        """A whole number of at least ``least``."""
        value = self.take(key, int, default)
        if value < least:
            raise self.fail(f"{key} must be a whole number, {least} or more")
        return value

    def port(self, key: str, default: int) -> int:
        """A TCP port: 1 to 65535 (0 is refused, never taken for the default)."""
        value = self.take(key, int, default)
        if not 0 < value < 65536:  # noqa: PLR2004 - the TCP port range
            raise self.fail(f"{key} must be between 1 and 65535, not {value}")
        return value

    def finish(self) -> None:
        """Refuse every key nobody read."""
        if self._data:
            keys = ", ".join(sorted(self._data))
            raise self.fail(f"unknown key{'s' if len(self._data) > 1 else ''}: {keys}")


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
