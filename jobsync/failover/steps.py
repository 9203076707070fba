"""Steps 1 to 3 of a failover: fence, take over the jobs, start; who owns them, where they run.

Step 1: stop Integrify's services on every other node, and keep them from starting again.
The seed's duplicate notifications come from two nodes running the services, so every node but
this one is asked, concurrently, over its service manager: each configured service that runs is
stopped (in the reverse of the start order) and waited for, and its start type set to Disabled
so a reboot does not bring it back. A server that cannot change the start type is named in the
result with what to do by hand. A node that cannot be reached cannot be fenced: the failover
goes on past it only when the config or ``--old-node-down`` says so, and says that it did.

Step 2: take over the jobs (``jobsync takeover``'s rules, unchanged), once.
A takeover already recorded on every folder that can be reached is not repeated (a rerun after
an interrupted failover would only start a needless epoch). Right after it, the claims are read
again: when two nodes fail over at once, the ownership rule picks one, and the other steps back.

Step 3: start Integrify's services here, in the configured order, each up before the next.
Each is first set to start automatically (a node fenced in an earlier failover has them
Disabled, and a Disabled service refuses to start); a server that cannot change it says so in
the result. Every wait is bounded by ``start_timeout_seconds``.

Who owns the jobs now, as every reachable folder says: the failover's "already done?" test.
A takeover records this node's claim (its epoch) in its own folder and in every reachable
peer's manifest. When all of them name this node at its epoch, and nothing outranks it, the
takeover is done and running it again would only start a needless epoch; when another claim
outranks this node's, another failover won (the ownership rule), and this node must step back.

Where the services run, judged by the singleton rule (:class:`ServicesNodes`): read by the
agent's guard and by ``jobsync check --fleet``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

from jobsync.config.model import Config, FailoverConfig, PeerConfig
from jobsync.epoch import read_claim, read_local_manifest
from jobsync.errors import ConfigError, PeerError, PeerUnreachableError
from jobsync.failover.nodes import (
    FleetNode,
    Move,
    ServiceOpener,
    again_if_session_lost,
    healthcheck_url,
    open_services,
    probe,
)
from jobsync.jobs_folder import name_key
from jobsync.logs import get_logger
from jobsync.render import takeover_to_text
from jobsync.result import StepOutcome, iso
from jobsync.sync.manifests import read_manifest
from jobsync.takeover import takeover
from jobsync.transport import Opener, default_opener, each_peer
from jobsync.versions import Claim, claim_key, manifest_claim


@dataclass(frozen=True)
class Ownership:
    """The claim of the node running the failover, the best claim seen, where folders stand."""

    mine: Claim
    winner: Claim
    behind: tuple[str, ...]  # reachable peers whose manifest does not name this node's claim
    unreachable: tuple[str, ...]

    @property
    def outranked(self) -> bool:
        """Whether another node's claim wins over this node's."""
        return not self.winner.same_node(self.mine) and self.winner.outranks(self.mine)

    def stepping_back(self) -> str:
        """The summary of a step that found this node outranked."""
        return (
            f"{self.winner.node} took over at epoch {self.winner.epoch} meanwhile and owns the "
            "jobs (the ownership rule); this node steps back"
        )

    def settled(self, *, down: frozenset[str] = frozenset()) -> bool:
        """Whether this node owns the jobs on every folder but those known to be down."""
        unseen = {name_key(n) for n in self.unreachable} - {name_key(n) for n in down}
        return self.mine.epoch > 0 and not self.outranked and not self.behind and not unseen


def read_ownership(config: Config, *, opener: Opener = default_opener) -> Ownership:
    """Read the claim here and the owner every reachable peer's manifest names; change nothing."""
    claim = read_claim(config.source)
    mine_epoch = claim.epoch if claim and name_key(claim.node) == name_key(config.node) else 0
    mine = Claim(node=config.node, epoch=mine_epoch, since=claim.since if claim else "")
    claims = [mine]
    local = manifest_claim(read_local_manifest(config.source))
    if local is not None:
        claims.append(local)

    def visit(peer_config: PeerConfig) -> Claim | PeerError | None:
        try:
            peer = opener(peer_config, config.timeout_seconds)
        except PeerError as exc:
            return exc
        try:
            manifest, _problem = again_if_session_lost(partial(read_manifest, peer))
            return manifest_claim(manifest)
        except PeerError as exc:
            return exc
        finally:
            peer.close()

    peers = config.target_peers
    answers = each_peer(peers, visit, name="jobsync-ownership")
    behind: list[str] = []
    unreachable: list[str] = []
    for peer_config, answer in zip(peers, answers, strict=True):
        if isinstance(answer, PeerError):
            unreachable.append(peer_config.name)
            continue
        if answer is not None:
            claims.append(answer)
        if answer is None or claim_key(answer) != claim_key(mine):
            behind.append(peer_config.name)
    winner = max(claims, key=claim_key)
    return Ownership(mine=mine, winner=winner, behind=tuple(behind), unreachable=tuple(unreachable))


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


