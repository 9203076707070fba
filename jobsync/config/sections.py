"""The tables of ``jobsync.toml``: ``[[peers]]``, ``[failover]`` and the optional ones.

One ``[[peers]]`` entry: where the peer's jobs folder is and how to log on to it.
A UNC path makes an SMB peer; anything else is a local or mounted folder, which takes none of
the SMB keys. A user name needs a password source; without one, the running account logs on.

``[fleet_check]``: what ``jobsync check --fleet`` compares (Integrify's files, its key paths) and
probes (the shared folders, the balancer); optional like ``[failover]``.

``[failover]``: what ``jobsync failover`` moves, where the services name lives, how it proves it.
The table is optional (a site may keep the manual runbook), but once present it must say which
services move and how the services name follows them: nothing here is guessed.

The optional tables of ``jobsync.toml``.
``[watch]``, ``[active]``, ``[health]``, ``[service]``, ``[schedule]`` and ``[retention]``: each
is one function
from the raw table to its value in :mod:`jobsync.config.model`, and a table that is left out
gets its defaults. A key given with an empty value, or one the rest of its table makes
meaningless, is refused rather than replaced by a default.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jobsync.config.model import (
    ACTIVE_MODES,
    DEFAULT_KEEP_DAYS,
    DEFAULT_SMB_PORT,
    INTEGRIFY_CONFIG_FILES,
    REPOINT_METHODS,
    ActiveConfig,
    DnsConfig,
    FailoverConfig,
    FleetCheckConfig,
    HealthConfig,
    PeerConfig,
    RetentionConfig,
    ScheduleConfig,
    ServiceConfig,
    WatchConfig,
)
from jobsync.config.reader import Table, local_folder, parse_unc, shown
from jobsync.credentials import KeyringGet, Unseal, resolve_password
from jobsync.errors import ConfigError
from jobsync.jobs_folder import name_key

SMB_KEYS = (
    "port",
    "username",
    "password_env",
    "password_keyring",
    "password_file",
    "encrypt",
    "share_root",
    "address",
    "admin_share",
)


def parse_peer(
    raw: object,
    *,
    index: int,
    path: Path,
    environ: Mapping[str, str],
    node: str,
    keyring_get: KeyringGet,
    unseal: Unseal | None = None,
    secrets: bool = True,
) -> PeerConfig:
    """Read one ``[[peers]]`` table; errors name the file, the peer and the key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: peers[{index}] must be a table ([[peers]])")
    name = raw.get("name")
    label = f"peer {name}" if isinstance(name, str) and name.strip() else f"peers[{index}]"
    table = Table(raw, where=f"{path}: {label}")
    if "password" in raw:
        # Never echo the value: it may be a real password.
        raise table.fail(
            "password is not allowed in the config file: leave username out for integrated "
            "login, or name an environment variable with password_env, or a credential store "
            "entry with password_keyring"
        )
    name = table.required_text("name")
    peer_path = table.required_text("path")
    unc = parse_unc(peer_path, fail=table.fail)
    if unc is None:
        smb_only = [key for key in SMB_KEYS if table.has(key)]
        if smb_only:
            raise table.fail(
                f"{', '.join(smb_only)}: only for SMB peers, and path {shown(peer_path)} is a "
                "local folder (an SMB path starts with \\\\host\\share)"
            )
        local = local_folder(peer_path, base=None, fail=table.fail)
        table.finish()
        return PeerConfig(name=name, path=peer_path, target=local)

    share_root = table.take("share_root", bool, default=False)
    if unc.folder and share_root:
        raise table.fail(
            f"share_root = true, but path {shown(peer_path)} names a folder inside the share"
        )
    if not unc.folder and not share_root:
        raise table.fail(
            f"path {shown(peer_path)} stops at the share: name the jobs folder inside it "
            "(\\\\host\\share\\folder), or set share_root = true if the share is the jobs folder"
        )
    port = table.port("port", DEFAULT_SMB_PORT)
    username = table.text("username")
    password_env = table.take("password_env", str)
    password_keyring = table.take("password_keyring", str)
    file_text = table.text("password_file")
    encrypt = table.take("encrypt", bool, default=True)
    address = _address(table)
    admin_share = table.text("admin_share", "C$")
    table.finish()
    password_file = None if file_text is None else (path.parent / file_text)
    if username is not None and password_env is None and password_keyring is None and not file_text:
        raise table.fail(
            "username is set but no password source: add password_env, password_keyring or "
            "password_file, or leave username out to log on as the account jobsync runs as"
        )
    password = resolve_password(
        username=username,
        password_env=password_env,
        password_keyring=password_keyring,
        environ=environ,
        fail=table.fail,
        needed=secrets and name_key(name) != name_key(node),
        keyring_get=keyring_get,
        password_file=password_file,
        unseal=unseal,
    )
    return PeerConfig(
        name=name,
        path=peer_path,
        target=unc,
        port=port,
        username=username,
        password=password,
        password_file=password_file,
        encrypt=bool(encrypt),
        address=address,
        admin_share=admin_share.strip("\\"),
    )


