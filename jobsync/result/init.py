"""What ``jobsync init`` found and did on one node."""

from __future__ import annotations

from dataclasses import dataclass

from jobsync.errors import ExitCode
from jobsync.result.takeover import TakeoverResult


@dataclass(frozen=True, kw_only=True)
class InitResult:
    """A node's install step: its identity recorded, and on the services node its ownership."""

    node: str
    host: str
    install: str
    role: str  # "active" or "standby", as [active] (or --as-services-node) says
    role_reason: str
    overridden: bool = False
    clash: str | None = None  # another machine goes by this node's name: nothing was done
    owned_since: int | None = None  # the epoch this node already owned the jobs in
    claimed: TakeoverResult | None = None  # the first takeover that made this node the owner
    refused: str | None = None  # why the claim was not made (the agent holds the work lock)
    dry_run: bool = False

    @property
    def exit_code(self) -> ExitCode:
        """0 done (or nothing to do), 3 some peer not reached, 4 refused."""
        if self.clash is not None or self.refused is not None:
            return ExitCode.REFUSED
        return self.claimed.exit_code if self.claimed is not None else ExitCode.OK
