"""``jobsync failover``: the five steps in order, logged and timed, up to the first that fails.

Every step asks the nodes afresh and changes only what is not yet as it should be, so a
failover stopped at any point (killed, a node slow to answer, a service that would not start)
is finished by running the same command again. A node that loses the ownership to another
failover made at the same time stops its own services and says so (exit 15).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from jobsync.config.model import Config
from jobsync.failover.nodes import Move, failover_config, fleet_nodes, healthcheck_url
from jobsync.failover.prove import prove_step
from jobsync.failover.repoint import repoint_step
from jobsync.failover.steps import fence_step, start_step, stop_here, takeover_step
from jobsync.logs import get_logger
from jobsync.result import STEPS, FailoverResult, Step, StepOutcome, record

log = get_logger(__name__)

_STEPS: dict[Step, Callable[[Move], StepOutcome]] = {
    "fence": fence_step,
    "takeover": takeover_step,
    "start": start_step,
    "repoint": repoint_step,
    "prove": prove_step,
}


def prepare(
    config: Config,
    *,
    dry_run: bool = False,
    old_node_down: bool = False,
    on_step: Callable[[StepOutcome], None] = lambda _outcome: None,
) -> Move:
    """The failover about to run (config errors raise here, before anything is asked)."""
    return Move(
        config=config,
        failover=failover_config(config),
        nodes=fleet_nodes(config),
        dry_run=dry_run,
        old_node_down=old_node_down,
        on_step=on_step,
    )


def plan_lines(move: Move) -> list[str]:
    """What the failover will do, from the config alone, before it touches anything."""
    f = move.failover
    others = ", ".join(n.name for n in move.others) or "no other node"
    services = ", ".join(f.services)
    address = move.here.address()
    name = f.services_name or "the services name"
    where = {
        "hosts": "in the hosts file of every node",
        "dns": f"with a signed update to {f.dns.server if f.dns else ''}",
        "none": '(not moved: repoint = "none")',
    }[f.repoint]
    return [
        f"failover to {move.here.name} ({address}):",
        f"  1. fence     stop {services} on {others}; set them to Disabled",
        "  2. takeover  adopt the newest version of every job; start a new epoch",
        (
            f"  3. start     {services} here, in this order, each RUNNING within "
            f"{f.start_timeout_seconds:g} s"
        ),
        f"  4. repoint   {name} -> {address} {where}",
        (
            f"  5. prove     ownership, one services node, the jobs, "
            f"{healthcheck_url(f, address)} and the same through the name"
        ),
    ]


def run(move: Move) -> FailoverResult:
    """Play the steps in order; stop at the first that fails; record the result."""
    outcomes: list[StepOutcome] = []
    for step in STEPS:
        started = time.monotonic()
        outcome = _STEPS[step](move)
        if outcome.status == "outranked" and not move.dry_run:
            outcome = _step_back(move, outcome)
        outcome = StepOutcome(
            outcome.step,
            outcome.status,
            outcome.summary,
            outcome.details,
            round(time.monotonic() - started, 3),
        )
        outcomes.append(outcome)
        _log(outcome)
        move.on_step(outcome)
        if not outcome.ok:
            break
    result = FailoverResult(node=move.here.name, steps=tuple(outcomes), dry_run=move.dry_run)
    if not move.dry_run:
        record(move.config.state_dir, result)
    return result


def _step_back(move: Move, outcome: StepOutcome) -> StepOutcome:
    """The ownership rule gave the jobs to another node: stop the services here."""
    return StepOutcome(
        outcome.step, outcome.status, outcome.summary, (*outcome.details, *stop_here(move))
    )


def _log(outcome: StepOutcome) -> None:
    fields = {
        "step": outcome.step,
        "status": outcome.status,
        "summary": outcome.summary,
        "seconds": outcome.seconds,
    }
    if outcome.ok:
        log.info("failover_step", **fields)
    else:
        log.error("failover_step", **fields)
