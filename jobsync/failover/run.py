"""``jobsync failover``: the five steps in order, logged and timed, up to the first that fails.

Every step asks the nodes afresh and changes only what is not yet as it should be, so a
failover stopped at any point (killed, a node slow to answer, a service that would not start)
is finished by running the same command again. A node that loses the ownership to another
failover made at the same time stops its own services and says so (exit 15).

The last step proves the move with five facts, each asked afresh rather than taken from the
earlier steps' word:

1. this node owns the jobs on every folder that can be reached;
2. the services run here and on no other reachable node (the services singleton);
3. the jobs folder here holds the versions the takeover adopted;
4. Integrify's healthcheck answers 200 here (waited for up to ``healthcheck_timeout_seconds``:
   the application may take a while after its services report RUNNING);
5. it answers through the services name too, at the address the name's authority now gives
   (the DNS server, or every node's hosts file); with ``repoint = "none"`` through this
   machine's resolver, since the name then belongs to a cluster's own address.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from jobsync.config.model import Config
from jobsync.epoch import read_local_manifest
from jobsync.errors import JobsyncError, PeerError, PeerIOError
from jobsync.failover.dns_update import DnsServer, lookup
from jobsync.failover.nodes import (
    HOSTS_FOLDER,
    Move,
    Probe,
    again_if_session_lost,
    failover_config,
    fleet_nodes,
    healthcheck_url,
    probe,
    wait_healthy,
)
from jobsync.failover.repoint import addresses_for, read_hosts, repoint_step
from jobsync.failover.steps import (
    Ownership,
    fence_all,
    fence_step,
    read_ownership,
    start_step,
    stop_here,
    takeover_step,
)
from jobsync.logs import get_logger
from jobsync.result import STEPS, FailoverResult, Step, StepOutcome, record

log = get_logger(__name__)


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


Fact = tuple[bool, str]


def prove_step(move: Move) -> StepOutcome:
    """Check every fact; the step passes only when all of them do."""
    if move.dry_run:
        return StepOutcome(
            "prove",
            "planned",
            "would check ownership, the services singleton, the jobs and the healthcheck "
            f"here and through {move.failover.services_name or 'the services name'}",
        )
    owner = read_ownership(move.config, opener=move.opener)
    if owner.outranked:
        return StepOutcome("prove", "outranked", owner.stepping_back())
    facts = [
        _ownership(owner, move),
        _singleton(move),
        jobs_fact(move.config),
        *_health(move),
    ]
    details = tuple(("ok    " if ok else "FAIL  ") + line for ok, line in facts)
    failing = [line for ok, line in facts if not ok]
    if failing:
        return StepOutcome("prove", "failed", failing[0], details)
    return StepOutcome("prove", "done", "every check passes", details)


def _ownership(owner: Ownership, move: Move) -> Fact:
    if not owner.settled(down=frozenset(move.down)):
        behind = [*owner.behind, *(n for n in owner.unreachable if n not in move.down)]
        return False, f"the takeover is not recorded on {', '.join(behind)}"
    return True, f"this node owns the jobs at epoch {owner.mine.epoch}"


def _singleton(move: Move) -> Fact:
    try:
        with move.open_services(move.here, move.timeout) as services:
            states = {s: services.state(s) for s in move.failover.services}
    except PeerError as exc:
        return False, f"cannot ask this node's service manager: {exc}"
    not_running = [s for s, state in states.items() if state != "running"]
    if not_running:
        return False, f"not running here: {', '.join(not_running)}"
    return _nowhere_else(move)


def _nowhere_else(move: Move) -> Fact:
    others = fence_all(
        move.nodes, move.failover, timeout=move.timeout, dry_run=True, opener=move.open_services
    )
    elsewhere = [f"{f.node} ({', '.join(f.running)})" for f in others if f.running]
    if elsewhere:
        return False, f"the services run elsewhere too: {'; '.join(elsewhere)}"
    unseen = [f.node for f in others if f.error is not None and f.node not in move.down]
    if unseen:
        return False, f"cannot see whether the services run on {', '.join(unseen)}"
    return True, "the services run here and on no other node"


def jobs_fact(config: Config) -> Fact:
    """Whether every job the local manifest records is here as recorded (or changed since)."""
    manifest = read_local_manifest(config.source)
    wrong: list[str] = []
    for entry in manifest.entries.values():
        path = config.source / entry.name
        state = _job_state(path, entry.sha256, entry.mtime_ns)
        if state is not None:
            wrong.append(f"{entry.name} ({state})")
    for tomb in manifest.tombstones.values():
        try:
            if (config.source / tomb.name).stat().st_mtime_ns <= tomb.deleted_ns:
                wrong.append(f"{tomb.name} (deleted by {tomb.origin}, still here)")
        except OSError:
            continue  # gone, as adopted (a newer copy is the scheduler's own)
    if wrong:
        return False, f"not the adopted version: {', '.join(sorted(wrong)[:5])}"
    return True, f"the jobs folder holds the adopted versions of {len(manifest.entries)} job(s)"


def _job_state(path: Path, sha256: str, mtime_ns: int) -> str | None:
    try:
        data = path.read_bytes()
        changed_since = path.stat().st_mtime_ns > mtime_ns
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    if hashlib.sha256(data).hexdigest() == sha256 or changed_since:
        return None  # the version itself, or the scheduler's own later change to it
    return "different content"


def _health(move: Move) -> list[Fact]:
    failover = move.failover
    here_url = healthcheck_url(failover, move.here.address())
    here = wait_healthy(here_url, within=failover.healthcheck_timeout_seconds, timeout=move.timeout)
    facts: list[Fact] = [(here.healthy, f"here: {here.describe()}")]
    name = failover.services_name
    if name is None:
        return facts
    try:
        address = _name_address(move, name)
    except (JobsyncError, OSError) as exc:
        return [*facts, (False, f"{name} does not resolve: {exc}")]
    if failover.repoint != "none" and address != move.here.address():
        return [*facts, (False, f"{name} points at {address}, not at this node")]
    through = probe(healthcheck_url(failover, name), timeout=move.timeout, address=address)
    if not through.healthy and here.healthy:
        through = _retry(move, name, address)
    return [*facts, (through.healthy, f"through the name: {through.describe()}")]


def _retry(move: Move, name: str, address: str) -> Probe:
    return wait_healthy(
        healthcheck_url(move.failover, name),
        within=move.failover.healthcheck_timeout_seconds,
        timeout=move.timeout,
        address=address,
    )


def _name_address(move: Move, name: str) -> str:
    """Where the name's authority sends clients now."""
    failover = move.failover
    if failover.repoint == "dns":
        dns = failover.dns
        assert dns is not None  # noqa: S101 - the config requires it
        found = lookup(
            DnsServer.of(dns),
            name,
            timeout=move.timeout,
        )
        if not found.addresses:
            raise PeerIOError(f"{dns.server} has no address for it")
        return found.addresses[0]
    if failover.repoint == "hosts":
        return _hosts_address(move, name)
    infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
    return str(infos[0][4][0])


def _hosts_address(move: Move, name: str) -> str:
    """The address every reachable node's hosts file gives; they must all agree."""
    seen: dict[str, str] = {}
    for node in move.nodes:
        if node.name in move.down:
            continue
        folder = move.opener(node.admin(HOSTS_FOLDER), move.timeout)
        try:
            data = again_if_session_lost(partial(read_hosts, folder))
        finally:
            folder.close()
        if isinstance(data, PeerIOError):
            raise data
        found = addresses_for(data, name)
        seen[node.name] = found[0] if found else "nothing"
    addresses: set[str] = set(seen.values())
    if len(addresses) != 1:
        each = ", ".join(f"{n}: {a}" for n, a in seen.items())
        raise PeerIOError(f"the hosts files disagree ({each})")
    return addresses.pop()


# Last: the steps are defined above (prove_step with the proof's facts).
_STEPS: dict[Step, Callable[[Move], StepOutcome]] = {
    "fence": fence_step,
    "takeover": takeover_step,
    "start": start_step,
    "repoint": repoint_step,
    "prove": prove_step,
}
