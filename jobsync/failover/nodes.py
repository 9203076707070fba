r"""The nodes a failover touches, and how each is reached for what it needs.

A node's SMB peer entry gives its host, port and account; the failover reaches the same host's
service manager (``IPC$\svcctl``) and its admin share (``C$`` by default) with them, so the
account in the config must be a local administrator on every node, as Windows requires for
remote service control. This node is reached the same way: through its own ``[[peers]]`` entry
when the config lists it (an identical config on every node does), else ``\\localhost``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from jobsync.config import Config, FailoverConfig, PeerConfig, UncPath
from jobsync.errors import ConfigError, PeerSessionLostError
from jobsync.names import name_key

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
        unc = UncPath(self.host, self.smb.admin_share, folder)
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
            f"failover needs every node reached over SMB (\\\\host\\share\\folder): "
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
