"""Loading and validating ``jobsync.toml``.

Every problem is reported as one :class:`ConfigError` line naming the file, the key or peer,
and what is wrong; nothing is guessed. Secrets are read from the environment, never from the
file, and are wrapped so that printing a config never prints a password.
"""

from __future__ import annotations

import math
import os
import re
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any, TypeVar

from jobsync.credentials import KeyringGet, Secret, keyring_password, resolve_password
from jobsync.errors import ConfigError
from jobsync.names import name_key, pattern_problem, windows_name_problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CONFIG_ENV = "JOBSYNC_CONFIG"
CONFIG_NAME = "jobsync.toml"
DEFAULT_PATTERN = "*.jobs"
DEFAULT_TIMEOUT_SECONDS = 15.0
DEFAULT_MAX_DELETE_RATIO = 0.5
DEFAULT_SMB_PORT = 445

_T = TypeVar("_T")


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
    path: str
    unc: UncPath | None
    local_path: Path | None
    port: int = DEFAULT_SMB_PORT
    username: str | None = None
    password: Secret | None = None
    encrypt: bool = True

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


ACTIVE_MODES = ("always", "dns", "services")


@dataclass(frozen=True, kw_only=True)
class ActiveConfig:
    """``[active]``: how the agent knows this node is the services node."""

    mode: str = "always"
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

    @property
    def target_peers(self) -> tuple[PeerConfig, ...]:
        """The peers this node pushes to: every peer but the node itself."""
        me = name_key(self.node)
        return tuple(p for p in self.peers if name_key(p.name) != me)

    def secrets(self) -> tuple[str, ...]:
        """Every secret value the config holds, for log redaction."""
        return tuple(p.password.value for p in self.peers if p.password is not None)


def find_config_path(explicit: Path | None, *, environ: Mapping[str, str] | None = None) -> Path:
    """Where the configuration is: ``-c``, else ``$JOBSYNC_CONFIG``, else the usual places."""
    env = os.environ if environ is None else environ
    if explicit is not None:
        return explicit
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    candidates = [Path.cwd() / CONFIG_NAME]
    if sys.platform == "win32" and env.get("ProgramData"):
        candidates.append(Path(env["ProgramData"]) / "jobsync" / CONFIG_NAME)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    places = ", ".join(str(c) for c in candidates)
    raise ConfigError(
        f"no configuration file: pass -c PATH, set {CONFIG_ENV}, or create one of: {places}"
    )


def load_config(
    path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    keyring_get: KeyringGet = keyring_password,
) -> Config:
    """Read and validate the configuration at ``path``."""
    env = os.environ if environ is None else environ
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None
    return _parse(data, path=path, environ=env, keyring_get=keyring_get)


class _Table:
    """A TOML table being read key by key; leftover keys are errors."""

    def __init__(self, data: Mapping[str, Any], *, where: str) -> None:
        self._data = dict(data)
        self._where = where

    def fail(self, message: str) -> ConfigError:
        return ConfigError(f"{self._where}: {message}")

    def take(self, key: str, kind: type[_T], default: _T | None = None) -> _T | None:
        if key not in self._data:
            return default
        value = self._data.pop(key)
        # bool is an int in Python, but never a valid number of seconds.
        if kind in (int, float) and isinstance(value, bool):
            raise self.fail(f"{key} must be a number, not {value!r}")
        if kind is float and isinstance(value, int):
            value = float(value)
        if not isinstance(value, kind):
            raise self.fail(f"{key} must be {_type_name(kind)}, not {_type_name(type(value))}")
        return value

    def require(self, key: str, kind: type[_T]) -> _T:
        value = self.take(key, kind)
        if value is None:
            raise self.fail(f"{key} is required")
        return value

    def finish(self) -> None:
        if self._data:
            keys = ", ".join(sorted(self._data))
            raise self.fail(f"unknown key{'s' if len(self._data) > 1 else ''}: {keys}")


def _type_name(kind: type) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }.get(kind, kind.__name__)


