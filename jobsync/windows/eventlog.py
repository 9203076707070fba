"""The events an administrator must see in Event Viewer, under the ``jobsync`` source.

A write that failed, a role change, fencing, a takeover, a worker restarted: each such log event
is also reported to the Windows Application log with a stable event ID (the table below, also
in docs/windows.md), so that Event Viewer, a SCOM rule or a forwarded-events subscription can
follow jobsync without reading its log files. Routine events are not reported. The source is
registered by ``jobsync service install`` (PowerShell's ``New-EventLog``, whose message file
shows the text as written) and removed by ``jobsync service uninstall``.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

SOURCE = "jobsync"

# event -> (ID, what it means); the ID never changes once released.
EVENTS: Mapping[str, tuple[int, str]] = {
    "peer_failed": (2001, "a pass to a peer failed; the agent retries"),
    "file_failed": (2002, "one job could not be written, moved or removed on a peer"),
    "source_unavailable": (2003, "this node's jobs folder cannot be read"),
    "role_changed": (3001, "this node became the services node, or stopped being it"),
    "role_overridden": (3002, "a command acted as the services node on an operator's word"),
    "push_fenced": (4001, "a push was refused: another node owns the jobs"),
    "push_refused": (4002, "a peer was left alone: its manifest is a newer jobsync's"),
    "mass_delete_refused": (4003, "a push would have deleted most of a peer's jobs"),
    "node_name_clash": (4004, "two machines go by this node's name"),
    "took_over": (5001, "this node took over the jobs in a new epoch"),
    "takeover_without_majority": (5002, "a takeover reached no majority of the nodes"),
    "worker_restarted": (6001, "a peer's worker thread died and was restarted"),
    "worker_fault": (6002, "a peer's worker thread failed"),
    "watcher_restarted": (6003, "the watcher of the jobs folder was restarted"),
}
ERROR, WARNING, INFORMATION = 1, 2, 4  # EVENTLOG_*_TYPE
_HIDDEN_KEYS = ("event", "timestamp", "level", "logger")

Report = Callable[[int, int, str], None]  # (event ID, event type, text)


def event_text(event: Mapping[str, Any]) -> str:
    """The message shown in Event Viewer: the event's name, then its fields as key=value."""
    fields = " ".join(f"{k}={v}" for k, v in event.items() if k not in _HIDDEN_KEYS)
    return f"{event.get('event')}: {fields}" if fields else str(event.get("event"))


class EventLogHandler(logging.Handler):
    """Reports the events of :data:`EVENTS` through ``report``; ignores every other record."""

    def __init__(self, report: Report) -> None:
        """Report through ``report`` (on Windows: :func:`windows_report`)."""
        super().__init__(level=logging.INFO)
        self._report = report

    def emit(self, record: logging.LogRecord) -> None:
        """Report one record, if it is a structlog event of the table."""
        event = record.msg if isinstance(record.msg, dict) else None
        if event is None or event.get("event") not in EVENTS:
            return
        event_id, _ = EVENTS[event["event"]]
        kind = (
            ERROR
            if record.levelno >= logging.ERROR
            else WARNING
            if record.levelno >= logging.WARNING
            else INFORMATION
        )
        try:
            self._report(event_id, kind, event_text(event))
        except OSError:
            self.handleError(record)


@functools.cache
def windows_report(source: str = SOURCE) -> Report | None:
    """ReportEventW through the Windows API; None where there is none (not Windows)."""
    if sys.platform != "win32":
        return None
    import ctypes  # noqa: PLC0415 - Windows only
    from ctypes import wintypes  # noqa: PLC0415

    advapi = ctypes.WinDLL("advapi32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    advapi.RegisterEventSourceW.restype = wintypes.HANDLE
    advapi.RegisterEventSourceW.argtypes = (wintypes.LPCWSTR, wintypes.LPCWSTR)
    advapi.ReportEventW.argtypes = (
        wintypes.HANDLE,
        wintypes.WORD,
        wintypes.WORD,
        wintypes.DWORD,
        ctypes.c_void_p,
        wintypes.WORD,
        wintypes.DWORD,
        ctypes.POINTER(wintypes.LPCWSTR),
        ctypes.c_void_p,
    )
    handle = advapi.RegisterEventSourceW(None, source)
    if not handle:
        return None

    def report(event_id: int, kind: int, text: str) -> None:
        strings = (wintypes.LPCWSTR * 1)(text)
        if not advapi.ReportEventW(handle, kind, 0, event_id, None, 1, 0, strings, None):
            raise ctypes.WinError(ctypes.get_last_error())  # type: ignore[attr-defined,unused-ignore]

    return report


def register_commands(source: str = SOURCE) -> list[str]:
    """The PowerShell line that registers the source, once (``New-EventLog``)."""
    script = (
        f"if (-not [System.Diagnostics.EventLog]::SourceExists('{source}')) "
        f"{{ New-EventLog -LogName Application -Source '{source}' }}"
    )
    return ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", script]


def unregister_commands(source: str = SOURCE) -> list[str]:
    """The PowerShell line that removes the source, if it is there."""
    script = (
        f"if ([System.Diagnostics.EventLog]::SourceExists('{source}')) "
        f"{{ Remove-EventLog -Source '{source}' }}"
    )
    return ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", script]