def _address(table: Table) -> str | None:
    """``address``: the node's IP address, which the services name gets when it is that node."""
    text = table.text("address")
    if text is None:
        return None
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise table.fail(
            f"address must be the node's IP address (such as 10.0.0.12), not {shown(text)}"
        ) from None


_UNREACHABLE = ("refuse", "continue")
_MIN_TTL = 0
_MAX_TTL = 86_400


def parse_failover(
    raw: Mapping[str, Any] | None, *, path: Path, active: ActiveConfig
) -> FailoverConfig | None:
    """``[failover]``; ``services`` and ``services_name`` default to ``[active]``'s."""
    if raw is None:
        return None
    table = Table(raw, where=f"{path}: [failover]")
    services = _services(table, active)
    methods = ", ".join(f'"{m}"' for m in REPOINT_METHODS)
    repoint = table.text("repoint")
    if repoint is None:
        raise table.fail(
            f"repoint is required: one of {methods} (how the services name follows the services)"
        )
    if repoint not in REPOINT_METHODS:
        raise table.fail(f"repoint must be one of {methods}, not {shown(repoint)}")
    name = table.text("services_name", active.services_host or "")
    healthcheck = table.text("healthcheck", FailoverConfig.healthcheck)
    unreachable = table.text("old_node_unreachable", FailoverConfig.old_node_unreachable)
    dns_raw = table.take("dns", dict)
    failover = FailoverConfig(
        services=services,
        repoint=repoint,
        services_name=name or None,
        healthcheck=healthcheck,
        dns=None if dns_raw is None else _dns(dns_raw, path=path),
        old_node_unreachable=unreachable,
        stop_timeout_seconds=table.positive("stop_timeout_seconds", 60.0),
        start_timeout_seconds=table.positive("start_timeout_seconds", 120.0),
        healthcheck_timeout_seconds=table.positive("healthcheck_timeout_seconds", 180.0),
        singleton_check_seconds=table.positive("singleton_check_seconds", 60.0),
    )
    table.finish()
    if unreachable not in _UNREACHABLE:
        raise table.fail(
            f'old_node_unreachable must be "refuse" or "continue", not {shown(unreachable)}'
        )
    if not healthcheck.startswith(("http://", "https://")) or "{address}" not in healthcheck:
        raise table.fail(
            "healthcheck must be an http:// or https:// URL with {address} where the node's "
            f"address goes (such as http://{{address}}/healthcheck), not {shown(healthcheck)}"
        )
    if repoint != "none" and failover.services_name is None:
        raise table.fail(
            f'repoint = "{repoint}" needs services_name (or [active] services_host): the name '
            "every node uses for the services node"
        )
    if (repoint == "dns") != (failover.dns is not None):
        raise table.fail(
            'repoint = "dns" needs a [failover.dns] table with server and zone'
            if repoint == "dns"
            else f'[failover.dns] is only used with repoint = "dns", not "{repoint}"'
        )
    if failover.dns is not None and failover.services_name is not None:
        _inside_zone(table, failover.services_name, failover.dns.zone)
    return failover


