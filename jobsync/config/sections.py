"""The optional tables of ``jobsync.toml``.

``[watch]``, ``[active]``, ``[health]``, ``[service]``, ``[schedule]`` and ``[retention]``: each
is one function
from the raw table to its value in :mod:`jobsync.config.model`, and a table that is left out
gets its defaults. A key given with an empty value, or one the rest of its table makes
meaningless, is refused rather than replaced by a default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jobsync.config.model import (
    ACTIVE_MODES,
    DEFAULT_KEEP_DAYS,
    ActiveConfig,
    HealthConfig,
    RetentionConfig,
    ScheduleConfig,
    ServiceConfig,
    WatchConfig,
)
from jobsync.config.paths import local_folder
from jobsync.config.reader import Table, shown

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
