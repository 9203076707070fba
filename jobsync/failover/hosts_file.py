r"""The services name's line in a Windows hosts file (``System32\drivers\etc\hosts``): pure text.

jobsync owns one line, marked so that a person reading the file knows who wrote it. Any other
line that maps the services name would win or lose against it depending on its place in the
file, so it is commented out (never deleted: the text stays, and the whole file is kept in
backup before it is written). Everything else is left byte for byte as it was; the file is
written back with Windows line ends.
"""

from __future__ import annotations

from dataclasses import dataclass

MARK = "# jobsync: the services name (jobsync failover)"
SET_ASIDE = "# jobsync set this aside: "
_NEWLINE = "\r\n"
# The hosts file is read by Windows in the system's ANSI code page; latin-1 round-trips any byte.
_ENCODING = "latin-1"


@dataclass(frozen=True)
class HostsEdit:
    """The file with the services name pointing at ``address``, and what that changed."""

    data: bytes
    changed: bool
    previous: tuple[str, ...]  # the addresses the name had in this file before (in file order)
    set_aside: int  # how many other lines for the name were commented out


def _names_on(line: str) -> tuple[str, list[str]] | None:
    """The address and names of an entry line, or ``None`` for a comment or a blank line."""
    entry = line.split("#", 1)[0].split()
    if len(entry) < 2:  # noqa: PLR2004 - an address and at least one name
        return None
    return entry[0], [n.rstrip(".").casefold() for n in entry[1:]]


def _lines(data: bytes) -> list[str]:
    """The file's lines, split at CR, LF or CRLF only.

    ``str.splitlines`` also splits at U+0085, which is a character of a comment in the ANSI
    code page (an ellipsis in Windows-1252): found by the property test.
    """
    return [line.decode(_ENCODING) for line in data.splitlines()]


def addresses_for(data: bytes, name: str) -> tuple[str, ...]:
    """The addresses the file maps ``name`` to, in file order (Windows takes the first)."""
    wanted = name.rstrip(".").casefold()
    found = []
    for line in _lines(data):
        entry = _names_on(line)
        if entry is not None and wanted in entry[1]:
            found.append(entry[0])
    return tuple(found)


def point_name(data: bytes, name: str, address: str) -> HostsEdit:
    """``data`` with one marked line ``address name`` and every other line for ``name`` aside."""
    wanted = name.rstrip(".").casefold()
    ours = f"{address} {name.rstrip('.')} {MARK}"
    lines = _lines(data)
    out: list[str] = []
    placed = False
    aside = 0
    for line in lines:
        entry = _names_on(line)
        if entry is None or wanted not in entry[1]:
            out.append(line)
            continue
        if line.rstrip().endswith(MARK):
            if not placed:
                out.append(ours)
                placed = True
            continue  # a second marked line (an interrupted edit by hand): one is enough
        out.append(SET_ASIDE + line)
        aside += 1
    if not placed:
        while out and not out[-1].strip():
            out.pop()
        out.append(ours)
    text = _NEWLINE.join(out) + _NEWLINE
    new = text.encode(_ENCODING)
    return HostsEdit(
        data=new,
        changed=new != data,
        previous=addresses_for(data, name),
        set_aside=aside,
    )