def _parse(
    data: Mapping[str, Any],
    *,
    path: Path,
    environ: Mapping[str, str],
    keyring_get: KeyringGet,
) -> Config:
    top = _Table(data, where=str(path))
    node = top.take("node", str) or socket.gethostname().split(".")[0]
    source_text = top.require("source", str)
    pattern = top.take("pattern", str, DEFAULT_PATTERN) or DEFAULT_PATTERN
    timeout = top.take("timeout_seconds", float, DEFAULT_TIMEOUT_SECONDS)
    ratio = top.take("max_delete_ratio", float, DEFAULT_MAX_DELETE_RATIO)
    raw_peers = top.take("peers", list, [])
    state_text = top.take("state_dir", str)
    watch = _parse_watch(top.take("watch", dict, {}) or {}, path=path)
    active = _parse_active(top.take("active", dict, {}) or {}, path=path)
    health = _parse_health(top.take("health", dict, {}) or {}, path=path)
    service = _parse_service(top.take("service", dict, {}) or {}, path=path)
    schedule = _parse_schedule(top.take("schedule", dict, {}) or {}, path=path, service=service)
    retention = _parse_retention(top.take("retention", dict, {}) or {}, path=path)
    top.finish()

    if not node.strip():
        raise top.fail("node must not be empty")
    if any(sep in pattern for sep in "/\\") or not pattern.strip():
        raise top.fail(f"pattern must be a file name glob such as *.jobs, not {pattern!r}")
    if problem := pattern_problem(pattern):
        raise top.fail(problem)
    if timeout is None or not math.isfinite(timeout) or timeout <= 0:
        raise top.fail("timeout_seconds must be a positive number")
    if ratio is None or not (0.0 <= ratio <= 1.0):
        raise top.fail("max_delete_ratio must be between 0 and 1")
    source = _local_folder(source_text, base=path.parent, fail=lambda m: top.fail(f"source: {m}"))
    state_dir = (
        _local_folder(state_text, base=path.parent, fail=lambda m: top.fail(f"state_dir: {m}"))
        if state_text is not None
        else path.parent / "state"
    )
    if not raw_peers:
        raise top.fail("no [[peers]]: name at least one node to copy the jobs to")

    peers: list[PeerConfig] = []
    seen: dict[str, str] = {}
    for index, raw in enumerate(raw_peers or []):
        peer = _parse_peer(
            raw, index=index, path=path, environ=environ, node=node, keyring_get=keyring_get
        )
        key = name_key(peer.name)
        if key in seen:
            raise ConfigError(f"{path}: peers[{index}]: duplicate peer name {peer.name!r}")
        seen[key] = peer.name
        if peer.local_path is not None and _same_folder(peer.local_path, source):
            raise ConfigError(f"{path}: peer {peer.name}: path is the source folder itself")
        peers.append(peer)

    return Config(
        path=path,
        node=node,
        source=source,
        pattern=pattern,
        timeout_seconds=timeout,
        max_delete_ratio=ratio,
        peers=tuple(peers),
        state_dir=state_dir,
        watch=watch,
        active=active,
        health=health,
        service=service,
        schedule=schedule,
        retention=retention,
    )


def _positive(table: _Table, key: str, default: float) -> float:
    value = table.take(key, float, default)
    if value is None or not math.isfinite(value) or value <= 0:
        raise table.fail(f"{key} must be a positive number")
    return value


def _parse_watch(raw: Mapping[str, Any], *, path: Path) -> WatchConfig:
    table = _Table(raw, where=f"{path}: [watch]")
    debounce = table.take("debounce_ms", int, 500)
    rescan = _positive(table, "rescan_seconds", 60.0)
    retry_max = _positive(table, "retry_max_seconds", 60.0)
    table.finish()
    if debounce is None or debounce < 0:
        raise table.fail("debounce_ms must be 0 or more")
    return WatchConfig(debounce_ms=debounce, rescan_seconds=rescan, retry_max_seconds=retry_max)


def _parse_active(raw: Mapping[str, Any], *, path: Path) -> ActiveConfig:
    table = _Table(raw, where=f"{path}: [active]")
    mode = table.take("mode", str, "always") or "always"
    host = table.take("services_host", str)
    services = table.take("services", list, []) or []
    check = _positive(table, "check_seconds", 10.0)
    confirmations = table.take("confirmations", int, 3)
    table.finish()
    if mode not in ACTIVE_MODES:
        raise table.fail(f"mode must be one of {', '.join(ACTIVE_MODES)}, not {mode!r}")
    if mode == "dns" and not (host and host.strip()):
        raise table.fail(
            'mode = "dns" needs services_host, the name the nodes use for the services'
        )
    if not all(isinstance(s, str) and s.strip() for s in services):
        raise table.fail("services must be a list of Windows service names")
    if mode == "services" and not services:
        raise table.fail('mode = "services" needs services = ["..."], the Integrify service names')
    if confirmations is None or confirmations < 1:
        raise table.fail("confirmations must be 1 or more")
    return ActiveConfig(
        mode=mode,
        services_host=host,
        services=tuple(services),
        check_seconds=check,
        confirmations=confirmations,
    )


