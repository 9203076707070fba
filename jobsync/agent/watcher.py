"""Following the source folder: watchdog events, coalesced per file over a quiet window.

Events only say "look at this name again"; what a file holds is decided by reading it once it
has been quiet for ``debounce`` seconds (and held still while read). The watcher can lose
events (a full inotify queue, a Windows buffer overflow): the agent's periodic rescan covers
that, and a watchdog warning or a dead observer thread triggers a rescan at once.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from jobsync.logs import get_logger

log = get_logger(__name__)

# Opening or reading a file must not count: jobsync reads every job it sends.
WATCHED_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]


class Debouncer:
    """Hands a name on once no event has touched it for ``window`` seconds."""

    def __init__(
        self,
        window: float,
        on_settled: Callable[[set[str]], None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``on_settled`` runs on the debouncer's own thread."""
        self._window = window
        self._on_settled = on_settled
        self._clock = clock
        self._due: dict[str, float] = {}
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="debouncer", daemon=True)

    def start(self) -> None:
        """Start handing names on."""
        self._thread.start()

    def touch(self, name: str) -> None:
        """Note an event for ``name``: its quiet window starts again."""
        with self._cond:
            self._due[name] = self._clock() + self._window
            self._cond.notify()

    @property
    def waiting(self) -> int:
        """How many names are still within their quiet window."""
        with self._cond:
            return len(self._due)

    def stop(self) -> None:
        """Stop; names still waiting are dropped (the next start's full push covers them)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    now = self._clock()
                    settled = {n for n, due in self._due.items() if due <= now}
                    if settled:
                        for name in settled:
                            del self._due[name]
                        break
                    timeout = min(self._due.values()) - now if self._due else None
                    self._cond.wait(timeout)
                if self._stopping:
                    return
            try:
                self._on_settled(settled)
            except Exception:  # a bad batch must not kill the thread
                log.exception("settled_names_failed", names=sorted(settled))


class _Handler(FileSystemEventHandler):
    def __init__(
        self,
        folder: Path,
        matches: Callable[[str], bool],
        on_name: Callable[[str], None],
        on_trouble: Callable[[str], None],
    ) -> None:
        # The callbacks are the SourceWatcher's own, handed down as they came (hence the same
        # parameters). watchdog reports paths under the folder exactly as it was scheduled.
        self._folder = os.path.normcase(str(folder))
        self._matches = matches
        self._on_name = on_name
        self._on_trouble = on_trouble

    def on_any_event(self, event: FileSystemEvent) -> None:
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if not raw:
                continue
            path = Path(os.fsdecode(raw))
            if event.is_directory:
                if os.path.normcase(str(path)) == self._folder:
                    self._on_trouble("the source folder was removed or moved")
                continue
            # A rename is a delete of the old name plus a create of the new one.
            if os.path.normcase(str(path.parent)) == self._folder and self._matches(path.name):
                self._on_name(path.name)


class _TroubleAlarm(logging.Handler):
    """watchdog reports lost events (queue overflow) only as log warnings: rescan on them."""

    def __init__(self, on_trouble: Callable[[str], None]) -> None:
        super().__init__(level=logging.WARNING)
        self._on_trouble = on_trouble

    def emit(self, record: logging.LogRecord) -> None:
        self._on_trouble(f"watcher reported: {record.getMessage()}")


class SourceWatcher:
    """A watchdog observer on the source folder (not recursive) that can be restarted."""

    def __init__(
        self,
        folder: Path,
        *,
        matches: Callable[[str], bool],
        on_name: Callable[[str], None],
        on_trouble: Callable[[str], None],
    ) -> None:
        """Report matching names to ``on_name`` and lost events to ``on_trouble``."""
        self._folder = folder
        self._handler = _Handler(folder, matches, on_name, on_trouble)
        self._alarm = _TroubleAlarm(on_trouble)
        self._observer: Observer | None = None  # type: ignore[valid-type]

    def start(self) -> None:
        """Start observing; raises OSError if the folder cannot be watched."""
        logging.getLogger("watchdog").addHandler(self._alarm)
        observer = Observer()
        observer.schedule(
            self._handler, str(self._folder), recursive=False, event_filter=WATCHED_EVENTS
        )
        observer.daemon = True
        observer.start()
        self._observer = observer

    @property
    def alive(self) -> bool:
        """Whether the observer and its emitter threads are all running."""
        observer = self._observer
        if observer is None or not observer.is_alive():
            return False
        return all(emitter.is_alive() for emitter in observer.emitters)

    def stop(self) -> None:
        """Stop observing and wait for the observer's threads."""
        logging.getLogger("watchdog").removeHandler(self._alarm)
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive():
                observer.join(timeout=5)
