"""Whether this node is the services node, and whether it may change the jobs now.

Is this node the services node? Asked every ``check_seconds``, answered with hysteresis.
``always``: yes. ``dns``: while ``services_host`` resolves (through ``getaddrinfo``, which
honours the hosts file) to an address this machine carries. ``services``: while every named
Windows service runs here. A role change needs ``confirmations`` consecutive answers, so a
flapping DNS answer or a service restart does not flip the agent back and forth.

:meth:`RoleDetector.validate` is asked once, at start-up and by the one-shot commands: it
refuses (:class:`ConfigError`) a setting that can never tell the services node apart.
:meth:`RoleDetector.probe` is asked during a run and never raises: whatever went wrong since
(a service removed, a name that stopped resolving) is standby, with the reason.
:func:`dns_problem` judges a ``dns`` answer against the addresses every node of the fleet
carries, which no single node can see by itself.

May this node change the jobs now? One answer for every writer.
``jobsync push`` (the scheduled task), ``jobsync reconcile --apply``, ``jobsync init`` and the
agent all ask :func:`decide` before they touch any peer, and it answers from ``[active]`` the
same way for each: a standby node never writes. An operator who means it overrides the answer
with ``--as-services-node``; the override is logged, never silent.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from jobsync.config.model import ActiveConfig, Config
from jobsync.errors import ConfigError
from jobsync.logs import get_logger

_CANNOT_TELL = 'mode = "dns" cannot tell the services node'


@dataclass(frozen=True)
class Probe:
    """One answer to "are we active?", with the reason."""

    active: bool
    reason: str


@dataclass(frozen=True)
class InstalledService:
    """A Windows service installed on this machine: its short name and its display name."""

    name: str  # what sc.exe and the config's services = [...] use: IntegrifyScheduler
    display_name: str  # what services.msc shows: Integrify Scheduler


def local_addresses() -> set[str]:
    """Every IP address of this machine's interfaces, loopback included."""
    import psutil

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


def _comparable(address: str) -> str:
    """``address`` in one spelling when it is an IP address, else as given."""
    try:
        return _normal(address)
    except ValueError:
        return address


