"""What ``jobsync failover`` planned, did and proved, step by step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from jobsync.errors import ExitCode

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
