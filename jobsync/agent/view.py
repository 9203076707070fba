"""What the agent knows, as values: its peers, its recent events, and the view it publishes.

What the agent knows of one peer, pass after pass (mutable: guarded by the agent's lock).

What the agent holds, as one immutable value that the page, the state and status render.
The agent builds an :class:`AgentView` under its lock from what it already knows (no peer is
asked anything), so rendering it is cheap and needs no lock at all. The state file is the view
as JSON; ``jobsync status`` reads it back into a view (:func:`view_from_document`).

The state the agent leaves for ``jobsync status``: one JSON file, replaced atomically. The
last fleet check the services node ran (:class:`FleetLast`) is shown beside the view.

What the agent did lately, for the status page: a small ring of events kept in memory.
Only what an operator looks for goes in: passes that changed something, trash and backup,
failures, role changes, rescans that found something, restarts, source trouble and removals
of expired kept copies. A failure that repeats (a peer down, retried every minute) updates
its earlier event instead of pushing everything else out of the ring.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from jobsync.node import replace_atomically
from jobsync.result import FleetReport, PeerResult, iso
from jobsync.role import ROLE_NAMES, RoleName
from jobsync.scan import SourceFile, SourceScan

EventKind = Literal[
    "pass",
    "trash",
    "backup",
    "retention",
    "failure",
    "start",
    "clash",
    "role",
    "rescan",
    "restart",
    "source",
    "services",
]


@dataclass(frozen=True)
class Event:
    """One thing the agent did or saw; ``count`` > 1 when it happened again since ``first``."""

    at: float  # Unix time of the latest occurrence
    kind: EventKind
    text: str
    peer: str | None = None
    count: int = 1
    first: float = 0.0

    @property
    def problem(self) -> bool:
        """Whether an operator should look at it."""
        return self.kind in ("failure", "source", "restart")


RING_SIZE = 200
MERGE_WINDOW = 20  # a repeat of one of the last this many events updates it instead
NAMES_SHOWN = 3  # a pass that touched more jobs names the first few and counts the rest


class EventRing:
    """The most recent events, newest last; safe to use from any thread."""

    def __init__(self, size: int = RING_SIZE) -> None:
        """Keep at most ``size`` events."""
        self._events: deque[Event] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(
        self, kind: EventKind, text: str, *, peer: str | None = None, at: float | None = None
    ) -> None:
        """Record an event (a repeat of a recent identical one only updates it)."""
        now = time.time() if at is None else at
        with self._lock:
            recent = list(self._events)[-MERGE_WINDOW:]
            for old in reversed(recent):
                if (old.kind, old.peer, old.text) == (kind, peer, text):
                    self._events.remove(old)
                    self._events.append(replace(old, at=now, count=old.count + 1))
                    return
            self._events.append(Event(at=now, kind=kind, text=text, peer=peer, first=now))

    def recent(self, limit: int = RING_SIZE) -> tuple[Event, ...]:
        """Up to ``limit`` events, newest first."""
        with self._lock:
            events = list(self._events)
        return tuple(reversed(events[-limit:]))

    def record_pass(self, result: PeerResult) -> None:
        """Record what one pass over a peer changed or why it failed; quiet passes are not kept."""
        peer = result.peer
        if result.copied:
            self.add("pass", f"copied {_jobs(result.copied)}", peer=peer)
        if result.deleted:
            self.add("trash", f"moved {_jobs(result.deleted)} to .jobsync/trash", peer=peer)
        if result.backed_up:
            self.add("backup", f"kept {_jobs(result.backed_up)} in .jobsync/backup", peer=peer)
        if result.pruned:
            self.add("retention", pruned_text(result.pruned), peer=peer)
        if result.error:
            self.add("failure", f"pass failed: {result.error}", peer=peer)
        if result.failed:
            first = result.failed[0]
            more = f" and {len(result.failed) - 1} more" if len(result.failed) > 1 else ""
            self.add("failure", f"{first.file}: {first.reason}{more}", peer=peer)
        if result.refused:
            self.add("failure", f"refused: {result.refused}", peer=peer)


def pruned_text(paths: Sequence[str]) -> str:
    """How an event names kept copies removed for their age."""
    count = len(paths)
    return f"removed {count} kept cop{'y' if count == 1 else 'ies'} past [retention]"


def _jobs(names: Sequence[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    more = f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
    return f"{len(names)} job{'' if len(names) == 1 else 's'} ({shown}{more})"


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
    role: RoleName
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


@dataclass(frozen=True)
class FleetLast:
    """The last fleet check: its report, and the last run's error if that run could not end."""

    every_minutes: float
    report: FleetReport | None = None  # the last check that ended (``None`` before any)
    error: str | None = None  # the last run raised: why (the report, if any, is older)
    at: float | None = None  # when the last run ended, with a report or an error (Unix time)

    def document(self, hide: Callable[[str], str] = str) -> dict[str, object]:
        """The short summary the state file keeps: when, the counts, the error."""
        report = self.report
        return {
            "checked": iso(None if report is None else report.at),
            "fail": None if report is None else report.count("FAIL"),
            "cannot_check": None if report is None else report.count("CANNOT CHECK"),
            "pass": None if report is None else report.count("PASS"),
            "error": None if self.error is None else hide(self.error),
        }


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
            role=_role(document.get("role") or "starting"),
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


def _role(value: object) -> RoleName:
    """A role as the state file says it; anything else is not a state file jobsync wrote."""
    for name in ROLE_NAMES:
        if value == name:
            return name
    raise ValueError(f"not a role: {value!r}")


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


STATE_FILE = "agent.json"


def state_path(state_dir: Path) -> Path:
    """Where the agent's state lives."""
    return state_dir / STATE_FILE


def write_state(path: Path, document: dict[str, Any]) -> None:
    """Replace the state file in one step: a reader sees the old state or the new, never half.

    Readable by monitoring, writable by the agent only.
    """
    replace_atomically(path, json.dumps(document, indent=1).encode("utf-8"), mode=0o644)


def read_state(path: Path) -> dict[str, Any] | None:
    """The last state an agent wrote, or ``None`` when none has run (or it is unreadable)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


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
