"""The jobsync agent on this node, set aside for the length of a failover.

The agent holds the node's work lock for as long as it runs, and a takeover must not share the
jobs folder with it. Rather than send the administrator to stop it first (one more manual step
at 3 a.m.), the failover stops the agent's Windows service (``[service] id``) through the same
service manager it uses for Integrify's services, takes the lock, and starts the agent again
when it is done, whatever the outcome: the agent then finds its role by itself (active on the
new services node). A lock held by anything else (a push of the scheduled task, another
failover) is waited for briefly, then named in the refusal.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from jobsync.errors import PeerError, SafetyRefusalError
from jobsync.failover.move import Move
from jobsync.lock import WorkLock
from jobsync.logs import get_logger

log = get_logger(__name__)
_WHO = "jobsync failover"


@contextmanager
def agent_set_aside(move: Move) -> Iterator[list[str]]:
    """Hold the work lock for the block; yields notes for the result (what was done to the agent).

    Raises :class:`SafetyRefusalError` when the lock cannot be had.
    """
    lock = WorkLock(move.config.state_dir, who=_WHO)
    notes: list[str] = []
    stopped = False
    if not lock.acquire():
        holder = lock.holder()
        if "agent" not in holder:
            raise SafetyRefusalError(
                f"failover refused: {holder} is at work here; nothing was changed "
                "(let it finish, then run jobsync failover again)"
            )
        stopped = _stop_agent(move, holder)
        if not lock.acquire(wait=move.config.service.stop_timeout_seconds):
            raise SafetyRefusalError(
                f"failover refused: {lock.holder()} is at work on this node; nothing was "
                "changed (stop it, then run jobsync failover again)"
            )
        notes.append(f"stopped the jobsync agent here ({move.config.service.id}) for the move")
    try:
        yield notes
    finally:
        lock.release()
        if stopped:
            notes.append(_start_agent(move))


def _stop_agent(move: Move, holder: str) -> bool:
    """Stop the agent's service here (the agent holds the lock); whether it was running."""
    service = move.config.service.id
    try:
        with move.open_services(move.here, move.timeout) as services:
            if services.state(service) is None:
                raise SafetyRefusalError(
                    f"failover refused: {holder} is at work on this node and no service "
                    f"{service} runs it; stop that agent, then run jobsync failover again"
                )
            stopped = services.stop(service, within=move.config.service.stop_timeout_seconds)
    except PeerError as exc:
        raise SafetyRefusalError(
            f"failover refused: the jobsync agent holds this node's work lock and could not "
            f"be stopped ({exc}); stop the {service} service, then run jobsync failover again"
        ) from None
    log.warning("failover_agent_stopped", service=service)
    return stopped


def _start_agent(move: Move) -> str:
    """Start the agent's service again; the note for the result."""
    service = move.config.service.id
    try:
        with move.open_services(move.here, move.timeout) as services:
            services.start(service, within=move.config.service.stop_timeout_seconds)
    except PeerError as exc:
        log.warning("failover_agent_not_started", service=service, reason=str(exc))
        return f"could not start the jobsync agent ({service}) again: {exc}; start it by hand"
    return f"started the jobsync agent ({service}) again"
