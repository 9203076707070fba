"""Step 3: start Integrify's services here, in the configured order, each up before the next.

Each is first set to start automatically (a node fenced in an earlier failover has them
Disabled, and a Disabled service refuses to start); a server that cannot change it says so in
the result. Every wait is bounded by ``start_timeout_seconds``.
"""

from __future__ import annotations

from jobsync.errors import PeerError
from jobsync.failover.move import Move
from jobsync.result.failover import StepOutcome


def start_step(move: Move) -> StepOutcome:
    """Start every configured service on this node, in order, waiting for RUNNING."""
    failover = move.failover
    started: list[str] = []
    details: list[str] = []
    try:
        with move.open_services(move.here, move.timeout) as services:
            if move.dry_run:
                states = {s: services.state(s) or "not installed" for s in failover.services}
                lines = tuple(f"{s}: {state}" for s, state in states.items())
                return StepOutcome(
                    "start", "planned", f"would start {', '.join(failover.services)}", lines
                )
            for service in failover.services:
                if note := services.set_start_type(service, "auto"):
                    details.append(note)
                if services.start(service, within=failover.start_timeout_seconds):
                    started.append(service)
                    details.append(f"{service}: running")
                else:
                    details.append(f"{service}: was running already")
    except PeerError as exc:
        done = f" (started {', '.join(started)})" if started else ""
        return StepOutcome("start", "failed", f"{exc}{done}", tuple(details))
    if not started:
        return StepOutcome("start", "already", "every service runs here already", tuple(details))
    return StepOutcome("start", "done", f"started {', '.join(started)}", tuple(details))


def stop_here(move: Move) -> list[str]:
    """Stop this node's services (a node that lost the ownership steps back); lines to report."""
    try:
        with move.open_services(move.here, move.timeout) as services:
            stopped = [
                s
                for s in reversed(move.failover.services)
                if services.stop(s, within=move.failover.stop_timeout_seconds)
            ]
    except PeerError as exc:
        return [f"could not stop the services here: {exc}; stop them by hand"]
    return [f"stopped here: {', '.join(stopped)}" if stopped else "no service ran here"]
