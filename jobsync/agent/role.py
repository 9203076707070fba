"""Is this node the services node? Asked every ``check_seconds``, answered with hysteresis.

``always``: yes. ``dns``: while ``services_host`` resolves (through ``getaddrinfo``, which
honours the hosts file) to an address this machine carries. ``services``: while every named
Windows service runs here. A role change needs ``confirmations`` consecutive answers, so a
flapping DNS answer or a service restart does not flip the agent back and forth.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from jobsync.config import ActiveConfig


@dataclass(frozen=True)
class Probe:
    """One answer to "are we active?", with the reason."""

    active: bool
    reason: str


def local_addresses() -> set[str]:
    """Every IP address of this machine's interfaces, loopback included."""
    import psutil  # noqa: PLC0415 - only the dns mode needs it

    found = set()
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                found.add(_normal(address.address))
    return found


def resolve(host: str) -> set[str]:
    """The addresses ``host`` resolves to (hosts file first, as the OS resolver does)."""
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return {_normal(str(info[4][0])) for info in infos}


def _normal(address: str) -> str:
    return str(ipaddress.ip_address(address.split("%", 1)[0]))


def services_running(names: Iterable[str]) -> tuple[bool, str]:
    """Whether every named Windows service is running here."""
    if sys.platform != "win32":
        return False, 'mode = "services" needs Windows; treating this node as standby'
    import psutil  # noqa: PLC0415

    for name in names:
        try:
            status = psutil.win_service_get(name).status()
        except Exception as exc:  # noqa: BLE001 - psutil raises several kinds for a missing service
            return False, f"service {name}: {exc}"
        if status != "running":
            return False, f"service {name} is {status}"
    return True, "every Integrify service runs here"


class RoleDetector:
    """Answers "are we the services node?" from the ``[active]`` settings."""

    def __init__(
        self,
        config: ActiveConfig,
        *,
        resolver: Callable[[str], set[str]] = resolve,
        addresses: Callable[[], set[str]] = local_addresses,
        services: Callable[[Iterable[str]], tuple[bool, str]] = services_running,
    ) -> None:
        """Use ``config``; the probes can be replaced in tests."""
        self._config = config
        self._resolver = resolver
        self._addresses = addresses
        self._services = services

    def probe(self) -> Probe:
        """Ask once."""
        config = self._config
        if config.mode == "always":
            return Probe(active=True, reason='mode = "always"')
        if config.mode == "dns":
            host = config.services_host or ""
            try:
                targets = self._resolver(host)
            except OSError as exc:
                return Probe(active=False, reason=f"{host} does not resolve: {exc}")
            mine = targets & self._addresses()
            if mine:
                return Probe(
                    active=True, reason=f"{host} resolves to {', '.join(sorted(mine))} here"
                )
            return Probe(
                active=False, reason=f"{host} resolves to {', '.join(sorted(targets))}, not here"
            )
        running, reason = self._services(config.services)
        return Probe(active=running, reason=reason)


class RoleTracker:
    """Changes role only after ``confirmations`` consecutive probes agree."""

    def __init__(self, first: Probe, *, confirmations: int) -> None:
        """Start in the role the first probe gives."""
        self.active = first.active
        self.reason = first.reason
        self._confirmations = confirmations
        self._streak = 0

    def observe(self, probe: Probe) -> bool:
        """Feed one probe; returns True when the role just changed."""
        if probe.active == self.active:
            self._streak = 0
            self.reason = probe.reason
            return False
        self._streak += 1
        if self._streak < self._confirmations:
            return False
        self.active, self.reason, self._streak = probe.active, probe.reason, 0
        return True
