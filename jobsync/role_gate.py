"""May this node change the jobs now? One answer for every writer.

``jobsync push`` (the scheduled task), ``jobsync reconcile --apply``, ``jobsync init`` and the
agent all ask :func:`decide` before they touch any peer, and it answers from ``[active]`` the
same way for each: a standby node never writes. An operator who means it overrides the answer
with ``--as-services-node``; the override is logged, never silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobsync.config import Config
from jobsync.logs import get_logger

if TYPE_CHECKING:
    from jobsync.role import RoleDetector

log = get_logger(__name__)

OVERRIDE_FLAG = "--as-services-node"


@dataclass(frozen=True)
class RoleDecision:
    """Whether this node acts as the services node now, and why."""

    active: bool
    reason: str
    overridden: bool = False  # standby by [active], active because the operator said so

    @property
    def name(self) -> str:
        """``active`` or ``standby``, as reports and JSON say it."""
        return "active" if self.active else "standby"


def decide(
    config: Config, *, override: bool = False, detector: RoleDetector | None = None
) -> RoleDecision:
    """Ask ``[active]`` once; raises ConfigError when its mode cannot work on this site."""
    if detector is None:
        from jobsync.role import RoleDetector  # noqa: PLC0415 - a push pays only for what it asks

        detector = RoleDetector(config.active)
    detector.validate()
    probe = detector.probe()
    if probe.active or not override:
        return RoleDecision(active=probe.active, reason=probe.reason)
    log.warning("role_overridden", node=config.node, reason=probe.reason, flag=OVERRIDE_FLAG)
    return RoleDecision(active=True, reason=probe.reason, overridden=True)


def standby_line(decision: RoleDecision, *, what: str) -> str:
    """The one line a standby writer prints: what it did not do, why, and how to insist."""
    return (
        f"standby: {decision.reason}; {what} (the services node does it; {OVERRIDE_FLAG} "
        "makes this node act as the services node anyway)"
    )