_ACCOUNT = re.compile(r"[^\\/@\s]+\\[^\\/@\s]+|[^\\/@\s]+@[^\\/@\s]+|LocalSystem")


def _account(table: _Table, value: str | None) -> str | None:
    if value is not None and not _ACCOUNT.fullmatch(value):
        raise table.fail(
            f"account must be DOMAIN\\name (a gMSA ends with $), name@domain or LocalSystem, "
            f"not {value!r}"
        )
    return value


def _parse_service(raw: Mapping[str, Any], *, path: Path) -> ServiceConfig:
    table = _Table(raw, where=f"{path}: [service]")
    defaults = ServiceConfig()
    service_id = table.take("id", str, defaults.id) or defaults.id
    name = table.take("name", str, defaults.name) or defaults.name
    description = table.take("description", str, defaults.description) or defaults.description
    account = _account(table, table.take("account", str))
    python = table.take("python", str)
    stop = _positive(table, "stop_timeout_seconds", defaults.stop_timeout_seconds)
    log_text = table.take("log_dir", str)
    table.finish()
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", service_id):
        raise table.fail(f"id must be letters, digits, '.', '_' or '-', not {service_id!r}")
    if stop <= 10:  # noqa: PLR2004 - the agent may take up to 10 s to stop
        raise table.fail("stop_timeout_seconds must be more than 10 (the agent's own limit)")
    log_dir = None
    if log_text is not None:
        log_dir = _local_folder(
            log_text, base=path.parent, fail=lambda m: table.fail(f"log_dir: {m}")
        )
    return ServiceConfig(
        id=service_id,
        name=name,
        description=description,
        account=account,
        python=python,
        stop_timeout_seconds=stop,
        log_dir=log_dir,
    )


def _parse_schedule(
    raw: Mapping[str, Any], *, path: Path, service: ServiceConfig
) -> ScheduleConfig:
    table = _Table(raw, where=f"{path}: [schedule]")
    defaults = ScheduleConfig()
    task_name = table.take("task_name", str, defaults.task_name) or defaults.task_name
    minutes = {
        key: table.take(key, int, getattr(defaults, key))
        for key in ("interval_minutes", "boot_delay_minutes", "time_limit_minutes")
    }
    account = _account(table, table.take("account", str)) or service.account
    table.finish()
    for key, value in minutes.items():
        if value is None or value < 1:
            raise table.fail(f"{key} must be a whole number of minutes, 1 or more")
    if any(c in task_name for c in '<>:"/|?*'):
        raise table.fail(f"task_name {task_name!r} has a character Windows does not allow")
    return ScheduleConfig(
        task_name=task_name,
        interval_minutes=minutes["interval_minutes"] or defaults.interval_minutes,
        boot_delay_minutes=minutes["boot_delay_minutes"] or defaults.boot_delay_minutes,
        time_limit_minutes=minutes["time_limit_minutes"] or defaults.time_limit_minutes,
        account=account,
    )


def _parse_health(raw: Mapping[str, Any], *, path: Path) -> HealthConfig:
    table = _Table(raw, where=f"{path}: [health]")
    listen_text = table.take("listen", str)
    max_lag = _positive(table, "max_lag_seconds", 300.0)
    table.finish()
    listen = None
    if listen_text is not None:
        host, sep, port_text = listen_text.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:  # noqa: PLR2004
            raise table.fail(
                f"listen must be HOST:PORT such as 127.0.0.1:9477, not {listen_text!r}"
            )
        listen = (host, int(port_text))
    return HealthConfig(listen=listen, max_lag_seconds=max_lag)


