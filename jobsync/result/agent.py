"""What the agent holds, as one immutable value that the page, the state and status render.

The agent builds an :class:`AgentView` under its lock from what it already knows (no peer is
asked anything), so rendering it is cheap and needs no lock at all. The state file is the view
as JSON; ``jobsync status`` reads it back into a view (:func:`view_from_document`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


def iso(timestamp: float | None) -> str | None:
    """A Unix time as ISO 8601 UTC to the second; ``None`` stays ``None``."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Event:
    """One thing the agent did or saw; ``count`` > 1 when it happened again since ``first``."""

    at: float  # Unix time of the latest occurrence
    kind: str  # pass, trash, backup, failure, role, rescan, restart, source, retention
    text: str
    peer: str | None = None
    count: int = 1
    first: float = 0.0

    @property
    def problem(self) -> bool:
        """Whether an operator should look at it."""
        return self.kind in ("failure", "source", "restart")


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
    fenced: str | None = None  # why this node must not push (a newer owner), if it must not
    stalled: tuple[str, ...] = ()  # peers whose worker thread is not running (while it should)
    # where the Integrify services run, by the agent's last check (with [failover]): its verdict
    # ("one", "none", "several", "unknown"), the nodes seen running them, those not asked
    services_verdict: str | None = None
    services_on: tuple[str, ...] = ()
    services_unknown: tuple[str, ...] = ()


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
        "owner": view.owner,
        "owner_epoch": view.owner_epoch,
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


def view_from_document(document: Any) -> AgentView | None:  # noqa: ANN401 - parsed JSON
    """The view a state file holds, or ``None`` when it is not one (then ``status`` says so)."""
    if not isinstance(document, dict):
        return None
    try:
        source = document.get("source") or {}
        return AgentView(
            node=str(document["node"]),
            pid=int(document["pid"]),
            running=bool(document.get("running")),
            started=_seconds(document.get("started")) or 0.0,
            at=_seconds(document.get("updated")) or 0.0,
            role=str(document.get("role") or "starting"),
            role_reason=document.get("role_reason"),
            epoch=int(document.get("epoch") or 0),
            owner=str(document.get("owner") or ""),
            owner_epoch=int(document.get("owner_epoch") or 0),
            source_folder=str(source.get("folder") or ""),
            source_files=int(source.get("files") or 0),
            source_error=source.get("error"),
            peers=tuple(_peer_view(p) for p in document.get("peers") or ()),
            **_services(document.get("services_nodes")),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _services(doc: object) -> dict[str, Any]:
    """The agent's last check of where the services run, as the state file keeps it."""
    if not isinstance(doc, dict) or not doc.get("verdict"):
        return {}
    return {
        "services_verdict": str(doc["verdict"]),
        "services_on": tuple(str(n) for n in doc.get("nodes") or ()),
        "services_unknown": tuple(str(n) for n in doc.get("unknown") or ()),
    }


def _peer_view(doc: dict[str, Any]) -> PeerView:
    return PeerView(
        name=str(doc["name"]),
        location=str(doc.get("location") or ""),
        last_success=_seconds(doc.get("last_success")),
        last_attempt=_seconds(doc.get("last_attempt")),
        last_error=doc.get("last_error"),
        pending=int(doc.get("pending") or 0),
        pushed=int(doc.get("pushed") or 0),
        deleted=int(doc.get("deleted") or 0),
        backed_up=int(doc.get("backed_up") or 0),
        failed=int(doc.get("failed") or 0),
        pruned=int(doc.get("pruned") or 0),
    )


def _seconds(text: object) -> float | None:
    """A time the state file wrote (ISO 8601) as Unix time; ``None`` when absent."""
    if not isinstance(text, str) or not text:
        return None
    return datetime.fromisoformat(text).timestamp()
