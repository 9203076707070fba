"""The agent's current view of the source folder, kept up to date by events and rescans.

A file whose size and write time have not changed since it was read is never read again, so a
rescan of an unchanged folder costs one listing. Snapshots are immutable and cached until the
next change, so every peer worker can take one at any time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from jobsync.logs import get_logger
from jobsync.names import compile_pattern
from jobsync.scan import (
    SkippedFile,
    SourceFile,
    SourceScan,
    read_job,
    scan_source,
    split_collisions,
)

log = get_logger(__name__)


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
