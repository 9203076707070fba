r"""The nodes a failover touches, how each is reached, and what every step is given.

A node's SMB peer entry gives its host, port and account; the failover reaches the same host's
service manager (``IPC$\svcctl``) and its admin share (``C$`` by default) with them, so the
account in the config must be a local administrator on every node, as Windows requires for
remote service control. This node is reached the same way: through its own ``[[peers]]`` entry
when the config lists it (an identical config on every node does), else ``\\localhost``.

Integrify's ``/healthcheck``, asked over HTTP(S): 200 is healthy, anything else is not.
No public description of the answer's body exists, so only the status counts. A probe through
the services name connects to the address the name's authority gives (the DNS server or the
hosts files), not to whatever this machine's resolver cache still holds, and sends the name as
the ``Host`` (and TLS server name), so it asks the same site a client would.

Integrify's services on one node, as the failover needs them: running or not, stop, start.
A thin layer over the service-control client (:mod:`jobsync.transport.smb.svcctl`) that puts
the failover's rules in one place: a service missing on a node is not running there; stopping
or starting waits for the state within a bound and fails in words when it does not come; a
server that cannot change a start type answers a note for the result, not an error.

What every step of a failover is given: the config, the nodes, and what earlier steps found.

The jobsync agent on this node, set aside for the length of a failover.
The agent holds the node's work lock for as long as it runs, and a takeover must not share the
jobs folder with it. Rather than send the administrator to stop it first (one more manual step
at 3 a.m.), the failover stops the agent's Windows service (``[service] id``) through the same
service manager it uses for Integrify's services, takes the lock, and starts the agent again
when it is done, whatever the outcome: the agent then finds its role by itself (active on the
new services node). A lock held by anything else (a push of the scheduled task, another
failover) is waited for briefly, then named in the refusal.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from typing import Final, TypeVar
from urllib.parse import SplitResult, urlsplit

from jobsync.config.model import Config, FailoverConfig, PeerConfig, UncPath
from jobsync.errors import (
    ConfigError,
    PeerError,
    PeerIOError,
    PeerSessionLostError,
    SafetyRefusalError,
)
from jobsync.jobs_folder import name_key
from jobsync.logs import get_logger
from jobsync.node import WorkLock
from jobsync.result import StepOutcome
from jobsync.transport import Opener, default_opener
from jobsync.transport.smb.svcctl import (
    ServiceControlUnsupportedError,
    ServiceManager,
    ServiceNotFoundError,
    ServiceState,
    StartType,
)

HOSTS_FOLDER = r"Windows\System32\drivers\etc"
T = TypeVar("T")


def again_if_session_lost(work: Callable[[], T]) -> T:
    """``work()``, once more if the server ended the session (the peer logs on again).

    A server may end a session or close a share under a client (an expired ticket; Samba did
    while two failovers worked on it at once): the work here is idempotent, so it is redone.
    """
    try:
        return work()
    except PeerSessionLostError:
        return work()


@dataclass(frozen=True)
class FleetNode:
    """One node: its name, its SMB entry, and whether it is the one running the failover."""

    name: str
    smb: PeerConfig
    here: bool

    @property
    def host(self) -> str:
        """The host name or address its SMB path names."""
        target = self.smb.target
        assert isinstance(target, UncPath)  # noqa: S101 - fleet_nodes keeps only SMB entries
        return target.host

    def admin(self, folder: str) -> PeerConfig:
        """The node's ``folder`` under its admin share, as a peer jobsync can open."""
        return self.on_share(self.smb.admin_share, folder)

    def on_share(self, share: str, folder: str = "") -> PeerConfig:
        r"""``\\host\share\folder`` of this node, logged on to as its ``[[peers]]`` entry says."""
        unc = UncPath(self.host, share, folder)
        return replace(self.smb, name=self.name, path=str(unc), target=unc)

    def address(self) -> str:
        """The IP address the services name gets when this node is the services node."""
        if self.smb.address is not None:
            return self.smb.address
        try:
            return str(ipaddress.ip_address(self.host))
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(self.host, None, socket.AF_INET, socket.SOCK_STREAM)
        except OSError as exc:
            raise ConfigError(
                f"node {self.name}: its host {self.host} does not resolve ({exc}); give its "
                '[[peers]] entry an address = "..."'
            ) from None
        return str(infos[0][4][0])


