"""The configuration as typed, frozen values: what the rest of jobsync reads.

Each ``[table]`` of ``jobsync.toml`` is one dataclass here, with its documented defaults, and
one parser in :mod:`jobsync.config.sections` (peers in :mod:`jobsync.config.sections`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from jobsync.credentials import Secret
from jobsync.jobs_folder import name_key

DEFAULT_PATTERN = "*.jobs"
DEFAULT_TIMEOUT_SECONDS = 15.0
DEFAULT_MAX_DELETE_RATIO = 0.5
DEFAULT_SMB_PORT = 445
ActiveMode = Literal["always", "dns", "services"]
ACTIVE_MODES: tuple[ActiveMode, ...] = ("always", "dns", "services")


@dataclass(frozen=True)
class UncPath:
    r"""A peer folder reached over SMB: ``\\host\share\folder``."""

    host: str
    share: str
    folder: str  # backslash-separated path inside the share; "" for the share's root

    def __str__(self) -> str:
        """The path as Windows writes it."""
        tail = f"\\{self.folder}" if self.folder else ""
        return f"\\\\{self.host}\\{self.share}{tail}"


@dataclass(frozen=True, kw_only=True)
class PeerConfig:
    """One node that receives copies of the jobs folder."""

    name: str
    path: str  # as the administrator wrote it
    target: UncPath | Path  # a share folder reached over SMB, or a local or mounted folder
    port: int = DEFAULT_SMB_PORT
    username: str | None = None
    password: Secret | None = None
    password_file: Path | None = None  # where jobsync secret set seals the password (Windows)
    encrypt: bool = True
    address: str | None = None  # the IP address the services name gets when this is the node
    admin_share: str = "C$"  # the share holding the node's Windows folder (failover, hosts file)

    @property
    def location(self) -> str:
        """Where the peer's jobs folder is, as the operator wrote it."""
        return self.path


@dataclass(frozen=True, kw_only=True)
class WatchConfig:
    """``[watch]``: how the agent follows the source folder."""

    debounce_ms: int = 500
    rescan_seconds: float = 60.0
    retry_max_seconds: float = 60.0


@dataclass(frozen=True, kw_only=True)
class ActiveConfig:
    """``[active]``: how the agent knows this node is the services node."""

    mode: ActiveMode = "always"
    services_host: str | None = None
    services: tuple[str, ...] = ()
    check_seconds: float = 10.0
    confirmations: int = 3


@dataclass(frozen=True, kw_only=True)
class HealthConfig:
    """``[health]``: the agent's HTTP endpoint; off when ``listen`` is absent."""

    listen: tuple[str, int] | None = None
    max_lag_seconds: float = 300.0


@dataclass(frozen=True, kw_only=True)
class ServiceConfig:
    """``[service]``: the Windows service that runs the agent (through WinSW)."""

    id: str = "jobsync"
    name: str = "jobsync"
    description: str = "Replicates Integrify's scheduled jobs to the other nodes (jobsync watch)."
    account: str | None = None  # a gMSA (CORP\\name$) or a domain account; none: LocalSystem
    python: str | None = None  # the python.exe to run; default: the one running jobsync
    stop_timeout_seconds: float = 15.0
    log_dir: Path | None = None  # default: "logs" beside the config file


@dataclass(frozen=True, kw_only=True)
class ScheduleConfig:
    """``[schedule]``: the scheduled task that runs ``jobsync push`` as a fallback."""

    task_name: str = "jobsync push"
    interval_minutes: int = 5
    boot_delay_minutes: int = 2
    time_limit_minutes: int = 30
    account: str | None = None  # default: the service's account


REPOINT_METHODS = ("dns", "hosts", "none")


@dataclass(frozen=True, kw_only=True)
class DnsConfig:
    """``[failover.dns]``: the DNS server that takes signed dynamic updates (RFC 2136, GSS-TSIG)."""

    server: str
    zone: str
    port: int = 53
    ttl_seconds: int = 300
    kerberos_host: str | None = None  # the server's Kerberos name; default: the zone's SOA MNAME


