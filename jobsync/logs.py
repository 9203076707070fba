"""Logging set-up, done once by the CLI entry point and nowhere else.

structlog renders for people on a terminal and as JSON lines with ``--log-json``; ``--log-file``
appends the same events to a file. On stderr a one-shot command shows warnings and errors
only (it prints its own summary), unless ``-v`` or ``--log-json`` asks for every event; the
agent writes its routine (INFO) events to stdout and its warnings and errors to stderr, so a
service's ``err.log`` holds what went wrong. The log file always gets INFO and up (DEBUG with
``-v``); on Windows the events an administrator must see also go to the Application log
(:mod:`jobsync.windows.eventlog`).
The SMB and authentication libraries log through the
standard library: they are pinned to WARNING at every verbosity (they log user names at INFO
and raw messages at DEBUG), and their tracebacks are cut to one line. Every known secret is
replaced by ``***`` in every event, whoever logged it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jobsync.redact import REDACTOR, printable


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


def get_logger(name: str) -> Any:  # noqa: ANN401 - structlog's loggers are untyped proxies
    """The logger of module ``name``."""
    return structlog.get_logger(name)


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
    :mod:`jobsync.windows.eventlog` also go to the Application log (``event_log`` replaces
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
    from jobsync.windows.eventlog import EventLogHandler, windows_report  # noqa: PLC0415

    report = windows_report()
    return EventLogHandler(report) if report is not None else None


def _plain(sio: Any, exc_info: Any) -> None:  # noqa: ANN401 - structlog's formatter signature
    """Exception formatter for -v: the full traceback, without colour codes."""
    import traceback  # noqa: PLC0415 - only needed when debugging

    sio.write("\n" + "".join(traceback.format_exception(*exc_info)))


def _private(path: Path) -> None:
    """Keep a log file out of other users' reach (it may name hosts and accounts)."""
    try:
        path.chmod(0o600)
    except OSError:
        logging.getLogger(__name__).warning("cannot restrict permissions of %s", path)
