"""``[failover]``: what ``jobsync failover`` moves, where the services name lives, how it proves it.

The table is optional (a site may keep the manual runbook), but once present it must say which
services move and how the services name follows them: nothing here is guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jobsync.config.model import REPOINT_METHODS, ActiveConfig, DnsConfig, FailoverConfig
from jobsync.config.reader import Table, shown

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
