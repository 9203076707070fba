r"""What every node shows ``jobsync check --fleet``, read at once and bounded in time.

Every node is read at once (:func:`gather`): Integrify's files, IIS's
``applicationHost.config``, the hosts file and jobsync's scheduled task through its admin
share, its services and their accounts over MS-SCMR (the failover's client), its
``node.json`` through its jobs share, its healthcheck; beside them the jobs (reconcile, dry),
who owns them, and the public URL through the balancer. Then each shared folder gets a write
probe, and a drive letter one node uses is asked whether it is that node's own disk (it then
has an ``X$`` admin share). Every call is bounded by ``timeout_seconds``; a node whose admin
share cannot be opened is recorded as unreachable and asked nothing more. Nothing here
judges: :mod:`jobsync.fleet_check` does.
"""

from __future__ import annotations

import http.client
import secrets
import socket
import ssl
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from jobsync.config.model import Config, FleetCheckConfig, PeerConfig, UncPath
from jobsync.config.reader import parse_unc
from jobsync.errors import (
    ConfigError,
    JobsyncError,
    PeerError,
    PeerFileNotFoundError,
    PeerPathError,
)
from jobsync.failover.dns_update import DnsServer, lookup
from jobsync.failover.nodes import (
    FleetNode,
    Probe,
    ServiceOpener,
    fleet_nodes,
    healthcheck_url,
    http_connection,
    http_failure,
    open_services,
    probe,
)
from jobsync.failover.steps import Ownership, read_ownership
from jobsync.integrify_files import (
    ParsedFile,
    TaskDefinition,
    file_name,
    find_value,
    key_path,
    looks_like_path,
    parse_file,
    pool_identities,
    task_definition,
)
from jobsync.jobs_folder import name_key
from jobsync.node import NODE_FILE, Identity, account_name, identity_from_bytes
from jobsync.reconcile import ReconcileOptions, reconcile
from jobsync.result import ReconcileResult
from jobsync.transport import Opener, default_opener, each_peer
from jobsync.transport.base import FileWrite

IIS_CONFIG = "Windows/System32/inetsrv/config/applicationHost.config"
HOSTS_FILE = "Windows/System32/drivers/etc/hosts"
TASKS_FOLDER = "Windows/System32/Tasks"  # Task Scheduler keeps each task's XML here, by name


@dataclass
class NodeFacts:
    """What one node showed; a field that is a ``str`` says why it could not be seen."""

    node: FleetNode
    error: str | None = None  # the node could not be reached: one FAIL line, nothing else
    files: dict[str, ParsedFile | str] = field(default_factory=dict)  # by relative path
    pools: dict[str, str] | str = "not read"
    hosts: bytes | str = "not read"
    services: dict[str, tuple[bool, str]] | str = "not asked"  # installed: (running, account)
    agent: str | None = None  # the jobsync service's state; None: not installed there
    task: TaskDefinition | str | None = "not read"  # the fallback task; None: not registered
    health: Probe | None = None
    identity: Identity | str | None = None  # node.json; None: jobsync never ran there
    drives: dict[str, bool] = field(default_factory=dict)  # letter -> the node has a X$ share


@dataclass(frozen=True)
class Gathered:
    """Everything the judging reads."""

    config: Config
    check: FleetCheckConfig
    nodes: tuple[NodeFacts, ...]
    jobs: ReconcileResult | str
    ownership: Ownership | str
    public: PublicAnswer | None
    name_addresses: tuple[str, ...] | str  # the services name as DNS answers it; str: why not
    at: float  # when the nodes were read (Unix time)
    shares: dict[str, ShareProbe] = field(default_factory=dict)  # by path key


@dataclass(frozen=True)
class Reach:
    """How the check reaches the nodes (tests inject failing ones)."""

    opener: Opener = default_opener
    services: ServiceOpener = open_services


def fleet_check_config(config: Config) -> FleetCheckConfig:
    """``[fleet_check]``, or the one-line error that says what to add."""
    if config.fleet_check is None:
        raise ConfigError(
            f"{config.path}: no [fleet_check] table: add one with install = 'C:\\integrify' "
            "(Integrify's folder on every node; see docs/fleet-check.md)"
        )
    return config.fleet_check


def install_place(check: FleetCheckConfig) -> tuple[str, str]:
    r"""``C:\integrify`` -> (``C$``, ``integrify``): the admin share and the folder in it."""
    drive, _, rest = check.install.partition(":")
    return f"{drive.upper()}$", rest.strip("\\").replace("\\", "/")


