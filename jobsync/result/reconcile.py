"""What ``jobsync reconcile`` found on each peer, and what ``--apply`` did about it."""

from __future__ import annotations

from dataclasses import dataclass

from jobsync.drift import Drift, Kind
from jobsync.errors import ExitCode
from jobsync.result.codes import worst
from jobsync.result.push import PeerResult

__all__ = ["Drift", "Kind", "PeerDrift", "ReconcileResult"]


@dataclass(frozen=True, kw_only=True)
class PeerDrift:
    """The drift found on one peer, and what ``--apply`` did about it."""

    peer: str
    reachable: bool
    error: str | None = None
    drift: tuple[Drift, ...] = ()
    manifest_problem: str | None = None
    applied: PeerResult | None = None

    @property
    def exit_code(self) -> ExitCode:
        """The code this peer alone would give."""
        if not self.reachable:
            return ExitCode.PEER_FAILED
        if self.applied is not None:
            # A collision is never repaired: only renaming a job at the source settles it.
            stuck = any(d.kind is Kind.COLLISION for d in self.drift)
            return worst([self.applied.exit_code, ExitCode.PEER_FAILED if stuck else ExitCode.OK])
        return ExitCode.DRIFT if self.drift else ExitCode.OK


@dataclass(frozen=True, kw_only=True)
class ReconcileResult:
    """Drift on every peer."""

    node: str
    source_files: int
    peers: tuple[PeerDrift, ...]
    applied: bool = False

    @property
    def in_sync(self) -> bool:
        """Every peer reachable and none drifted (before any repair)."""
        return all(p.reachable and not p.drift for p in self.peers)

    @property
    def exit_code(self) -> ExitCode:
        """The highest code of any peer."""
        return worst(p.exit_code for p in self.peers)
