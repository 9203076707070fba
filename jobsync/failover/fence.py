"""Step 1: stop Integrify's services on every other node, and keep them from starting again.

The seed's duplicate notifications come from two nodes running the services, so every node but
this one is asked, concurrently, over its service manager: each configured service that runs is
stopped (in the reverse of the start order) and waited for, and its start type set to Disabled
so a reboot does not bring it back. A server that cannot change the start type is named in the
result with what to do by hand. A node that cannot be reached cannot be fenced: the failover
goes on past it only when the config or ``--old-node-down`` says so, and says that it did.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobsync.config import FailoverConfig
from jobsync.errors import ConfigError, PeerError, PeerUnreachableError
from jobsync.failover.healthcheck import probe
from jobsync.failover.move import Move
from jobsync.failover.nodes import FleetNode, healthcheck_url
from jobsync.failover.services import ServiceOpener, open_services
from jobsync.fanout import each_peer
from jobsync.logs import get_logger
from jobsync.result.failover import StepOutcome

log = get_logger(__name__)
_ALIVE_PROBE_SECONDS = 3.0


@dataclass(frozen=True)
class NodeFence:
    """What became of one node's services."""

    node: str
    stopped: tuple[str, ...] = ()
    running: tuple[str, ...] = ()  # found running (a dry run stops nothing)
    notes: tuple[str, ...] = ()
    error: str | None = None
    unreachable: bool = False
    alive: str | None = None  # an unreachable node whose healthcheck still answered: which

    def line(self) -> str:
        """One line for the operator."""
        if self.error is not None:
            alive = f"; yet {self.alive}: it may still run the services" if self.alive else ""
            return f"{self.node}: {self.error}{alive}"
        if self.stopped:
            return f"{self.node}: stopped {', '.join(self.stopped)}"
        if self.running:
            return f"{self.node}: would stop {', '.join(self.running)}"
        return f"{self.node}: no configured service runs there"


def fence_node(
    node: FleetNode,
    failover: FailoverConfig,
    *,
    timeout: float,
    dry_run: bool,
    opener: ServiceOpener = open_services,
) -> NodeFence:
    """Stop the configured services on ``node`` (or, dry, say which run); never raises."""
    try:
        with opener(node, timeout) as manager:
            running = tuple(s for s in failover.services if manager.is_running(s))
            if dry_run:
                return NodeFence(node.name, running=running)
            stopped: list[str] = []
            notes: list[str] = []
            for service in reversed(failover.services):
                if manager.stop(service, within=failover.stop_timeout_seconds):
                    stopped.append(service)
                if note := manager.set_start_type(service, "disabled"):
                    notes.append(note)
            log.warning("failover_fenced", node=node.name, stopped=stopped)
            return NodeFence(node.name, stopped=tuple(reversed(stopped)), notes=tuple(notes))
    except PeerUnreachableError as exc:
        return NodeFence(node.name, error=str(exc), unreachable=True, alive=_alive(node, failover))
    except PeerError as exc:
        return NodeFence(node.name, error=str(exc))


def fence_all(
    nodes: tuple[FleetNode, ...],
    failover: FailoverConfig,
    *,
    timeout: float,
    dry_run: bool,
    opener: ServiceOpener = open_services,
) -> list[NodeFence]:
    """Every other node, concurrently."""
    others = [n for n in nodes if not n.here]

    def work(node: FleetNode) -> NodeFence:
        return fence_node(node, failover, timeout=timeout, dry_run=dry_run, opener=opener)

    return each_peer(others, work, name="jobsync-fence")


def _alive(node: FleetNode, failover: FailoverConfig) -> str | None:
    """Whether a node SMB cannot reach still answers its healthcheck (a half-dead node)."""
    try:
        url = healthcheck_url(failover, node.address())
    except ConfigError:  # its host does not resolve: nothing can answer
        return None
    answer = probe(url, timeout=_ALIVE_PROBE_SECONDS)
    return answer.describe() if answer.status is not None else None


def fence_step(move: Move) -> StepOutcome:
    """Step 1 over every other node; passes an unreachable one only when allowed."""
    fences = fence_all(
        move.nodes,
        move.failover,
        timeout=move.timeout,
        dry_run=move.dry_run,
        opener=move.open_services,
    )
    details = [f.line() for f in fences]
    details += [note for f in fences for note in f.notes]  # each names its node already
    failed = [f for f in fences if f.error is not None and not f.unreachable]
    unreachable = [f for f in fences if f.unreachable]
    if failed:
        return StepOutcome(
            "fence", "failed", f"could not stop the services on {_names(failed)}", tuple(details)
        )
    if unreachable and not move.may_pass_unreachable:
        return StepOutcome(
            "fence",
            "failed",
            f"cannot reach {_names(unreachable)} to stop its services; if it is down (or cut "
            "off from the clients), run again with --old-node-down",
            tuple(details),
        )
    move.down.update(f.node for f in unreachable)
    for fence in unreachable:
        details.append(
            f"{fence.node}: passed as down (--old-node-down or old_node_unreachable = "
            '"continue"): set its services to Disabled before it comes back'
        )
    running = [f for f in fences if f.running]
    if move.dry_run:
        summary = f"would stop services on {_names(running)}" if running else "nothing to stop"
        return StepOutcome("fence", "planned", summary, tuple(details))
    stopped = [f for f in fences if f.stopped]
    if not stopped:
        return StepOutcome(
            "fence", "already", "no configured service runs on another node", tuple(details)
        )
    return StepOutcome(
        "fence", "done", f"stopped the services on {_names(stopped)}", tuple(details)
    )


def _names(fences: list[NodeFence]) -> str:
    return ", ".join(f.node for f in fences)
