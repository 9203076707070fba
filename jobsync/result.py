"""What a run did, as plain values, one class per command; rendering them is the CLI's job.

Every result knows its exit code; :func:`worst` is the one roll-up of the codes of its parts.
The last failover's result is also kept as a record in ``state_dir`` (:func:`record`), which
the agent's page and metrics read.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, get_args

from jobsync.errors import ExitCode, worst
from jobsync.jobs_folder import SkippedFile
from jobsync.node import Identity, replace_atomically
from jobsync.plan import Drift, Kind
from jobsync.versions import Action

PeerStatus = Literal["ok", "failed", "refused"]


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
    def status(self) -> PeerStatus:
        """``ok``, ``failed`` or ``refused``."""
        named: dict[ExitCode, PeerStatus] = {
            ExitCode.REFUSED: "refused",
            ExitCode.PEER_FAILED: "failed",
        }
        return named.get(self.exit_code, "ok")


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


@dataclass(frozen=True, kw_only=True)
class InitResult:
    """A node's install step: its identity recorded, and on the services node its ownership."""

    node: str
    host: str
    install: str
    role: Literal["active", "standby"]  # as [active] (or --as-services-node) says
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


def iso(timestamp: float | None) -> str | None:
    """A Unix time as ISO 8601 UTC to the second; ``None`` stays ``None``."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


Verdict = Literal["PASS", "FAIL", "CANNOT CHECK"]
# The report's items, in the vendor's order (README: which item proves which line of its page).
FleetItem = Literal[
    "node",
    "configuration",
    "shared folders",
    "accounts",
    "services",
    "services name",
    "jobs",
    "jobsync",
    "healthcheck",
    "balancer",
    "certificate",
    "sticky sessions",
    "forwarded proto",
]
FLEET_ITEMS: tuple[FleetItem, ...] = get_args(FleetItem)
FLEET = "fleet"  # the node of a line about the whole fleet
BALANCER = "balancer"  # the node of a line about the public URL


@dataclass(frozen=True)
class FleetLine:
    """One line of ``jobsync check --fleet``: an item, where, the verdict, the evidence."""

    item: FleetItem
    node: str  # a node's name, FLEET or BALANCER
    verdict: Verdict
    evidence: str
    next_step: str = ""  # what to do; empty for a PASS


@dataclass(frozen=True, kw_only=True)
class FleetReport:
    """Every line of one fleet check, in item order, then node order."""

    node: str  # where it ran
    lines: tuple[FleetLine, ...]
    at: float  # when it ended (Unix time)
    seconds: float

    def count(self, verdict: Verdict) -> int:
        """How many lines have ``verdict``."""
        return sum(1 for line in self.lines if line.verdict == verdict)

    def worst(self) -> dict[tuple[FleetItem, str], Verdict]:
        """Per item and node, the worst verdict (FAIL, then CANNOT CHECK, then PASS)."""
        rank = {"PASS": 0, "CANNOT CHECK": 1, "FAIL": 2}
        found: dict[tuple[FleetItem, str], Verdict] = {}
        for line in self.lines:
            key = (line.item, line.node)
            if key not in found or rank[line.verdict] > rank[found[key]]:
                found[key] = line.verdict
        return found

    @property
    def exit_code(self) -> ExitCode:
        """0 with no FAIL (CANNOT CHECK lines are manual steps, not failures), else 1."""
        return ExitCode.DRIFT if self.count("FAIL") else ExitCode.OK

    def document(self) -> dict[str, object]:
        """The JSON form (``--json``, the agent's state file and page)."""
        return {
            "node": self.node,
            "checked": iso(self.at),
            "seconds": round(self.seconds, 3),
            "pass": self.count("PASS"),
            "fail": self.count("FAIL"),
            "cannot_check": self.count("CANNOT CHECK"),
            "lines": [asdict(line) for line in self.lines],
        }


Step = Literal["fence", "takeover", "start", "repoint", "prove"]
Status = Literal["done", "already", "planned", "skipped", "failed", "outranked"]

STEPS: tuple[Step, ...] = ("fence", "takeover", "start", "repoint", "prove")
STEP_TITLES: dict[Step, str] = {
    "fence": "stop the services on the other nodes",
    "takeover": "take over the jobs",
    "start": "start the services here",
    "repoint": "point the services name here",
    "prove": "prove it: healthcheck, jobs, one services node",
}
FAILED_CODES: dict[Step, ExitCode] = {
    "fence": ExitCode.FENCE_FAILED,
    "takeover": ExitCode.TAKEOVER_FAILED,
    "start": ExitCode.START_FAILED,
    "repoint": ExitCode.REPOINT_FAILED,
    "prove": ExitCode.NOT_PROVEN,
}
# What a failed step leaves behind, for the operator at the moment it stops.
LEFT_AS: dict[Step, str] = {
    "fence": "nothing was changed on this node; some services elsewhere may be stopped",
    "takeover": "the services elsewhere are stopped; the jobs were not taken over here",
    "start": "the jobs are taken over here; not every service here is running",
    "repoint": "services and jobs are here; the services name still points elsewhere",
    "prove": "everything was moved, but the proof above does not pass",
}


@dataclass(frozen=True)
class StepOutcome:
    """One step: how it ended, one line for the operator, the details, and how long it took."""

    step: Step
    status: Status
    summary: str
    details: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the failover may go on after it."""
        return self.status in ("done", "already", "planned", "skipped")


@dataclass(frozen=True)
class FailoverResult:
    """Every step that ran, in order; the first that did not end well is the last."""

    node: str
    steps: tuple[StepOutcome, ...]
    dry_run: bool = False
    notes: tuple[str, ...] = ()  # around the steps: the jobsync agent here, set aside and back

    @property
    def failed(self) -> StepOutcome | None:
        """The step that stopped the failover, if one did."""
        return next((s for s in self.steps if not s.ok), None)

    @property
    def seconds(self) -> float:
        """The time of every step together."""
        return sum(s.seconds for s in self.steps)

    @property
    def exit_code(self) -> ExitCode:
        """0 only when every step is done and proven; else the failed step's own code."""
        failed = self.failed
        if failed is None:
            return ExitCode.OK
        if failed.status == "outranked":
            return ExitCode.OUTRANKED
        return FAILED_CODES[failed.step]


# The last failover run on this node, kept in state_dir for the agent's page and metrics. The
# command writes it when it ends (a dry run writes nothing); the agent reads it when the page or
# the metrics are asked for, so it shows what happened even if the agent was stopped for the
# move. A file that is missing or unreadable is simply no failover.
LAST_FAILOVER = "last-failover.json"


@dataclass(frozen=True)
class LastStep:
    """One step as it ended."""

    step: str
    status: str
    summary: str
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether it held."""
        return self.status not in ("failed", "outranked")


@dataclass(frozen=True)
class LastFailover:
    """When it finished, its exit code, and its steps."""

    finished: float
    exit_code: int
    steps: tuple[LastStep, ...]


def record(state_dir: Path, result: FailoverResult) -> None:
    """Keep ``result`` as the last failover."""
    document = {
        "node": result.node,
        "finished": time.time(),
        "exit_code": int(result.exit_code),
        "steps": [asdict(s) for s in result.steps],
    }
    state_dir.mkdir(parents=True, exist_ok=True)
    replace_atomically(state_dir / LAST_FAILOVER, json.dumps(document).encode("utf-8"))


def read_last(state_dir: Path) -> LastFailover | None:
    """The last failover here, or ``None``."""
    try:
        doc = json.loads((state_dir / LAST_FAILOVER).read_text(encoding="utf-8"))
        steps = tuple(
            LastStep(str(s["step"]), str(s["status"]), str(s["summary"]), float(s["seconds"]))
            for s in doc["steps"]
        )
        return LastFailover(float(doc["finished"]), int(doc["exit_code"]), steps)
    except (OSError, ValueError, KeyError, TypeError):
        return None