def takeover_step(move: Move) -> StepOutcome:
    """Take over unless this node already owns every folder; then check nobody outranks it."""
    before = read_ownership(move.config, opener=move.opener)
    if before.settled(down=frozenset(move.down)):
        return StepOutcome(
            "takeover", "already", f"this node owns the jobs at epoch {before.mine.epoch}"
        )
    result = takeover(move.config, dry_run=move.dry_run, opener=move.opener)
    # takeover's own report, less its head line and its advice about starting the services
    details = [line.strip() for line in takeover_to_text(result)[1:-1]]
    if result.refused:
        return StepOutcome("takeover", "failed", f"refused: {result.refused}", tuple(details))
    unseen = [n for n, _ in result.unreachable if n not in move.down]
    if result.failed or unseen:
        what = f"could not see {', '.join(unseen)}" if unseen else "some files failed"
        return StepOutcome(
            "takeover", "failed", f"{what}; run jobsync failover again", tuple(details)
        )
    if move.dry_run:
        return StepOutcome(
            "takeover", "planned", f"would take over in epoch {result.epoch}", tuple(details)
        )
    after = read_ownership(move.config, opener=move.opener)
    if after.outranked:
        return StepOutcome(
            "takeover",
            "outranked",
            after.stepping_back(),
            tuple(details),
        )
    return StepOutcome("takeover", "done", f"took over in epoch {result.epoch}", tuple(details))


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


# -- where the services run, judged: the singleton rule ---------------------------------------
# Integrify's services must run on exactly one node: on none, no scheduled job runs; on two,
# every job runs twice (the duplicate notifications a failover exists to prevent). What the
# nodes answered, and the verdict on it, for the agent's guard and ``jobsync check --fleet``
# alike. A node that could not be asked is unknown, never taken for "not running": two nodes
# seen running are "several" whatever the others, but "one" or "none" needs every node.

ServicesVerdict = Literal["one", "none", "several", "unknown"]


@dataclass(frozen=True)
class NodeAnswer:
    """What one node's service manager said, or why it could not be asked."""

    node: str
    running: tuple[str, ...] = ()  # the configured services found running there
    error: str | None = None  # set: the node could not be asked (unknown, not "not running")


@dataclass(frozen=True)
class ServicesNodes:
    """One check of every node (or none yet: ``at`` is ``None``)."""

    services: tuple[str, ...]  # the configured services; a node runs them if any of them runs
    answers: tuple[NodeAnswer, ...] = ()  # in the config's order
    at: float | None = None  # when the check ended (Unix time)
    error: str | None = None  # the check itself could not run (the config names no SMB nodes)

    @property
    def running_on(self) -> tuple[str, ...]:
        """The nodes seen running at least one of the services."""
        return tuple(a.node for a in self.answers if a.error is None and a.running)

    @property
    def unknown(self) -> tuple[str, ...]:
        """The nodes that could not be asked."""
        return tuple(a.node for a in self.answers if a.error is not None)

    @property
    def verdict(self) -> ServicesVerdict:
        """``one``, ``none``, ``several``, or ``unknown`` while an unasked node could decide it."""
        if self.at is None or self.error is not None:
            return "unknown"
        seen = len(self.running_on)
        if seen >= 2:  # noqa: PLR2004 - two is already too many, whatever the unknown nodes run
            return "several"
        if self.unknown:
            return "unknown"
        return "one" if seen == 1 else "none"

    @property
    def wrong(self) -> bool:
        """Whether the services certainly do not run on exactly one node."""
        return self.verdict in ("none", "several")

    @property
    def count(self) -> int:
        """The metric's value: the nodes running the services, or -1 while that is unknown."""
        return -1 if self.verdict == "unknown" else len(self.running_on)

    def summary(self) -> str:
        """One sentence for the page, the log and the events."""
        verdict = self.verdict
        if verdict == "several":
            nodes = self.running_on
            return f"Integrify's services run on {len(nodes)} nodes: {joined(nodes)}"
        if verdict == "none":
            return "Integrify's services run on no node"
        if verdict == "one":
            return f"Integrify's services run on {self.running_on[0]} only"
        if self.at is None:
            return "Not checked yet where Integrify's services run"
        if self.error is not None:
            return f"Cannot tell where Integrify's services run: {self.error}"
        seen = f"seen on {joined(self.running_on)}" if self.running_on else "seen on no node"
        return (
            f"Cannot tell where Integrify's services run ({seen}): {joined(self.unknown)} "
            f"could not be asked"
        )

    def next_step(self) -> str:
        """What to do about a wrong count (only asked when :attr:`wrong`)."""
        if self.verdict == "several":
            return (
                f"Integrify's services run on {joined(self.running_on)} at once, so scheduled jobs "
                "run twice: run jobsync failover on the node that should run them (it stops "
                "them on the others)."
            )
        return (
            "Integrify's services run on no node, so no scheduled job runs: run jobsync "
            "failover on the node that should run them."
        )

    def document(self, hide: Callable[[str], str] = str) -> dict[str, object]:
        """The JSON object ``/healthz`` and the state file carry (``hide``: secret filter)."""
        return {
            "verdict": self.verdict,
            "count": len(self.running_on),
            "nodes": list(self.running_on),
            "unknown": list(self.unknown),
            "errors": {a.node: hide(a.error) for a in self.answers if a.error is not None},
            "services": list(self.services),
            "checked": iso(self.at),
            "error": None if self.error is None else hide(self.error),
        }


def joined(names: tuple[str, ...]) -> str:
    """``n1``, ``n1 and n2``, ``n1, n2 and n3``."""
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"