def _services(table: Table, active: ActiveConfig) -> tuple[str, ...]:
    raw = table.take("services", list)
    if raw is None:
        if not active.services:
            raise table.fail(
                "services is required: the Integrify Windows service names (short names, as "
                "sc.exe shows them), in the order they start"
            )
        return active.services
    if not raw or not all(isinstance(s, str) and s.strip() for s in raw):
        raise table.fail("services must be a list of Windows service names, none of them empty")
    return tuple(raw)


def _dns(raw: Mapping[str, Any], *, path: Path) -> DnsConfig:
    table = Table(raw, where=f"{path}: [failover.dns]")
    dns = DnsConfig(
        server=table.required_text("server"),
        zone=table.required_text("zone").rstrip("."),
        port=table.port("port", 53),
        ttl_seconds=table.whole("ttl_seconds", 300, least=_MIN_TTL),
        kerberos_host=table.text("kerberos_host"),
    )
    table.finish()
    if dns.ttl_seconds > _MAX_TTL:
        raise table.fail(f"ttl_seconds must be at most {_MAX_TTL} (a day)")
    return dns


def _inside_zone(table: Table, name: str, zone: str) -> None:
    fqdn, suffix = name.rstrip(".").casefold(), zone.casefold()
    if fqdn != suffix and not fqdn.endswith("." + suffix):
        raise table.fail(
            f"services_name {shown(name)} is not inside the zone {shown(zone)} that "
            "[failover.dns] updates: name the zone that holds it"
        )


_ACCOUNT = re.compile(r"[^\\/@\s]+\\[^\\/@\s]+|[^\\/@\s]+@[^\\/@\s]+|LocalSystem")
_NO_NETWORK = ("nt authority\\localservice", "localservice")
_MIN_STOP_SECONDS = 10  # the agent may take up to 10 s to stop


def parse_watch(raw: Mapping[str, Any], *, path: Path) -> WatchConfig:
    """``[watch]``."""
    table = Table(raw, where=f"{path}: [watch]")
    watch = WatchConfig(
        debounce_ms=table.whole("debounce_ms", WatchConfig.debounce_ms, least=0),
        rescan_seconds=table.positive("rescan_seconds", WatchConfig.rescan_seconds),
        retry_max_seconds=table.positive("retry_max_seconds", WatchConfig.retry_max_seconds),
    )
    table.finish()
    return watch


def parse_active(raw: Mapping[str, Any] | None, *, path: Path) -> ActiveConfig:
    """``[active]``: without the table, ``always``; with it, ``mode`` must say which."""
    if raw is None:
        return ActiveConfig()
    table = Table(raw, where=f"{path}: [active]")
    modes = ", ".join(f'"{m}"' for m in ACTIVE_MODES)
    if not table.has("mode"):
        raise table.fail(f"mode is required: one of {modes}")
    mode = table.required_text("mode")
    if mode not in ACTIVE_MODES:
        raise table.fail(f"mode must be one of {modes}, not {shown(mode)}")
    host = table.text("services_host")
    services = table.take("services", list)
    active = ActiveConfig(
        mode=mode,
        services_host=host,
        services=tuple(services or ()),
        check_seconds=table.positive("check_seconds", ActiveConfig.check_seconds),
        confirmations=table.whole("confirmations", ActiveConfig.confirmations, least=1),
    )
    table.finish()
    if (host is not None) != (mode == "dns"):
        raise table.fail(
            'mode = "dns" needs services_host, the name the nodes use for the services'
            if host is None
            else f'services_host is only used with mode = "dns", not "{mode}"'
        )
    if (services is not None) != (mode == "services"):
        raise table.fail(
            'mode = "services" needs services = ["..."], the Integrify service names'
            if services is None
            else f'services is only used with mode = "services", not "{mode}"'
        )
    if services is not None and not (
        services and all(isinstance(s, str) and s.strip() for s in services)
    ):
        raise table.fail("services must be a list of Windows service names, none of them empty")
    return active


