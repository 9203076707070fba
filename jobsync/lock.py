"""One jobsync at work per node: the agent and the scheduled push never write at the same time.

A file lock in the state folder (``jobsync.lock``), taken through ``filelock``: the operating
system releases it when its holder dies, so a killed process never leaves a stale lock. The
agent holds it for as long as it runs; ``push``, ``reconcile --apply`` and ``takeover`` take it
for their run. A second comer waits briefly, then says who is at work.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

LOCK_FILE = "jobsync.lock"
HOLDER_FILE = "jobsync.lock.holder"
DEFAULT_WAIT_SECONDS = 10.0


class WorkLock:
    """The node-wide lock, with a note of who holds it."""

    def __init__(self, state_dir: Path, *, who: str) -> None:
        """Prepare the lock in ``state_dir`` for ``who`` (for example "jobsync push")."""
        self._dir = state_dir
        self._who = who
        self._lock = FileLock(str(state_dir / LOCK_FILE))

    def acquire(self, *, wait: float | None = None, stop: threading.Event | None = None) -> bool:
        """Take the lock within ``wait`` seconds (``stop`` ends the wait early); True if taken."""
        self._dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + (DEFAULT_WAIT_SECONDS if wait is None else wait)
        while True:
            try:
                self._lock.acquire(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
            except Timeout:
                if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                    return False
                continue
            self._note_holder()
            return True

    def release(self) -> None:
        """Give the lock back."""
        if self._lock.is_locked:
            self._lock.release()

    def holder(self) -> str:
        """Who holds the lock, as well as it is known."""
        try:
            note = json.loads((self._dir / HOLDER_FILE).read_text(encoding="utf-8"))
            return f"{note['who']} (pid {note['pid']}, since {note['since']})"
        except (OSError, ValueError, KeyError, TypeError):
            return "another jobsync process"

    def _note_holder(self) -> None:
        note = {
            "who": self._who,
            "pid": os.getpid(),
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        temp = self._dir / f".{HOLDER_FILE}.{os.getpid()}"
        temp.write_text(json.dumps(note), encoding="utf-8")
        temp.replace(self._dir / HOLDER_FILE)
