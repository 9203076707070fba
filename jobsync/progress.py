"""A progress bar on stderr for long pushes, shown only on a terminal (rich, loaded then)."""

from __future__ import annotations

import sys
import threading
from typing import Any


class ProgressBar:
    """A progress bar on stderr for long pushes, shown only on a terminal."""

    THRESHOLD = 200  # files; shorter pushes finish before a bar helps

    def __init__(self) -> None:
        """Nothing shown until a peer reports a long push."""
        self._lock = threading.Lock()
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}

    def __call__(self, peer: str, done: int, total: int) -> None:
        """``done`` of ``total`` jobs sent to ``peer``."""
        if total < self.THRESHOLD:
            return
        with self._lock:
            if self._bar is None:
                from rich.console import Console  # noqa: PLC0415
                from rich.progress import Progress  # noqa: PLC0415

                self._bar = Progress(console=Console(stderr=True), transient=True)
                self._bar.start()
            if peer not in self._tasks:
                self._tasks[peer] = self._bar.add_task(peer, total=total)
            self._bar.update(self._tasks[peer], completed=done)

    def close(self) -> None:
        """Take the bar off the terminal."""
        with self._lock:
            if self._bar is not None:
                self._bar.stop()


def progress_bar() -> ProgressBar | None:
    """A progress bar for a push, when a person watches stderr."""
    return ProgressBar() if sys.stderr.isatty() else None