def parse_health(raw: Mapping[str, Any], *, path: Path) -> HealthConfig:
    """``[health]``: ``listen`` is ``HOST:PORT``."""
    table = Table(raw, where=f"{path}: [health]")
    listen_text = table.take("listen", str)
    max_lag = table.positive("max_lag_seconds", HealthConfig.max_lag_seconds)
    table.finish()
    listen = None
    if listen_text is not None:
        host, sep, port_text = listen_text.rpartition(":")
        host = host.strip("[]")
        if not sep or not host.strip() or not port_text.isdigit() or not 0 < int(port_text) < 65536:  # noqa: PLR2004
            raise table.fail(
                f"listen must be HOST:PORT such as 127.0.0.1:9477, not {shown(listen_text)}"
            )
        listen = (host, int(port_text))
    return HealthConfig(listen=listen, max_lag_seconds=max_lag)


def _account(table: Table, key: str) -> str | None:
    value = table.text(key)
    if value is not None and value.casefold() in _NO_NETWORK:
        raise table.fail(
            f"{key}: {value} has no identity on the network (its logons reach a peer as "
            "anonymous): use a gMSA, a domain account, NT AUTHORITY\\NetworkService or "
            "LocalSystem"
        )
    if value is not None and value.casefold() == "nt authority\\networkservice":
        return "NT AUTHORITY\\NetworkService"
    if value is not None and not _ACCOUNT.fullmatch(value):
        raise table.fail(
            f"{key} must be DOMAIN\\name (a gMSA ends with $), name@domain, LocalSystem or "
            f"NT AUTHORITY\\NetworkService, not {shown(value)}"
        )
    return value


def parse_service(raw: Mapping[str, Any], *, path: Path) -> ServiceConfig:
    """``[service]``: the Windows service that runs the agent."""
    table = Table(raw, where=f"{path}: [service]")
    defaults = ServiceConfig()
    service_id = table.text("id", defaults.id)
    log_text = table.text("log_dir")
    service = ServiceConfig(
        id=service_id,
        name=table.text("name", defaults.name),
        description=table.text("description", defaults.description),
        account=_account(table, "account"),
        python=table.text("python"),
        stop_timeout_seconds=table.positive("stop_timeout_seconds", defaults.stop_timeout_seconds),
        log_dir=None
        if log_text is None
        else local_folder(log_text, base=path.parent, fail=lambda m: table.fail(f"log_dir: {m}")),
    )
    table.finish()
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", service_id):
        raise table.fail(f"id must be letters, digits, '.', '_' or '-', not {shown(service_id)}")
    if service.stop_timeout_seconds <= _MIN_STOP_SECONDS:
        raise table.fail("stop_timeout_seconds must be more than 10 (the agent's own limit)")
    return service


def parse_schedule(raw: Mapping[str, Any], *, path: Path, service: ServiceConfig) -> ScheduleConfig:
    """``[schedule]``: the fallback task; its account defaults to the service's."""
    table = Table(raw, where=f"{path}: [schedule]")
    defaults = ScheduleConfig()
    task_name = table.text("task_name", defaults.task_name)
    schedule = ScheduleConfig(
        task_name=task_name,
        interval_minutes=table.whole("interval_minutes", defaults.interval_minutes, least=1),
        boot_delay_minutes=table.whole("boot_delay_minutes", defaults.boot_delay_minutes, least=1),
        time_limit_minutes=table.whole("time_limit_minutes", defaults.time_limit_minutes, least=1),
        account=_account(table, "account") or service.account,
    )
    table.finish()
    if any(c in task_name for c in '<>:"/|?*'):
        raise table.fail(f"task_name {shown(task_name)} has a character Windows does not allow")
    return schedule


