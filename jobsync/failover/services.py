"""Integrify's services on one node, as the failover needs them: running or not, stop, start.

A thin layer over the service-control client (:mod:`jobsync.transport.smb.svcctl`) that puts
the failover's rules in one place: a service missing on a node is not running there; stopping
or starting waits for the state within a bound and fails in words when it does not come; a
server that cannot change a start type answers a note for the result, not an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Final

from jobsync.errors import PeerIOError
from jobsync.failover.nodes import FleetNode
from jobsync.transport.smb.svcctl import (
    ServiceControlUnsupportedError,
    ServiceManager,
    ServiceNotFoundError,
    ServiceState,
    StartType,
)

RUNNING: Final = "running"
STOPPED: Final = "stopped"


class NodeServices:
    """One node's service manager (see :func:`open_services`)."""

    def __init__(self, node: FleetNode, manager: ServiceManager) -> None:
        """Wrap ``manager``, connected to ``node``."""
        self.node = node
        self._manager = manager

    def state(self, service: str) -> ServiceState | None:
        """The service's state ("running", "stopped", ...), ``None`` where it is not installed."""
        try:
            return self._manager.status(service).state
        except ServiceNotFoundError:
            return None

    def is_running(self, service: str) -> bool:
        """Whether the service runs (or is on its way up or down) on this node."""
        state = self.state(service)
        return state is not None and state != STOPPED

    def stop(self, service: str, *, within: float) -> bool:
        """Stop it and wait until it has stopped; whether it was running. Raises if it won't."""
        if not self.is_running(service):
            return False
        self._manager.stop(service)
        final = self._manager.wait_for(service, STOPPED, timeout=within)
        if final.state != STOPPED:
            raise PeerIOError(
                f"{self.node.name}: {service} did not stop within {within:g} s (it is "
                f"{final.state}); stop it there by hand"
            )
        return True

    def start(self, service: str, *, within: float) -> bool:
        """Start it and wait until it runs; whether it had to be started. Raises if it won't."""
        if self.state(service) == RUNNING:
            return False
        self._manager.start(service)
        final = self._manager.wait_for(service, RUNNING, timeout=within)
        if final.state != RUNNING:
            raise PeerIOError(
                f"{self.node.name}: {service} did not reach RUNNING within {within:g} s (it is "
                f"{final.state}); see the Windows event log of {self.node.name} for why"
            )
        return True

    def set_start_type(self, service: str, start_type: StartType) -> str | None:
        """Set how the service starts at boot; a note when the server cannot, else ``None``."""
        try:
            self._manager.set_start_type(service, start_type)
        except ServiceControlUnsupportedError as exc:
            return str(exc)
        except ServiceNotFoundError:
            return None  # not installed there: nothing to keep from starting
        return None


ServiceOpener = Callable[[FleetNode, float], AbstractContextManager[NodeServices]]


@contextmanager
def open_services(node: FleetNode, timeout: float) -> Iterator[NodeServices]:
    """``node``'s service manager for a ``with`` block; every call is bounded by ``timeout``."""
    manager = ServiceManager.open(node.smb, timeout=timeout)
    try:
        yield NodeServices(node, manager)
    finally:
        manager.close()
