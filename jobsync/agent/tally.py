"""What the agent knows of one peer, pass after pass (mutable: guarded by the agent's lock)."""

from __future__ import annotations

from jobsync.result import PeerResult, PeerView
from jobsync.scan import SourceFile, SourceScan


class PeerTally:
    """Totals, the last success and error, and the snapshot the peer last matched."""

    def __init__(self, name: str, location: str) -> None:
        """Nothing known yet of peer ``name`` at ``location``."""
        self.name = name
        self.location = location
        self.last_success: float | None = None
        self.last_attempt: float | None = None
        self.last_error: str | None = None
        self.synced: SourceScan | None = None  # the snapshot the peer last matched
        self.pushed = self.deleted = self.failed = 0
        self.backed_up = self.pruned = 0

    def record(self, result: PeerResult, *, synced: SourceScan | None, now: float) -> None:
        """Count one pass; ``synced`` is the snapshot the peer now fully matches, if any."""
        self.last_attempt = now
        self.pushed += len(result.copied)
        self.deleted += len(result.deleted)
        self.failed += len(result.failed)
        self.backed_up += len(result.backed_up)
        self.pruned += len(result.pruned)
        if synced is not None:
            self.last_success, self.last_error = now, None
            self.synced = synced
        else:
            self.last_error = result.error or result.refused or _failures(result)

    def pending(self, snapshot: SourceScan) -> int:
        """Jobs that differ between ``snapshot`` and what the peer last fully matched."""
        if self.synced is None:
            return len(snapshot.files)
        if self.synced is snapshot:
            return 0  # the usual answer, without comparing every job
        current, synced = snapshot.by_key, self.synced.by_key
        changed = sum(1 for key, f in current.items() if _sha(synced.get(key)) != f.sha256)
        removed = sum(1 for key in synced if key not in current)
        return changed + removed

    def view(self, snapshot: SourceScan) -> PeerView:
        """The peer as an immutable value."""
        return PeerView(
            name=self.name,
            location=self.location,
            last_success=self.last_success,
            last_attempt=self.last_attempt,
            last_error=self.last_error,
            pending=self.pending(snapshot),
            pushed=self.pushed,
            deleted=self.deleted,
            backed_up=self.backed_up,
            failed=self.failed,
            pruned=self.pruned,
        )


def _sha(file: SourceFile | None) -> str | None:
    return None if file is None else file.sha256


def _failures(result: PeerResult) -> str | None:
    if not result.failed:
        return None
    first = result.failed[0]
    more = f" (and {len(result.failed) - 1} more)" if len(result.failed) > 1 else ""
    return f"{first.file}: {first.reason}{more}"