def _everywhere(address: str) -> bool:
    """Whether every machine holds ``address``: loopback (127.0.0.0/8, ::1) or unspecified."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def _listed(addresses: Iterable[str]) -> str:
    return ", ".join(sorted(addresses))


def dns_problem(
    targets: set[str],
    *,
    holders: Mapping[str, set[str]],
    host: str = "services_host",
    fleet: int | None = None,
) -> str | None:
    """Why ``targets`` (what ``host`` resolves to) cannot name one node, or None when it can.

    ``holders`` maps each known node's name to the addresses of its interfaces. A loopback or
    unspecified target is held by every node whatever the fleet says. Otherwise, with two or
    more nodes known, exactly one of them must carry a target: every node (an NLB cluster
    address), no node (a load balancer's address) or several nodes are each a problem. With
    fewer than two nodes known there is nothing to compare, and no problem is reported.
    ``fleet`` is how many nodes there are (default: as many as are known): while some are not
    known, "no node" is not reported (an unknown one may carry it), and "every node" is
    reported as several.
    """
    complete = fleet is None or len(holders) >= fleet
    if not targets:
        return None
    shown = _listed(targets)
    if any(_everywhere(a) for a in targets):
        return (
            f"{host} resolves to {shown}, a loopback or unspecified address that every node "
            f"holds: {_CANNOT_TELL}; map it to the services node's own address"
        )
    wanted = {_comparable(a) for a in targets}
    holding = sorted(
        (
            node
            for node, addresses in holders.items()
            if wanted & {_comparable(a) for a in addresses}
        ),
        key=str.casefold,
    )
    # "every node" and "no node" need two nodes known to mean anything.
    if len(holders) < 2 or len(holding) == 1:  # noqa: PLR2004 - two: see above
        return None
    if not holding and not complete:
        return None
    if not holding:
        carried = "which no node carries (a load balancer's address?)"
        advice = (
            'give the name its own record pointing at the services node, or use mode = "services"'
        )
    elif len(holding) == len(holders) and complete:
        carried = "which every node carries (an NLB cluster address?)"
        advice = 'use mode = "services"'
    else:
        carried = f"which {len(holding)} nodes carry ({', '.join(holding)})"
        advice = "point the name at the services node alone"
    return f"{host} resolves to {shown}, {carried}: {_CANNOT_TELL}; {advice}"


def services_running(names: Iterable[str]) -> tuple[bool, str]:
    """Whether every named Windows service is running here."""
    if sys.platform != "win32":
        return False, 'mode = "services" needs Windows; treating this node as standby'
    import psutil

    for name in names:
        try:
            status = psutil.win_service_get(name).status()
        except Exception as exc:  # noqa: BLE001 - psutil raises several kinds for a missing service
            return False, f"service {name}: {exc}"
        if status != "running":
            return False, f"service {name} is {status}"
    return True, "every Integrify service runs here"


def installed_services() -> list[InstalledService]:
    """Every Windows service installed here, from the Service Control Manager (Windows only)."""
    import psutil

    try:
        return [
            InstalledService(name=service.name(), display_name=service.display_name())
            for service in psutil.win_service_iter()
        ]
    except (OSError, psutil.Error) as exc:
        message = f"[active] services: cannot list this machine's Windows services: {exc}"
        raise ConfigError(message) from exc


# The lister RoleDetector uses unless told otherwise: None where there is no Windows service
# manager to ask.
PLATFORM_SERVICES: Callable[[], Iterable[InstalledService]] | None = (
    installed_services if sys.platform == "win32" else None
)


def _services_problem(wanted: Iterable[str], installed: Iterable[InstalledService]) -> str | None:
    """Why a configured name is not an installed service's short name, or None."""
    services = list(installed)
    names = {s.name.casefold() for s in services}
    for name in wanted:
        if name.casefold() in names:
            continue
        for service in services:
            if service.display_name.casefold() == name.casefold():
                return f'services: "{name}" is a display name; use the service name {service.name}'
        found = sorted(
            (
                s
                for s in services
                if "integrify" in s.name.casefold() or "integrify" in s.display_name.casefold()
            ),
            key=lambda s: s.name.casefold(),
        )
        listed = (
            "installed services that mention Integrify: "
            + ", ".join(f'{s.name} ("{s.display_name}")' for s in found)
            if found
            else "no installed service mentions Integrify"
        )
        return f'services: no service named "{name}" here; {listed}'
    return None


class RoleDetector:
    """Answers "are we the services node?" from the ``[active]`` settings."""

    def __init__(
        self,
        config: ActiveConfig,
        *,
        resolver: Callable[[str], set[str]] | None = None,
        addresses: Callable[[], set[str]] | None = None,
        services: Callable[[Iterable[str]], tuple[bool, str]] = services_running,
        installed: Callable[[], Iterable[InstalledService]] | None = PLATFORM_SERVICES,
    ) -> None:
        """Use ``config``; the probes can be replaced in tests.

        ``installed`` lists the Windows services for :meth:`validate`; None means this system
        has none to list (it is not Windows). The resolver and the address list default to
        this module's :func:`resolve` and :func:`local_addresses`, looked up now.
        """
        self._config = config
        self._resolver = resolver or resolve
        self._addresses = addresses or local_addresses
        self._services = services
        self._installed = installed

    def validate(self) -> None:
        """Refuse, once at start-up, a setting that can never tell the services node.

        ``dns``: ``services_host`` must resolve, and not to a loopback or unspecified address
        (every node holds those). ``services``: only on Windows, and each name must be an
        installed service's short name, not its display name. Raises :class:`ConfigError`.
        """
        config = self._config
        if config.mode == "dns":
            host = config.services_host or ""
            try:
                targets = self._resolver(host)
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"[active] services_host: {host} does not resolve: {exc}"
                ) from exc
            if not targets:
                raise ConfigError(f"[active] services_host: {host} resolves to no address")
            problem = dns_problem(targets, holders={}, host=host)
            if problem:
                raise ConfigError(f"[active] services_host: {problem}")
        elif config.mode == "services":
            if self._installed is None:
                raise ConfigError(
                    '[active] mode = "services" needs Windows (it asks the Windows service '
                    'manager); on this system use mode = "dns" or "always"'
                )
            problem = _services_problem(config.services, self._installed())
            if problem:
                raise ConfigError(f"[active] {problem}")

    def probe(self) -> Probe:
        """Ask once; never raises: anything that went wrong is standby, with the reason."""
        config = self._config
        if config.mode == "always":
            return Probe(active=True, reason='mode = "always"')
        if config.mode == "dns":
            return self._probe_dns(config.services_host or "")
        running, reason = self._services(config.services)
        return Probe(active=running, reason=reason)

    def _probe_dns(self, host: str) -> Probe:
        try:
            targets = self._resolver(host)
            here = self._addresses()
        except (OSError, ValueError) as exc:
            return Probe(active=False, reason=f"{host} does not resolve: {exc}")
        if any(_everywhere(a) for a in targets):
            # Every node holds a loopback address: claiming it would make every node active.
            reason = f"{host} resolves to {_listed(targets)}, which every node holds"
            return Probe(active=False, reason=reason)
        mine = targets & here
        if mine:
            return Probe(active=True, reason=f"{host} resolves to {_listed(mine)} here")
        return Probe(active=False, reason=f"{host} resolves to {_listed(targets)}, not here")


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


RoleName = Literal["active", "standby", "starting"]  # "starting": before the first role check
ROLE_NAMES: tuple[RoleName, ...] = ("active", "standby", "starting")


@dataclass(frozen=True)
class Role:
    """The agent's role as the view shows it."""

    name: RoleName
    reason: str | None = None


log = get_logger(__name__)

OVERRIDE_FLAG = "--as-services-node"


@dataclass(frozen=True)
class RoleDecision:
    """Whether this node acts as the services node now, and why."""

    active: bool
    reason: str
    overridden: bool = False  # standby by [active], active because the operator said so

    @property
    def name(self) -> Literal["active", "standby"]:
        """``active`` or ``standby``, as reports and JSON say it."""
        return "active" if self.active else "standby"


def decide(
    config: Config, *, override: bool = False, detector: RoleDetector | None = None
) -> RoleDecision:
    """Ask ``[active]`` once; raises ConfigError when its mode cannot work on this site."""
    if detector is None:
        from jobsync.role import RoleDetector

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
