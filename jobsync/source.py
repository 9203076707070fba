"""The source folder's jobs as plain values: what a scan found, and what it left out."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from jobsync.names import name_key


@dataclass(frozen=True, slots=True)  # slots: the agent keeps one per job
class SourceFile:
    """One job file as read from the source folder."""

    name: str
    size: int
    mtime_ns: int
    sha256: str
    # None when not kept (the agent reads a job again when it sends it, and checks the hash).
    content: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class SkippedFile:
    """A job file that was not read this time, and why."""

    name: str
    reason: str
    collision: bool = False  # its name differs only in case from another job's


@dataclass(frozen=True)
class SourceScan:
    """Everything read from the source folder in one pass."""

    folder: Path
    files: tuple[SourceFile, ...]
    skipped: tuple[SkippedFile, ...] = ()
    collided: tuple[SourceFile, ...] = ()  # read, but set aside: see split_collisions

    @cached_property
    def skipped_keys(self) -> frozenset[str]:
        """Name keys of every job not pushed this time: their peer copies are left alone."""
        return frozenset(name_key(s.name) for s in self.skipped)

    @property
    def by_name(self) -> dict[str, SourceFile]:
        """The files keyed by their exact name."""
        return {f.name: f for f in self.files}

    @cached_property
    def by_key(self) -> dict[str, SourceFile]:
        """The files keyed by name key (built once per scan: the agent looks names up often).

        Names that differ only in case are in ``collided``, never in ``files``.
        """
        return {name_key(f.name): f for f in self.files}