def gather_node(
    node: FleetNode, config: Config, check: FleetCheckConfig, reach: Reach
) -> NodeFacts:
    """Read one node; never raises for the node's own failures."""
    facts = read_files(node, config, check, reach)
    if facts.error is not None:
        return facts
    _ask_services(facts, config, reach)
    if config.failover is not None:
        try:
            url = healthcheck_url(config.failover, node.address())
            facts.health = probe(url, timeout=config.timeout_seconds)
        except ConfigError as exc:
            facts.health = Probe(config.failover.healthcheck, error=str(exc))
    facts.identity = _identity(node, config, reach)
    return facts


def read_files(node: FleetNode, config: Config, check: FleetCheckConfig, reach: Reach) -> NodeFacts:
    """A node's Integrify files, ``applicationHost.config`` and hosts file, by its admin shares."""
    facts = NodeFacts(node)
    timeout = config.timeout_seconds
    install_share, install_folder = install_place(check)
    windows_share = node.smb.admin_share
    files = [f"{install_folder}/{f}".replace("\\", "/").lstrip("/") for f in check.files]
    wanted = {install_share: list(files)}
    task = task_file(config)
    wanted.setdefault(windows_share, []).extend([IIS_CONFIG, HOSTS_FILE, task])
    read: dict[str, bytes | PeerError] = {}
    for share, paths in wanted.items():
        try:
            peer = reach.opener(node.on_share(share), timeout)
        except PeerError as exc:
            if share == windows_share:
                facts.error = f"cannot open \\\\{node.host}\\{share}: {exc}"
                return facts
            read |= dict.fromkeys(paths, exc)
            continue
        try:
            read |= peer.read_files(paths)
        except PeerError as exc:
            read |= dict.fromkeys(paths, exc)
        finally:
            peer.close()
    for relative, path in zip(check.files, files, strict=True):
        data = read[path]
        facts.files[relative] = (
            parse_file(file_name(relative), data) if isinstance(data, bytes) else _why(data)
        )
    iis = read[IIS_CONFIG]
    try:
        facts.pools = pool_identities(iis) if isinstance(iis, bytes) else _why(iis)
    except ValueError as exc:
        facts.pools = str(exc)
    hosts = read[HOSTS_FILE]
    facts.hosts = hosts if isinstance(hosts, bytes) else _why(hosts)
    facts.task = _task(read[task])
    return facts


def task_file(config: Config) -> str:
    r"""Where the node keeps the fallback task's XML (a task ``\jobsync\push`` in a folder)."""
    name = config.schedule.task_name.replace("\\", "/").strip("/")
    return f"{TASKS_FOLDER}/{name}"


def _task(data: bytes | PeerError) -> TaskDefinition | str | None:
    if isinstance(data, PeerFileNotFoundError):
        return None
    if isinstance(data, PeerError):
        return str(data)
    try:
        return task_definition(data)
    except ValueError as exc:
        return f"its file does not read as a task: {exc}"


def discover_folders(config: Config) -> list[tuple[str, str, str]]:
    """Every value in Integrify's files that looks like a folder path: (node, key path, value).

    For an administrator naming ``shared_folders``; only path-like values are shown.
    """
    check = fleet_check_config(config)
    nodes = fleet_nodes(config)
    read = each_peer(nodes, lambda n: read_files(n, config, check, Reach()), name="discover")
    found = []
    for facts in read:
        for copy in facts.files.values():
            if isinstance(copy, ParsedFile) and copy.values is not None:
                found += [
                    (facts.node.name, key_path(copy.name, key), value)
                    for key, value in copy.values.items()
                    if looks_like_path(value)
                ]
    return found


def _why(error: PeerError) -> str:
    return "missing" if isinstance(error, PeerFileNotFoundError) else str(error)


def _ask_services(facts: NodeFacts, config: Config, reach: Reach) -> None:
    services = config.failover.services if config.failover is not None else ()
    try:
        with reach.services(facts.node, config.timeout_seconds) as manager:
            found: dict[str, tuple[bool, str]] = {}
            for service in services:
                state = manager.state(service)
                if state is not None:
                    found[service] = (state != "stopped", manager.account(service) or "?")
            facts.services = found
            facts.agent = manager.state(config.service.id)
    except PeerError as exc:
        facts.services = str(exc)