def fleet_nodes(config: Config) -> tuple[FleetNode, ...]:
    """The nodes, the one running the failover first; all SMB (service control needs SMB)."""
    me = name_key(config.node)
    local = [p.name for p in config.peers if not isinstance(p.target, UncPath)]
    if local:
        raise ConfigError(
            f"jobsync failover and check --fleet need every node reached over SMB "
            f"(\\\\host\\share\\folder): "
            f"{', '.join(local)} is a local folder"
        )
    mine = [p for p in config.peers if name_key(p.name) == me]
    here = mine[0] if mine else _localhost(config.node)
    nodes = [FleetNode(config.node, here, here=True)]
    nodes += [FleetNode(p.name, p, here=False) for p in config.target_peers]
    return tuple(nodes)


def _localhost(node: str) -> PeerConfig:
    unc = UncPath("localhost", "C$", "")
    return PeerConfig(name=node, path=str(unc), target=unc)


def failover_config(config: Config) -> FailoverConfig:
    """``[failover]``, or the one-line error that says what to add."""
    if config.failover is None:
        raise ConfigError(
            f"{config.path}: no [failover] table: add one with services = [...] and repoint = "
            '"dns", "hosts" or "none" (see docs/failover.md)'
        )
    return config.failover


def healthcheck_url(failover: FailoverConfig, address: str) -> str:
    """The healthcheck URL of the node at ``address`` (or of the services name)."""
    host = f"[{address}]" if ":" in address else address
    return failover.healthcheck.replace("{address}", host)


HEALTHY = 200
_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Probe:
    """One answer (or none) from a healthcheck URL."""

    url: str
    status: int | None = None
    error: str | None = None
    via: str | None = None  # the address connected to, when not the URL's own host

    @property
    def healthy(self) -> bool:
        """Whether it answered 200."""
        return self.status == HEALTHY

    def describe(self) -> str:
        """E.g. "http://10.0.0.12/healthcheck answered 200"."""
        where = self.url if self.via is None else f"{self.url} (at {self.via})"
        if self.status is not None:
            return f"{where} answered {self.status}"
        return f"{where}: {self.error}"


class _Pinned(http.client.HTTPSConnection):
    """HTTPS to a chosen address, verifying the certificate for the URL's host name."""

    def __init__(self, host: str, port: int | None, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def http_connection(
    parts: SplitResult, *, timeout: float, address: str | None = None
) -> http.client.HTTPConnection:
    """A connection for the URL's scheme (HTTPS verifies the certificate), not yet open.

    ``address`` overrides where it connects; the URL's host name stays what is verified.
    """
    host = parts.hostname or ""
    if parts.scheme != "https":
        return http.client.HTTPConnection(address or host, parts.port, timeout=timeout)
    if address is not None:
        return _Pinned(host, parts.port, address=address, timeout=timeout)
    return http.client.HTTPSConnection(host, parts.port, timeout=timeout)


def probe(url: str, *, timeout: float, address: str | None = None) -> Probe:
    """GET ``url`` once, within ``timeout``; ``address`` overrides where it connects."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    connection = http_connection(parts, timeout=timeout, address=address)
    try:
        connection.request("GET", path, headers={"Host": parts.netloc, "User-Agent": "jobsync"})
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return Probe(url, error=http_failure(exc), via=address)
    finally:
        connection.close()
    return Probe(url, status=status, via=address)


def wait_healthy(
    url: str,
    *,
    within: float,
    timeout: float,
    address: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Probe:
    """Probe until it answers 200 or ``within`` seconds have passed; the last answer."""
    deadline = clock() + within
    while True:
        answer = probe(url, timeout=min(timeout, max(deadline - clock(), 0.1)), address=address)
        if answer.healthy or clock() >= deadline:
            return answer
        sleep(_POLL_SECONDS)


def http_failure(exc: BaseException) -> str:
    """Why an HTTP(S) request got no answer, in words."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"its certificate is not trusted ({exc.verify_message})"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    return str(exc) or type(exc).__name__


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

    def account(self, service: str) -> str | None:
        """The account the service runs as, ``None`` where it is not installed."""
        try:
            return self._manager.config(service).account
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
