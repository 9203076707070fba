"""What ``jobsync takeover`` saw and did."""

from __future__ import annotations

from dataclasses import dataclass

from jobsync.errors import ExitCode
from jobsync.result.push import FileFailure
from jobsync.takeover_plan import Action
from jobsync.versions import AFTER_EVERYTHING

__all__ = ["AFTER_EVERYTHING", "TakeoverResult"]


@dataclass(frozen=True, kw_only=True)
class TakeoverResult:
    """What a takeover saw and did."""

    node: str
    epoch: int
    previous_owner: str
    previous_epoch: int
    actions: tuple[Action, ...] = ()
    failed: tuple[FileFailure, ...] = ()
    unreachable: tuple[tuple[str, str], ...] = ()
    recorded_on: tuple[str, ...] = ()
    refused: str | None = None
    dry_run: bool = False
    reached: tuple[str, ...] = ()  # the nodes it saw, this one first
    cluster: int = 1  # the nodes of the cluster (this one and its configured peers)

    @property
    def majority(self) -> bool:
        """Whether it reached more than half of the cluster's nodes."""
        return 2 * len(self.reached) > self.cluster

    @property
    def exit_code(self) -> ExitCode:
        """0 when it is safe to start the services, 3 when something was not seen, 4 refused."""
        if self.refused:
            return ExitCode.REFUSED
        if self.unreachable or self.failed:
            return ExitCode.PEER_FAILED
        return ExitCode.OK
