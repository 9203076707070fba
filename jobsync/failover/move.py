"""What every step of a failover is given: the config, the nodes, and what earlier steps found."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from jobsync.config import Config, FailoverConfig
from jobsync.failover.nodes import FleetNode
from jobsync.failover.services import ServiceOpener, open_services
from jobsync.result.failover import StepOutcome
from jobsync.transport import Opener, default_opener


@dataclass
class Move:
    """One failover under way; steps read it and note what later steps must know."""

    config: Config
    failover: FailoverConfig
    nodes: tuple[FleetNode, ...]
    dry_run: bool = False
    old_node_down: bool = False  # --old-node-down: go on past a node that cannot be fenced
    on_step: Callable[[StepOutcome], None] = lambda _outcome: None  # each step, as it ends
    open_services: ServiceOpener = open_services
    opener: Opener = default_opener
    down: set[str] = field(default_factory=set)  # nodes accepted as down (not fenced, not asked)

    @property
    def here(self) -> FleetNode:
        """The node running the failover."""
        return self.nodes[0]

    @property
    def others(self) -> tuple[FleetNode, ...]:
        """Every other node."""
        return self.nodes[1:]

    @property
    def timeout(self) -> float:
        """The bound of one network call (the config's ``timeout_seconds``)."""
        return self.config.timeout_seconds

    @property
    def may_pass_unreachable(self) -> bool:
        """Whether a node that cannot be fenced may be passed (flag or config)."""
        return self.old_node_down or self.failover.old_node_unreachable == "continue"
