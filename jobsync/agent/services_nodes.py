"""Where Integrify's services run, as the agent last saw it: a plain value, judged without I/O.

Integrify's services must run on exactly one node: on none, no scheduled job runs; on two,
every job runs twice (the duplicate notifications a failover exists to prevent). Each agent
asks every node now and then (:mod:`~jobsync.agent.singleton`); this module holds what the
nodes answered and the verdict on it, for ``/healthz``, the status page, the metrics and the
state file alike. A node that could not be asked is unknown, never taken for "not running":
two nodes seen running are "several" whatever the others, but "one" or "none" needs every node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from jobsync.result import iso

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
            return (
                f"Integrify's services run on {len(self.running_on)} nodes: {_and(self.running_on)}"
            )
        if verdict == "none":
            return "Integrify's services run on no node"
        if verdict == "one":
            return f"Integrify's services run on {self.running_on[0]} only"
        if self.at is None:
            return "Not checked yet where Integrify's services run"
        if self.error is not None:
            return f"Cannot tell where Integrify's services run: {self.error}"
        seen = f"seen on {_and(self.running_on)}" if self.running_on else "seen on no node"
        return (
            f"Cannot tell where Integrify's services run ({seen}): {_and(self.unknown)} "
            f"could not be asked"
        )

    def next_step(self) -> str:
        """What to do about a wrong count (only asked when :attr:`wrong`)."""
        if self.verdict == "several":
            return (
                f"Integrify's services run on {_and(self.running_on)} at once, so scheduled jobs "
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


def _and(names: tuple[str, ...]) -> str:
    """``n1``, ``n1 and n2``, ``n1, n2 and n3``."""
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"
