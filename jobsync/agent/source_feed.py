"""The source folder as the agent follows it: events, the index they keep, rescans.

Changes reach the agent through two callbacks: ``changed(names)`` when saved jobs have been
quiet for the debounce window, and ``rescanned(changed, reason)`` after each rescan. A source
folder that is missing or unreadable is reported (:attr:`SourceFeed.error`), never taken for
an empty folder: nothing is deleted on any peer meanwhile.

Following the source folder: watchdog events, coalesced per file over a quiet window.
Events only say "look at this name again"; what a file holds is decided by reading it once it
has been quiet for ``debounce`` seconds (and held still while read). The watcher can lose
events (a full inotify queue, a Windows buffer overflow): the agent's periodic rescan covers
that, and a watchdog warning or a dead observer thread triggers a rescan at once.

The agent's current view of the source folder, kept up to date by events and rescans.
A file whose size and write time have not changed since it was read is never read again, so a
rescan of an unchanged folder costs one listing. Snapshots are immutable and cached until the
next change, so every peer worker can take one at any time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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

from jobsync.agent.metrics import AgentMetrics
from jobsync.agent.view import EventRing
from jobsync.config.model import Config
from jobsync.errors import SourceError
from jobsync.jobs_folder import compile_pattern
from jobsync.logs import get_logger
from jobsync.scan import (
    SkippedFile,
    SourceFile,
    SourceScan,
    read_job,
    scan_source,
    split_collisions,
)

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


@dataclass(frozen=True)
class Refresh:
    """What one refresh changed, and which names must be looked at again later."""

    changed: bool
    unstable: frozenset[str] = frozenset()


class SourceIndex:
    """Every job of the source folder with its SHA-256; contents are read again when sent."""

    def __init__(self, folder: Path, pattern: str) -> None:
        """Start empty: call :meth:`rescan` before the first snapshot."""
        self._folder = folder
        self._pattern = pattern
        self._matcher = compile_pattern(pattern)
        self._lock = threading.Lock()
        self._files: dict[str, SourceFile] = {}
        self._skipped: dict[str, SkippedFile] = {}
        self._collided: frozenset[str] = frozenset()
        self._snapshot = SourceScan(folder=folder, files=())

    def matches(self, name: str) -> bool:
        """Whether ``name`` is a job name."""
        return bool(self._matcher.fullmatch(name))

    def snapshot(self) -> SourceScan:
        """The jobs as they are now (an immutable value)."""
        return self._snapshot

    def rescan(self) -> Refresh:
        """Re-list the whole folder; raises SourceError (changing nothing) if it is missing."""
        with self._lock:
            scan = scan_source(
                self._folder, self._pattern, previous=self._files, keep_content=False
            )
            files = {f.name: f for f in (*scan.files, *scan.collided)}
            changed = files != self._files
            self._files = files
            self._skipped = {s.name: s for s in scan.skipped if not s.collision}
            self._collided = frozenset(f.name for f in scan.collided)  # the scan warned of them
            if changed:
                self._publish()
            return Refresh(changed=changed)

    def refresh(self, names: Iterable[str]) -> Refresh:
        """Re-read some names after events; raises SourceError if the folder itself is gone."""
        unstable: set[str] = set()
        with self._lock:
            files = dict(self._files)
            for name in names:
                outcome = read_job(self._folder, name, keep_content=False)
                if outcome is None:
                    files.pop(name, None)
                elif isinstance(outcome, SourceFile):
                    files[name] = outcome
                else:
                    log.warning("source_file_skipped", file=name, reason=outcome.reason)
                    if "changing" in outcome.reason:
                        unstable.add(name)
            changed = files != self._files
            self._files = files
            if changed:
                self._publish()
        return Refresh(changed=changed, unstable=frozenset(unstable))

    def _publish(self) -> None:
        # Collisions are worked out again from every file read, as events add and remove names.
        files, collided, collisions = split_collisions(
            [self._files[name] for name in sorted(self._files)]
        )
        for skip in collisions:
            if skip.name not in self._collided:  # a rescan has already said so of the others
                log.warning("source_file_skipped", file=skip.name, reason=skip.reason)
        self._collided = frozenset(skip.name for skip in collisions)
        self._snapshot = SourceScan(
            folder=self._folder,
            files=files,
            skipped=(*self._skipped.values(), *collisions),
            collided=collided,
        )


class SourceFeed:
    """Keeps the index of the source current and says when it changed."""

    def __init__(
        self,
        config: Config,
        *,
        metrics: AgentMetrics,
        events: EventRing,
        changed: Callable[[set[str]], None],
        trouble: Callable[[str], None],
    ) -> None:
        """Prepare (not start) the watcher on ``config.source``."""
        self.index = SourceIndex(config.source, config.pattern)
        self._metrics = metrics
        self._events = events
        self._changed = changed
        self.error: str | None = None
        self._debouncer = Debouncer(config.watch.debounce_ms / 1000, self._settled)
        self._watcher = SourceWatcher(
            config.source,
            matches=self.index.matches,
            on_name=self._debouncer.touch,
            on_trouble=trouble,
        )

    def snapshot(self) -> SourceScan:
        """The newest view of the source."""
        return self.index.snapshot()

    def start(self) -> None:
        """Start the debouncer and the watcher (rescans keep working if the watcher cannot)."""
        self._debouncer.start()
        self._start_watcher()

    def stop(self) -> None:
        """Stop watching."""
        self._watcher.stop()
        self._debouncer.stop()

    def rescan(self, reason: str) -> bool | None:
        """Read the source again: whether anything changed (``None``: it cannot be read)."""
        self._metrics.rescans.inc()
        try:
            refresh = self.index.rescan()
        except SourceError as exc:
            self._problem(str(exc))
            return None
        self._problem(None)
        self._metrics.source_files.set(len(self.snapshot().files))
        if refresh.changed or reason != "periodic":
            found = "found changes" if refresh.changed else "found no change"
            self._events.add("rescan", f"rescanned the source ({reason}): {found}")
        return refresh.changed

    def check_watcher(self) -> bool:
        """Restart a watcher whose thread died; whether it had (then a rescan is due)."""
        if self._watcher.alive:
            return False
        self._metrics.watcher_restarts.inc()
        log.warning("watcher_restarted")
        self._events.add("restart", "the folder watcher had stopped and was restarted")
        self._watcher.stop()
        self._start_watcher()
        return True

    def _settled(self, names: set[str]) -> None:
        """Names that have been quiet for the debounce window: read them, say what changed."""
        try:
            refresh = self.index.refresh(names)
        except SourceError as exc:
            self._problem(str(exc))
            return
        for name in refresh.unstable:
            self._debouncer.touch(name)  # still being written: look again after another window
        if refresh.changed:
            self._metrics.source_files.set(len(self.snapshot().files))
            log.debug("source_changed", files=sorted(names))
            self._changed(names)

    def _problem(self, problem: str | None) -> None:
        if problem != self.error:
            if problem:
                log.error("source_unavailable", error=problem, action="nothing will be deleted")
                self._events.add("source", f"source folder unavailable: {problem}")
            else:
                log.info("source_available")
                self._events.add("rescan", "source folder available again")
        self.error = problem

    def _start_watcher(self) -> None:
        try:
            self._watcher.start()
        except OSError as exc:
            # One line for the operator: the reason says it all, a traceback would not help.
            log.error(  # noqa: TRY400
                "watcher_failed", error=str(exc), action="relying on rescans until it starts"
            )