def _identity(node: FleetNode, config: Config, reach: Reach) -> Identity | str | None:
    """The node's ``node.json``; ``None`` where jobsync never ran.

    This node's is read from its own folder when the config does not list it among the peers.
    """
    listed = any(name_key(p.name) == name_key(node.name) for p in config.peers)
    if node.here and not listed:
        try:
            return identity_from_bytes((config.source / NODE_FILE).read_bytes())
        except OSError:
            return None
    try:
        peer = reach.opener(replace(node.smb, name=node.name), config.timeout_seconds)
    except PeerError as exc:
        return str(exc)
    try:
        data = peer.read_files([NODE_FILE])[NODE_FILE]
    except PeerError as exc:
        return str(exc)
    finally:
        peer.close()
    return identity_from_bytes(data) if isinstance(data, bytes) else None


def gather(config: Config, *, reach: Reach | None = None) -> Gathered:
    """Read every node, the jobs, their owner and the public URL at once; then the shares."""
    check = fleet_check_config(config)
    reach = reach or Reach()
    nodes = fleet_nodes(config)
    with ThreadPoolExecutor(max_workers=len(nodes) + 3, thread_name_prefix="fleet") as pool:
        facts = [pool.submit(gather_node, n, config, check, reach) for n in nodes]
        jobs = pool.submit(_jobs, config, reach.opener)
        name = pool.submit(_name_addresses, config)
        ownership = pool.submit(_ownership, config, reach.opener)
        public = (
            pool.submit(probe_public, check.public_url, timeout=config.timeout_seconds)
            if check.public_url
            else None
        )
        gathered = Gathered(
            config=config,
            check=check,
            nodes=tuple(f.result() for f in facts),
            jobs=jobs.result(),
            ownership=ownership.result(),
            public=public.result() if public is not None else None,
            name_addresses=name.result(),
            at=time.time(),
        )
    return _probe_folders(gathered, reach)


def folder_values(facts: NodeFacts, check: FleetCheckConfig) -> list[tuple[str, str | None]]:
    """Each configured shared folder's key path and its value on the node (``None``: none)."""
    parsed = [f for f in facts.files.values() if isinstance(f, ParsedFile)]
    return [(item, find_value(parsed, item)[1]) for item in check.shared_folders]


def _name_addresses(config: Config) -> tuple[str, ...] | str:
    """The services name's addresses from its authority: the DNS server, else this resolver."""
    failover = config.failover
    if failover is None or failover.services_name is None:
        return "no services_name in [failover]"
    name = failover.services_name
    try:
        if failover.dns is not None:
            return lookup(
                DnsServer.of(failover.dns), name, timeout=config.timeout_seconds
            ).addresses
        infos = socket.getaddrinfo(name, None, socket.AF_INET, socket.SOCK_STREAM)
        return tuple(sorted({str(info[4][0]) for info in infos}))
    except (JobsyncError, OSError, UnicodeError) as exc:
        return f"{name} does not resolve from {config.node} ({exc})"


def _jobs(config: Config, opener: Opener) -> ReconcileResult | str:
    try:
        return reconcile(
            config, peers=config.target_peers, options=ReconcileOptions(), opener=opener
        )
    except JobsyncError as exc:
        return str(exc)


def _ownership(config: Config, opener: Opener) -> Ownership | str:
    try:
        return read_ownership(config, opener=opener)
    except JobsyncError as exc:
        return str(exc)


def _folders_to_ask(gathered: Gathered) -> tuple[dict[str, str], list[tuple[NodeFacts, str]]]:
    """The distinct UNC folders (by path key), and each node's drive letters."""
    unc: dict[str, str] = {}
    drives: dict[tuple[str, str], tuple[NodeFacts, str]] = {}
    for facts in gathered.nodes:
        for _item, value in folder_values(facts, gathered.check):
            if value is None:
                continue
            if (target := parse_unc(value)) is not None:
                unc.setdefault(name_key(str(target)), value)
            elif value[1:2] == ":":
                drives[facts.node.name, value[0].upper()] = (facts, value[0].upper())
    return unc, list(drives.values())


