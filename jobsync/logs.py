"""Logging, set up once by the entry point: secrets kept out, Event Viewer told.

Keeping secrets out of everything jobsync prints or logs, and making it printable.

Logging set-up, done once by the CLI entry point and nowhere else.
structlog renders for people on a terminal and as JSON lines with ``--log-json``; ``--log-file``
appends the same events to a file. On stderr a one-shot command shows warnings and errors
only (it prints its own summary), unless ``-v`` or ``--log-json`` asks for every event; the
agent writes its routine (INFO) events to stdout and its warnings and errors to stderr, so a
service's ``err.log`` holds what went wrong. The log file always gets INFO and up (DEBUG with
``-v``); on Windows the events an administrator must see also go to the Application log
(:mod:`jobsync.logs`).
The SMB and authentication libraries log through the
standard library: they are pinned to WARNING at every verbosity (they log user names at INFO
and raw messages at DEBUG), and their tracebacks are cut to one line. Every known secret is
replaced by ``***`` in every event, whoever logged it.

The events an administrator must see in Event Viewer, under the ``jobsync`` source.
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
import os
import sys
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

MIN_SECRET_LENGTH = 4  # shorter values would blank out ordinary words


class Redactor:
    """A processor that replaces every registered secret with ``***``."""

    def __init__(self) -> None:
        """Start with no secrets."""
        self._secrets: tuple[str, ...] = ()

    def add(self, secrets: Iterable[str]) -> None:
        """Register more secrets, longest first so overlapping ones are hidden whole."""
        merged = {*self._secrets, *(s for s in secrets if len(s) >= MIN_SECRET_LENGTH)}
        self._secrets = tuple(sorted(merged, key=len, reverse=True))

    def text(self, value: str) -> str:
        """``value`` with every secret hidden."""
        for secret in self._secrets:
            value = value.replace(secret, "***")
        return value

    def __call__(
        self,
        _logger: Any,  # noqa: ANN401 - structlog's processor signature
        _name: str,
        event: MutableMapping[str, Any],
    ) -> MutableMapping[str, Any]:
        """Hide secrets in every string value of the event."""
        if not self._secrets:
            return event
        for key, value in event.items():
            if isinstance(value, str):
                event[key] = self.text(value)
            elif not isinstance(value, (int, float, bool)) and value is not None:
                event[key] = self.text(str(value))
        return event


REDACTOR = Redactor()


def printable(text: str) -> str:
    r"""``text`` safe to print: bytes a file name held that are not UTF-8 show as ``\xNN``."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def secrets_hidden(value: str) -> str:
    """Text for the user: every registered secret hidden, every character printable."""
    return printable(REDACTOR.text(value))


def _without_rich() -> bool:
    """Hide rich while structlog loads; whether it was hidden (see below)."""
    if "structlog" in sys.modules or "rich" in sys.modules:
        return False
    sys.modules["rich"] = None  # type: ignore[assignment] # `import rich` now fails at once
    return True


# structlog's dev module imports rich's traceback machinery when rich is installed (tens of
# milliseconds at every start), for tracebacks jobsync never renders with it (see _plain).
# Every module of jobsync takes its logger from here, so structlog is first loaded here.
_HIDDEN = _without_rich()
try:
    import structlog
    from structlog.typing import EventDict, Processor, WrappedLogger
finally:
    if _HIDDEN:
        del sys.modules["rich"]


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """The logger of module ``name``, typed as the stdlib-bound logger :func:`configure` sets."""
    return structlog.stdlib.get_logger(name)


LIBRARY_LOGGERS = ("smbprotocol", "smbclient", "spnego")


def _printable_values(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = printable(value)
    return event


def _one_line_errors(verbose: bool) -> Processor:
    """Turn attached exceptions into one ``error`` line unless debugging."""

    def processor(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
        exc_info = event.get("exc_info")
        if exc_info and not verbose:
            event.pop("exc_info", None)
            exc = exc_info[1] if isinstance(exc_info, tuple) else sys.exc_info()[1]
            if exc is not None:
                event.setdefault("error", f"{type(exc).__name__}: {exc}")
        return event

    return processor


def configure_logging(
    *,
    verbose: bool = False,
    json_lines: bool = False,
    log_file: Path | None = None,
    secrets: Iterable[str] = (),
    console: int = logging.WARNING,
    event_log: logging.Handler | None = None,
) -> None:
    """Route structlog and the standard library to stderr (and ``log_file``).

    The agent (``console`` below WARNING) writes its routine events to stdout and its warnings
    and errors to stderr, so a service's error log holds errors. On Windows the events of
    :mod:`jobsync.logs` also go to the Application log (``event_log`` replaces
    that handler in tests).
    """
    REDACTOR.add(secrets)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _one_line_errors(verbose),
        REDACTOR,
        _printable_values,
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )

    def formatter(*, colors: bool) -> logging.Formatter:
        renderer: Processor = (
            structlog.processors.JSONRenderer()
            if json_lines
            else structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=_plain)
        )
        return structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )

    level = logging.DEBUG if verbose else logging.INFO
    handlers: list[logging.Handler] = []
    colors = sys.stderr.isatty() and "NO_COLOR" not in os.environ
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(formatter(colors=colors))
    stream.setLevel(level if verbose or json_lines else max(console, level))
    if console < logging.WARNING and not json_lines:
        routine = logging.StreamHandler(sys.stdout)
        routine.setFormatter(formatter(colors=colors))
        routine.setLevel(stream.level)
        routine.addFilter(lambda record: record.levelno < logging.WARNING)
        stream.setLevel(logging.WARNING)
        handlers.append(routine)
    handlers.append(stream)
    event_log = event_log or _windows_event_log()
    if event_log is not None:
        handlers.append(event_log)
    if log_file is not None:
        file_handler = logging.FileHandler(log_file, mode="a", encoding="utf-8")
        file_handler.setFormatter(formatter(colors=False))
        file_handler.setLevel(level)
        handlers.append(file_handler)
        _private(log_file)

    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()  # a previous --log-file handler holds the file open
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _windows_event_log() -> logging.Handler | None:
    """The Application log's handler on Windows, else None."""
    if sys.platform != "win32":
        return None
    report = windows_report()
    return EventLogHandler(report) if report is not None else None


def _plain(sio: Any, exc_info: Any) -> None:  # noqa: ANN401 - structlog's formatter signature
    """Exception formatter for -v: the full traceback, without colour codes."""
    import traceback

    sio.write("\n" + "".join(traceback.format_exception(*exc_info)))


def _private(path: Path) -> None:
    """Keep a log file out of other users' reach (it may name hosts and accounts)."""
    try:
        path.chmod(0o600)
    except OSError:
        logging.getLogger(__name__).warning("cannot restrict permissions of %s", path)


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
    import ctypes
    from ctypes import wintypes

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
