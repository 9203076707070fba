"""What a push did, per peer and in all."""

from __future__ import annotations

from dataclasses import dataclass

from jobsync.errors import ExitCode
from jobsync.result.codes import worst
from jobsync.source import SkippedFile


@dataclass(frozen=True)
class FileFailure:
    """One file that could not be handled on a peer, and why."""

    file: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class PeerResult:
    """The outcome of one push to one peer."""

    peer: str
    copied: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    backed_up: tuple[str, ...] = ()
    unchanged: int = 0
    failed: tuple[FileFailure, ...] = ()
    error: str | None = None  # the peer as a whole failed
    refused: str | None = None  # something was held back for safety
    seconds: float = 0.0
    pruned: tuple[str, ...] = ()  # kept copies removed for age (paths under .jobsync/)
    logons: int = 0  # times the peer was logged on again because the server ended the session

    @property
    def exit_code(self) -> ExitCode:
        """The exit code this peer alone would give."""
        if self.refused:
            return ExitCode.REFUSED
        if self.error or self.failed:
            return ExitCode.PEER_FAILED
        return ExitCode.OK

    @property
    def status(self) -> str:
        """``ok``, ``failed`` or ``refused``."""
        return {ExitCode.REFUSED: "refused", ExitCode.PEER_FAILED: "failed"}.get(
            self.exit_code, "ok"
        )


@dataclass(frozen=True, kw_only=True)
class PushResult:
    """The outcome of one push to every peer."""

    node: str
    source_files: int
    peers: tuple[PeerResult, ...]
    skipped: tuple[SkippedFile, ...] = ()
    dry_run: bool = False
    seconds: float = 0.0
    pruned_local: tuple[str, ...] = ()  # kept copies removed for age from the source's .jobsync

    @property
    def exit_code(self) -> ExitCode:
        """The highest code any peer gives: refusals outrank failures, failures outrank success.

        Jobs whose names differ only in case were pushed nowhere: that is a failure too.
        """
        collided = ExitCode.PEER_FAILED if any(s.collision for s in self.skipped) else ExitCode.OK
        return worst([collided, *(p.exit_code for p in self.peers)])
