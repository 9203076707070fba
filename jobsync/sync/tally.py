"""What one pass did, step after step, folded into its :class:`PeerResult` in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

from jobsync.result import FileFailure, PeerResult


@dataclass(frozen=True)
class Outcome:
    """What one step did: the files it handled, and those it could not handle and why."""

    done: tuple[str, ...] = ()
    failed: tuple[FileFailure, ...] = ()


@dataclass
class Tally:
    """The outcomes of a pass so far; :meth:`result` turns them into the peer's result."""

    copied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    backed_up: list[str] = field(default_factory=list)
    failed: list[FileFailure] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    pruned: tuple[str, ...] = ()
    unchanged: int = 0

    def add(self, step: str, outcome: Outcome) -> None:
        """Count the outcome of ``step``: ``copied``, ``deleted``, ``backed_up`` or ``failed``."""
        if step != "failed":
            getattr(self, step).extend(outcome.done)
        self.failed.extend(outcome.failed)

    def fail(self, failures: list[FileFailure]) -> None:
        """Files the pass could not handle before any step ran."""
        self.failed.extend(failures)

    def refuse(self, reason: str) -> None:
        """Something held back for safety."""
        self.refused.append(reason)

    def result(self, peer: str, *, error: str | None = None) -> PeerResult:
        """The peer's result, with the whole pass's ``error`` if it failed."""
        return PeerResult(
            peer=peer,
            copied=tuple(self.copied),
            deleted=tuple(self.deleted),
            backed_up=tuple(self.backed_up),
            unchanged=self.unchanged,
            failed=tuple(self.failed),
            error=error,
            refused="; ".join(self.refused) or None,
            pruned=self.pruned,
        )
