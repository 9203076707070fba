"""What the agent did lately, for the status page: a small ring of events kept in memory.

Only what an operator looks for goes in: passes that changed something, trash and backup,
failures, role changes, rescans that found something, restarts, source trouble and removals
of expired kept copies. A failure that repeats (a peer down, retried every minute) updates
its earlier event instead of pushing everything else out of the ring.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace

from jobsync.result import Event, PeerResult

RING_SIZE = 200
MERGE_WINDOW = 20  # a repeat of one of the last this many events updates it instead
NAMES_SHOWN = 3  # a pass that touched more jobs names the first few and counts the rest


class EventRing:
    """The most recent events, newest last; safe to use from any thread."""

    def __init__(self, size: int = RING_SIZE) -> None:
        """Keep at most ``size`` events."""
        self._events: deque[Event] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(
        self, kind: str, text: str, *, peer: str | None = None, at: float | None = None
    ) -> None:
        """Record an event (a repeat of a recent identical one only updates it)."""
        now = time.time() if at is None else at
        with self._lock:
            recent = list(self._events)[-MERGE_WINDOW:]
            for old in reversed(recent):
                if (old.kind, old.peer, old.text) == (kind, peer, text):
                    self._events.remove(old)
                    self._events.append(replace(old, at=now, count=old.count + 1))
                    return
            self._events.append(Event(at=now, kind=kind, text=text, peer=peer, first=now))

    def recent(self, limit: int = RING_SIZE) -> tuple[Event, ...]:
        """Up to ``limit`` events, newest first."""
        with self._lock:
            events = list(self._events)
        return tuple(reversed(events[-limit:]))

    def record_pass(self, result: PeerResult) -> None:
        """Record what one pass over a peer changed or why it failed; quiet passes are not kept."""
        peer = result.peer
        if result.copied:
            self.add("pass", f"copied {_jobs(result.copied)}", peer=peer)
        if result.deleted:
            self.add("trash", f"moved {_jobs(result.deleted)} to .jobsync/trash", peer=peer)
        if result.backed_up:
            self.add("backup", f"kept {_jobs(result.backed_up)} in .jobsync/backup", peer=peer)
        if result.pruned:
            self.add("retention", pruned_text(result.pruned), peer=peer)
        if result.error:
            self.add("failure", f"pass failed: {result.error}", peer=peer)
        if result.failed:
            first = result.failed[0]
            more = f" and {len(result.failed) - 1} more" if len(result.failed) > 1 else ""
            self.add("failure", f"{first.file}: {first.reason}{more}", peer=peer)
        if result.refused:
            self.add("failure", f"refused: {result.refused}", peer=peer)


def pruned_text(paths: Sequence[str]) -> str:
    """How an event names kept copies removed for their age."""
    count = len(paths)
    return f"removed {count} kept cop{'y' if count == 1 else 'ies'} past [retention]"


def _jobs(names: Sequence[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    more = f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
    return f"{len(names)} job{'' if len(names) == 1 else 's'} ({shown}{more})"
