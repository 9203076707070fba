"""What ``jobsync check`` found for each peer."""

from __future__ import annotations

from dataclasses import dataclass

from jobsync.errors import ExitCode
from jobsync.identity import Identity


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """Whether jobsync can work with one peer."""

    peer: str
    location: str
    ok: bool
    detail: str
    seconds: float = 0.0
    identity: Identity | None = None  # whose folder it is, by its node.json

    @property
    def exit_code(self) -> ExitCode:
        """0 when the peer can take a push, 3 when it cannot."""
        return ExitCode.OK if self.ok else ExitCode.PEER_FAILED