def _parse_retention(raw: Mapping[str, Any], *, path: Path) -> RetentionConfig:
    table = _Table(raw, where=f"{path}: [retention]")
    days = {key: table.take(key, int, DEFAULT_KEEP_DAYS) for key in ("trash_days", "backup_days")}
    table.finish()
    for key, value in days.items():
        if value is None or value < 0:
            raise table.fail(f"{key} must be a whole number of days, 0 (keep for ever) or more")
    return RetentionConfig(trash_days=days["trash_days"] or 0, backup_days=days["backup_days"] or 0)


def _parse_peer(
    raw: object,
    *,
    index: int,
    path: Path,
    environ: Mapping[str, str],
    node: str,
    keyring_get: KeyringGet,
) -> PeerConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: peers[{index}] must be a table ([[peers]])")
    name = raw.get("name")
    label = f"peer {name}" if isinstance(name, str) and name.strip() else f"peers[{index}]"
    table = _Table(raw, where=f"{path}: {label}")
    if "password" in raw:
        # Never echo the value: it may be a real password.
        raise table.fail(
            "password is not allowed in the config file: leave username out for integrated "
            "login, or name an environment variable with password_env, or a credential store "
            "entry with password_keyring"
        )
    name = table.require("name", str)
    peer_path = table.require("path", str)
    port = table.take("port", int, DEFAULT_SMB_PORT) or DEFAULT_SMB_PORT
    username = table.take("username", str)
    password_env = table.take("password_env", str)
    password_keyring = table.take("password_keyring", str)
    encrypt = table.take("encrypt", bool, default=True)
    table.finish()

    if not name.strip():
        raise table.fail("name must not be empty")
    if not 0 < port < 65536:  # noqa: PLR2004 - TCP port range
        raise table.fail(f"port must be between 1 and 65535, not {port}")
    unc = parse_unc(peer_path, fail=table.fail)
    local = None if unc is not None else _local_folder(peer_path, base=None, fail=table.fail)

    password = resolve_password(
        username=username,
        password_env=password_env,
        password_keyring=password_keyring,
        environ=environ,
        fail=table.fail,
        needed=name_key(name) != name_key(node),
        keyring_get=keyring_get,
    )
    return PeerConfig(
        name=name,
        path=peer_path,
        unc=unc,
        local_path=local,
        port=port,
        username=username,
        password=password,
        encrypt=bool(encrypt),
    )


def _default_fail(message: str) -> ConfigError:
    return ConfigError(message)


def parse_unc(text: str, *, fail: Any = _default_fail) -> UncPath | None:  # noqa: ANN401
    r"""Parse ``\\host\share\rest`` or ``//host/share/rest``; ``None`` when not a UNC path.

    ``.``, ``..`` and empty components are refused *before* any normalisation, which would
    otherwise quietly turn ``\\srv\share\..\..\x`` into ``\\srv\share\x``.
    """
    if not (text.startswith(("\\\\", "//"))):
        return None
    body = text.replace("/", "\\")
    if body.upper().startswith("\\\\?\\UNC\\"):
        body = "\\\\" + body[len("\\\\?\\UNC\\") :]
    if body.startswith(("\\\\.\\", "\\\\?\\")):
        raise fail(f"path {text!r} is a device path, not a share")
    parts = body[2:].split("\\")
    if len(parts) > 2 and parts[-1] == "":  # noqa: PLR2004 - host and share come first
        parts.pop()  # one trailing separator is harmless
    if len(parts) < 2:  # noqa: PLR2004
        raise fail(f"path {text!r} names no share: use \\\\host\\share\\folder")
    for part in parts:
        if part in ("", ".", ".."):
            raise fail(f"path {text!r} has an empty, '.' or '..' component")
        problem = windows_name_problem(part.rstrip("$"))
        if problem is not None:
            raise fail(f"path {text!r}: component {part!r} is not a valid Windows name: {problem}")
    return UncPath(host=parts[0], share=parts[1], folder="\\".join(parts[2:]))


def _local_folder(text: str, *, base: Path | None, fail: Any = _default_fail) -> Path:  # noqa: ANN401
    if not text.strip():
        raise fail("path must not be empty")
    parts = PureWindowsPath(text).parts if "\\" in text else Path(text).parts
    if ".." in parts:
        raise fail(f"path {text!r} has a '..' component")
    candidate = Path(text)
    if not candidate.is_absolute():
        if base is None:
            raise fail(f"path {text!r} must be absolute (or a \\\\host\\share UNC path)")
        candidate = base / candidate
    return candidate


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