@dataclass(frozen=True, kw_only=True)
class FailoverConfig:
    """``[failover]``: what ``jobsync failover`` moves and how it proves the move."""

    services: tuple[str, ...]  # Integrify's Windows services, in the order they start
    repoint: str  # "dns", "hosts" or "none" (a cluster's Network Name owns the services name)
    services_name: str | None = None
    healthcheck: str = "http://{address}/healthcheck"  # {address}: a node's address or the name
    dns: DnsConfig | None = None
    old_node_unreachable: str = "refuse"  # or "continue": go on when the old node cannot be fenced
    stop_timeout_seconds: float = 60.0
    start_timeout_seconds: float = 120.0
    healthcheck_timeout_seconds: float = 180.0
    singleton_check_seconds: float = 60.0  # how often each agent asks where the services run


INTEGRIFY_CONFIG_FILES = (r"app\settings\settings.config", r"app\webserver\server-config.json")


@dataclass(frozen=True, kw_only=True)
class FleetCheckConfig:
    """``[fleet_check]``: what ``jobsync check --fleet`` compares and probes on every node.

    Key paths name one value in one file: ``settings.config:appSettings/AttachmentsPath``.
    """

    install: str  # Integrify's install folder, the same Windows path on every node (C:\...)
    files: tuple[str, ...] = INTEGRIFY_CONFIG_FILES  # relative to ``install``
    differs_by_design: tuple[str, ...] = ()  # key paths each node may set its own way
    shared_folders: tuple[str, ...] = ()  # key paths of the attachments, reports, temp folders
    share_logon: PeerConfig | None = None  # how to reach them; None: as jobsync's own account
    app_pools: tuple[str, ...] = ()  # IIS application pools to compare; none: every pool
    public_url: str | None = None  # the site through the balancer (https://integrify.example.com)
    affinity_cookie: str | None = None  # the balancer's sticky cookie; None: the usual names
    certificate_days: int = 14  # a certificate expiring sooner is a FAIL
    every_minutes: float = 60.0  # how often the agent runs it; 0: never


DEFAULT_KEEP_DAYS = 365  # a job that runs once a year is missed within a year


@dataclass(frozen=True, kw_only=True)
class RetentionConfig:
    """``[retention]``: days kept copies stay in ``trash/`` and ``backup/`` (0: for ever)."""

    trash_days: int = DEFAULT_KEEP_DAYS
    backup_days: int = DEFAULT_KEEP_DAYS


@dataclass(frozen=True, kw_only=True)
class Config:
    """The whole configuration of one node."""

    path: Path
    node: str
    source: Path
    pattern: str = DEFAULT_PATTERN
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_delete_ratio: float = DEFAULT_MAX_DELETE_RATIO
    peers: tuple[PeerConfig, ...] = ()
    state_dir: Path = Path("state")
    watch: WatchConfig = WatchConfig()
    active: ActiveConfig = ActiveConfig()
    health: HealthConfig = HealthConfig()
    service: ServiceConfig = ServiceConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    retention: RetentionConfig = RetentionConfig()
    failover: FailoverConfig | None = None  # absent: jobsync failover says what to add
    fleet_check: FleetCheckConfig | None = None  # absent: jobsync check --fleet says what to add

    @property
    def target_peers(self) -> tuple[PeerConfig, ...]:
        """The peers this node pushes to: every peer but the node itself."""
        me = name_key(self.node)
        return tuple(p for p in self.peers if name_key(p.name) != me)

    def secrets(self) -> tuple[str, ...]:
        """Every secret value the config holds, for log redaction."""
        logons = [*self.peers]
        if self.fleet_check is not None and self.fleet_check.share_logon is not None:
            logons.append(self.fleet_check.share_logon)
        return tuple(p.password.value for p in logons if p.password is not None)
