"""What the agent holds, as one immutable value: the status page and the state file render it.

The agent builds an :class:`AgentView` under its lock from what it already knows (no peer is
asked anything), so rendering it is cheap and needs no lock at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from jobsync.agent.events import Event


def iso(timestamp: float | None) -> str | None:
    """A Unix time as ISO 8601 UTC to the second; ``None`` stays ``None``."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True, kw_only=True)
class PeerView:
    """One peer as the agent knows it."""

    name: str
    location: str
    last_success: float | None = None  # Unix time of the last pass that left it fully in line
    last_attempt: float | None = None
    last_error: str | None = None
    pending: int = 0  # jobs that differ between the source and what the peer last received
    pushed: int = 0
    deleted: int = 0
    backed_up: int = 0
    failed: int = 0
    pruned: int = 0  # kept copies removed for their age

    def state(self, *, standby: bool) -> str:
        """The peer's state in a word or three."""
        if self.last_error:
            return "failing"
        if standby:
            return "not pushed (standby)"
        if self.last_attempt is None:
            return "no pass yet"
        return "up to date" if self.pending == 0 else "catching up"


@dataclass(frozen=True, kw_only=True)
class AgentView:
    """The agent at one moment."""

    node: str
    pid: int
    running: bool
    started: float
    at: float  # when this view was taken (Unix time)
    role: str  # "active", "standby", or "starting" before the first role check
    role_reason: str | None
    epoch: int  # the epoch this node pushes in (that of its last takeover; 0 before any)
    owner: str  # who owns the jobs by the local folder's manifest ("" when it names nobody)
    owner_epoch: int
    source_folder: str
    source_files: int
    source_error: str | None
    peers: tuple[PeerView, ...]
    events: tuple[Event, ...] = ()


def state_document(view: AgentView) -> dict[str, Any]:
    """The state file ``jobsync status`` reads, from a view."""
    return {
        "node": view.node,
        "pid": view.pid,
        "running": view.running,
        "started": iso(view.started),
        "updated": iso(view.at),
        "role": view.role,
        "role_reason": view.role_reason,
        "epoch": view.epoch,
        "source": {
            "folder": view.source_folder,
            "files": view.source_files,
            "error": view.source_error,
        },
        "peers": [
            {
                "name": p.name,
                "last_success": iso(p.last_success),
                "last_attempt": iso(p.last_attempt),
                "last_error": p.last_error,
                "pending": p.pending,
                "pushed": p.pushed,
                "deleted": p.deleted,
                "backed_up": p.backed_up,
                "failed": p.failed,
                "pruned": p.pruned,
            }
            for p in view.peers
        ],
    }