def _probe_folders(gathered: Gathered, reach: Reach) -> Gathered:
    """The write probe of every UNC shared folder, and which drive letters are local disks."""
    check, config = gathered.check, gathered.config
    unc, drive_asks = _folders_to_ask(gathered)
    logon = check.share_logon or PeerConfig(
        name="shared folders", path="", target=UncPath("", "", "")
    )

    def share(value: str) -> ShareProbe:
        target = parse_unc(value)
        assert target is not None  # noqa: S101 - chosen above
        peer_config = replace(logon, name=value, path=value, target=target)
        return probe_share(peer_config, timeout=config.timeout_seconds, opener=reach.opener)

    def drive(ask: tuple[NodeFacts, str]) -> None:
        facts, letter = ask
        try:
            reach.opener(facts.node.on_share(f"{letter}$"), config.timeout_seconds).close()
            facts.drives[letter] = True
        except PeerPathError:  # no such share: not a disk of that node
            facts.drives[letter] = False
        except PeerError:
            pass  # could not tell: the line says both possibilities

    with ThreadPoolExecutor(max_workers=max(1, len(unc) + len(drive_asks))) as pool:
        probes: dict[str, Future[ShareProbe]] = {k: pool.submit(share, v) for k, v in unc.items()}
        drives = [pool.submit(drive, ask) for ask in drive_asks]
    for done in drives:
        done.result()  # re-raises a fault of jobsync's own
    return replace(gathered, shares={k: f.result() for k, f in probes.items()})


# -- the probes of the shared folders and of the public URL ----------------------------------


@dataclass(frozen=True)
class ShareProbe:
    """A shared folder, written to, read back and cleaned up as ``account``; or why not."""

    folder: str  # as Integrify's file names it
    account: str  # whose rights the probe proved
    error: str | None = None
    free_bytes: int | None = None


_PROBE_DATA = b"jobsync check --fleet: a write probe, removed at once; safe to delete\r\n"


def probe_share(peer_config: PeerConfig, *, timeout: float, opener: Opener) -> ShareProbe:
    """Create, read back and delete a file Integrify never names; the free space too."""
    folder = peer_config.path
    account = peer_config.username or account_name()
    try:
        peer = opener(peer_config, timeout)
    except PeerError as exc:
        return ShareProbe(folder, account, error=f"cannot be opened: {exc}")
    token = secrets.token_hex(6)
    name = f"jobsync-probe-{token}.tmp"
    write = FileWrite(
        path=name, temp=f"jobsync-probe-{token}.part", data=_PROBE_DATA, mtime_ns=time.time_ns()
    )
    try:
        (outcome,) = peer.write_files([write])
        if outcome.error is not None:
            return ShareProbe(folder, account, error=f"cannot be written: {outcome.error}")
        back = peer.read_files([name])[name]
        removed = peer.remove_files([name])[name]
        if back != _PROBE_DATA:
            return ShareProbe(folder, account, error="a file written there reads back otherwise")
        if removed is not None:
            return ShareProbe(
                folder, account, error=f"a file written there cannot be deleted: {removed}"
            )
        return ShareProbe(folder, account, free_bytes=peer.free_bytes())
    except PeerError as exc:
        return ShareProbe(folder, account, error=str(exc))
    finally:
        peer.close()


@dataclass(frozen=True)
class PublicAnswer:
    """The public URL's ``/healthcheck`` through the balancer: status, certificate, cookies."""

    url: str
    status: int | None = None
    error: str | None = None
    certificate_expires: float | None = None  # Unix time; None over plain HTTP
    cookies: tuple[str, ...] = ()  # the names of the cookies the answer sets


def probe_public(site: str, *, timeout: float) -> PublicAnswer:
    """GET ``<site>/healthcheck`` once, as a browser would reach it (certificate verified)."""
    url = site.rstrip("/") + "/healthcheck"
    parts = urlsplit(url)
    connection = http_connection(parts, timeout=timeout)
    try:
        connection.connect()  # the certificate is read before an answer may close the socket
        expires = None
        if isinstance(connection.sock, ssl.SSLSocket):
            not_after = (connection.sock.getpeercert() or {}).get("notAfter")
            expires = ssl.cert_time_to_seconds(str(not_after)) if not_after else None
        connection.request("GET", parts.path, headers={"User-Agent": "jobsync"})
        response = connection.getresponse()
        cookies = tuple(
            header.split("=", 1)[0].strip()
            for header in response.headers.get_all("Set-Cookie") or []
        )
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        return PublicAnswer(url, error=http_failure(exc))
    finally:
        connection.close()
    return PublicAnswer(url, status=response.status, certificate_expires=expires, cookies=cookies)