def parse_retention(raw: Mapping[str, Any], *, path: Path) -> RetentionConfig:
    """``[retention]``: whole days, 0 keeping copies for ever."""
    table = Table(raw, where=f"{path}: [retention]")
    days = {key: table.take(key, int, DEFAULT_KEEP_DAYS) for key in ("trash_days", "backup_days")}
    table.finish()
    for key, value in days.items():
        if value < 0:
            raise table.fail(f"{key} must be a whole number of days, 0 (keep for ever) or more")
    return RetentionConfig(trash_days=days["trash_days"], backup_days=days["backup_days"])


_DRIVE_PATH = re.compile(r"^[A-Za-z]:\\")
_LOGON_KEYS = ("username", "password_env", "password_keyring", "password_file", "port", "encrypt")


def parse_fleet_check(
    raw: Mapping[str, Any] | None,
    *,
    path: Path,
    environ: Mapping[str, str],
    keyring_get: KeyringGet,
    unseal: Unseal | None = None,
    secrets: bool = True,
) -> FleetCheckConfig | None:
    """``[fleet_check]``: Integrify's install folder, and what to compare and probe."""
    if raw is None:
        return None
    table = Table(raw, where=f"{path}: [fleet_check]")
    install = table.required_text("install").rstrip("\\")
    if not _DRIVE_PATH.match(install + "\\"):
        raise table.fail(
            f"install must be the Windows path of Integrify's folder on every node, such as "
            f"'C:\\integrify' (in single quotes), not {shown(install)}"
        )
    files = _texts(table, "files", INTEGRIFY_CONFIG_FILES)
    names = {name_key(f.replace("/", "\\").rsplit("\\", 1)[-1]) for f in files}
    logon_raw = table.take("share_logon", dict)
    if logon_raw is not None and (extra := sorted(set(logon_raw) - set(_LOGON_KEYS))):
        raise ConfigError(
            f"{path}: [fleet_check.share_logon] (takes {', '.join(_LOGON_KEYS)}): unknown "
            f"key{'s' if len(extra) > 1 else ''}: {', '.join(extra)}"
        )
    public_url = table.text("public_url")
    fleet = FleetCheckConfig(
        install=install,
        files=files,
        differs_by_design=_key_paths(table, "differs_by_design", names),
        shared_folders=_key_paths(table, "shared_folders", names),
        share_logon=None
        if logon_raw is None
        else parse_peer(
            {"name": "shared folders", "path": "\\\\shared\\folders\\probe", **logon_raw},
            index=0,
            path=path,
            environ=environ,
            node="",
            keyring_get=keyring_get,
            unseal=unseal,
            secrets=secrets,
        ),
        app_pools=_texts(table, "app_pools", ()),
        public_url=public_url,
        affinity_cookie=table.text("affinity_cookie"),
        certificate_days=table.whole("certificate_days", 14, least=0),
        every_minutes=table.take("every_minutes", float, 60.0),
    )
    table.finish()
    if public_url is not None and not public_url.startswith(("http://", "https://")):
        raise table.fail(f"public_url must be an http:// or https:// URL, not {shown(public_url)}")
    if not fleet.every_minutes >= 0:
        raise table.fail("every_minutes must be 0 (the agent never runs it) or more")
    return fleet


def _texts(table: Table, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = table.take(key, list)
    if raw is None:
        return default
    if not all(isinstance(item, str) and item.strip() for item in raw):
        raise table.fail(f"{key} must be a list of non-empty strings")
    return tuple(item.strip() for item in raw)


def _key_paths(table: Table, key: str, files: set[str]) -> tuple[str, ...]:
    """Key paths such as ``settings.config:appSettings/AttachmentsPath``, each in a known file."""
    paths = _texts(table, key, ())
    for item in paths:
        file, _, inside = item.partition(":")
        if not inside or name_key(file) not in files:
            raise table.fail(
                f"{key}: {shown(item)} is not file:key/path naming one of the compared files "
                "(such as settings.config:appSettings/AttachmentsPath; jobsync check --fleet "
                "--discover lists them)"
            )
    return paths
