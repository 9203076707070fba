"""What the agent knows of its peers, and the one immutable view of it that it publishes.

What the agent knows of its peers, kept as passes report, and the views it makes of it.
Workers report each pass here (from their own threads); the health check, the status page and
the state file read views of it (:class:`~jobsync.agent.view.AgentView`), built under one lock
from what the agent already holds: no peer is asked anything. :mod:`~jobsync.agent.health`
judges them.

What the agent knows of one peer, pass after pass (mutable: guarded by the agent's lock).

What the agent holds, as one immutable value that the page, the state and status render.
The agent builds an :class:`AgentView` under its lock from what it already knows (no peer is
asked anything), so rendering it is cheap and needs no lock at all. The state file is the view
as JSON; ``jobsync status`` reads it back into a view (:func:`view_from_document`).

The state the agent leaves for ``jobsync status``: one JSON file, replaced atomically.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from jobsync.config.model import Config
from jobsync.epoch import LocalFence
from jobsync.logs import get_logger
from jobsync.node import replace_atomically
from jobsync.result import PeerResult
from jobsync.role import ROLE_NAMES, Role, RoleName
from jobsync.scan import SourceFile, SourceScan

if TYPE_CHECKING:
    from jobsync.agent.metrics import AgentMetrics
    from jobsync.agent.page import EventRing


def iso(timestamp: float | None) -> str | None:
    """A Unix time as ISO 8601 UTC to the second; ``None`` stays ``None``."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


EventKind = Literal[
    "pass",
    "trash",
    "backup",
    "retention",
    "failure",
    "refused",
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


log = get_logger(__name__)


class Ledger:
    """Per-peer tallies, the event ring and the metrics, with the views made of them."""

    def __init__(
        self,
        config: Config,
        *,
        metrics: AgentMetrics,
        events: EventRing,
        fence: LocalFence,
        snapshot: Callable[[], SourceScan],
    ) -> None:
        """Nothing known yet of ``config``'s peers."""
        self._config = config
        self._metrics = metrics
        self._events = events
        self._fence = fence
        self._snapshot = snapshot
        self.started = time.time()
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()  # state files are written in the order views are taken
        self._tallies = {p.name: PeerTally(p.name, p.location) for p in config.target_peers}
        self._state_path = state_path(config.state_dir)
        metrics.add_peers(self._tallies)
        metrics.watch_lag(self.lags)

    def record(self, result: PeerResult, *, synced: SourceScan | None) -> None:
        """Count one pass of a worker; ``synced``: the snapshot the peer now fully matches."""
        now = time.time()
        self._metrics.record(result, now=now)
        with self._lock:
            self._tallies[result.peer].record(result, synced=synced, now=now)
        self._events.record_pass(result)

    def view(
        self,
        role: Role,
        *,
        running: bool,
        source_error: str | None,
        stalled: tuple[str, ...] = (),
    ) -> AgentView:
        """What the agent holds now, as one value; ``stalled``: peers whose worker is down."""
        owner, snapshot = self._fence.manifest(), self._snapshot()
        fenced = self._fence.reason()
        with self._lock:
            peers = tuple(tally.view(snapshot) for tally in self._tallies.values())
        return AgentView(
            node=self._config.node,
            pid=os.getpid(),
            running=running,
            started=self.started,
            at=time.time(),
            role=role.name,
            role_reason=role.reason,
            epoch=self._fence.epoch(),
            owner=owner.owner,
            owner_epoch=owner.epoch,
            source_folder=str(self._config.source),
            source_files=len(snapshot.files),
            source_error=source_error,
            peers=peers,
            events=self._events.recent(),
            fenced=fenced,
            stalled=stalled,
        )

    def lags(self) -> dict[str, float]:
        """Seconds since each peer's last successful pass (since the start when none)."""
        now = time.time()
        with self._lock:
            return {n: now - (t.last_success or self.started) for n, t in self._tallies.items()}

    def save(
        self,
        make_view: Callable[[], AgentView],
        *,
        extra: Callable[[], Mapping[str, object]] = dict,
    ) -> None:
        """Write the state file from a fresh view (and keep the pending gauges with it).

        ``extra``: more top-level keys, from what the view does not hold (where the services run).
        """
        with self._save_lock:
            view = make_view()
            for peer in view.peers:
                self._metrics.pending.labels(peer.name).set(peer.pending)
            try:
                write_state(self._state_path, {**state_document(view), **extra()})
            except OSError as exc:
                log.warning("state_not_saved", path=str(self._state_path), error=str(exc))
