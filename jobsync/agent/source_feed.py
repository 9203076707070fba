"""The source folder as the agent follows it: the index, the watcher and its debouncer, rescans.

Changes reach the agent through two callbacks: ``changed(names)`` when saved jobs have been
quiet for the debounce window, and ``rescanned(changed, reason)`` after each rescan. A source
folder that is missing or unreadable is reported (:attr:`SourceFeed.error`), never taken for
an empty folder: nothing is deleted on any peer meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable

from jobsync.agent.events import EventRing
from jobsync.agent.metrics import AgentMetrics
from jobsync.agent.source_index import SourceIndex
from jobsync.agent.watcher import Debouncer, SourceWatcher
from jobsync.config import Config
from jobsync.errors import SourceError
from jobsync.logs import get_logger
from jobsync.scan import SourceScan

log = get_logger(__name__)


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
