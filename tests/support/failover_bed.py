"""A fleet for ``jobsync failover``: three Windows-like nodes on loopback, all real servers.

Each node is one ``smbd`` serving its jobs share, a ``C$`` share standing in for the admin
share (with ``Windows/System32/drivers/etc/hosts``), and Samba's built-in ``Spooler`` service
standing in for Integrify's services (it really stops, starts and reports its state over
MS-SCMR). Each node also has its own address on the loopback network (127.0.0.11, .12, ...)
where a small real HTTP server answers ``/healthcheck`` for it, as Integrify's would; a test
makes a node unhealthy or dead by flipping or stopping that server.
"""

from __future__ import annotations

import http.server
import os
import pwd
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from jobsync.config.load import load_config
from jobsync.failover.nodes import fleet_nodes, open_services

from support.ports import free_port
from support.smbd import DEFAULT_PASSWORD, PASSWORD_ENV, TEST_USER, SambaPeer

if TYPE_CHECKING:
    from collections.abc import Callable

SERVICE = "Spooler"
SERVICES_NAME = "integrify-services.test.lan"
HOSTS_PATH = ("Windows", "System32", "drivers", "etc", "hosts")
HOSTS_TEXT = (
    "# Copyright (c) 1993-2009 Microsoft Corp.\r\n"
    "#\r\n"
    "# This is a sample HOSTS file used by Microsoft TCP/IP for Windows.\r\n"
    "127.0.0.1       localhost\r\n"
)
TEMPLATE = """\
node = "{node}"
node_differs_from_host = true
source = '{source}'
state_dir = '{state}'
timeout_seconds = 5
{peers}
[failover]
services = {services}
repoint = "{repoint}"
services_name = "{name}"
healthcheck = "http://{{address}}:{health_port}/healthcheck"
stop_timeout_seconds = 20
start_timeout_seconds = 20
healthcheck_timeout_seconds = {health_wait}
{dns}{active}"""


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = self.server.status if self.path == "/healthcheck" else 404  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


class HealthServer:
    """Integrify's ``/healthcheck`` on one node: 200 while healthy, 503 when not."""

    def __init__(self, address: str, port: int) -> None:
        """Listen at ``address:port`` and answer healthy."""
        self._server = http.server.ThreadingHTTPServer((address, port), _Handler)
        self._server.status = 200  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, status: int) -> None:
        """Answer ``status`` from now on."""
        self._server.status = status  # type: ignore[attr-defined]

    def stop(self) -> None:
        """Stop answering (a dead node: connections are refused)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()


@dataclass
class FailoverNode:
    """One machine: its smbd (jobs share, C$, Spooler), its address and its healthcheck."""

    name: str
    samba: SambaPeer
    home: Path
    folder: Path
    address: str
    health: HealthServer
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. the Kerberos ticket cache
    runs: list[subprocess.Popen[str]] = field(default_factory=list, repr=False)

    @property
    def config(self) -> Path:
        """The node's jobsync.toml."""
        return self.home / "jobsync.toml"

    @property
    def hosts(self) -> Path:
        """The node's hosts file, under its admin share."""
        return self.samba.root.joinpath("C", *HOSTS_PATH)

    def hosts_address(self) -> str | None:
        """The address this node's hosts file gives the services name (the first line wins)."""
        for line in self.hosts.read_text(encoding="latin-1").splitlines():
            entry = line.split("#", 1)[0].split()
            if len(entry) >= 2 and SERVICES_NAME in entry[1:]:
                return entry[0]
        return None

    def command(self, *args: str) -> list[str]:
        """``jobsync ARGS -c <config>`` as this node runs it."""
        return [sys.executable, "-m", "jobsync", *args, "-c", str(self.config)]

    def env(self) -> dict[str, str]:
        """The environment jobsync runs with here (the password variable, unbuffered output)."""
        return {
            **os.environ,
            PASSWORD_ENV: DEFAULT_PASSWORD,
            "NO_COLOR": "1",
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run one jobsync command here, to its end."""
        return subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=False,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start one jobsync command here; its output (both streams) is read line by line."""
        proc = subprocess.Popen(
            self.command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env(),
        )
        self.runs.append(proc)
        return proc

    def stop_runs(self) -> None:
        """Kill whatever this node still runs."""
        for proc in self.runs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()

    def jobs(self) -> dict[str, bytes]:
        """The jobs in this node's folder, as its scheduler reads them."""
        return {p.name: p.read_bytes() for p in self.folder.glob("*.jobs")}


Fleet = dict[str, FailoverNode]


def make_fleet(
    tmp_path: Path,
    make_samba: Callable[..., SambaPeer],
    *,
    names: tuple[str, ...] = ("n1", "n2", "n3"),
    services: tuple[str, ...] = (SERVICE,),
    health_wait: float = 5.0,
    dns: str = "",
    env: dict[str, str] | None = None,
    active: str = "",
) -> Fleet:
    """The nodes, their configs from one template, hosts files that name no services node.

    ``dns`` is a ``[failover.dns]`` table: the services name then moves by a signed DNS update
    instead of the hosts files; ``env`` is added to every command's environment; ``active``
    is an ``[active]`` table (for an agent).
    """
    health_port = free_port()
    # On Windows one account (a gMSA) runs jobsync on every node and reaches the others' shares:
    # files it writes locally and over SMB have one owner. Here jobsync runs as root, so the
    # shares act as root too.
    sambas = {
        name: make_samba(spooler=True, admin_root=True, share_options=("force user = root",))
        for name in names
    }
    addresses = {name: f"127.0.0.{11 + i}" for i, name in enumerate(names)}
    peers = "\n".join(
        "\n".join(
            [
                *samba.peer_toml(name, "integrify", "jobs", password_env=PASSWORD_ENV),
                f'address = "{addresses[name]}"',
            ]
        )
        for name, samba in sambas.items()
    )
    account = pwd.getpwnam(TEST_USER)
    fleet: Fleet = {}
    for name, samba in sambas.items():
        home = tmp_path / name
        home.mkdir()
        folder = samba.mkdir("integrify", "jobs")
        hosts = samba.root.joinpath("C", *HOSTS_PATH)
        hosts.write_bytes(HOSTS_TEXT.encode("ascii"))
        for path in (hosts, *hosts.parents):
            if path == samba.root:
                break
            os.chown(path, account.pw_uid, account.pw_gid)
        config = TEMPLATE.format(
            node=name,
            source=folder,
            state=home / "state",
            peers=peers,
            services="[" + ", ".join(f'"{s}"' for s in services) + "]",
            name=SERVICES_NAME,
            health_port=health_port,
            health_wait=health_wait,
            repoint="dns" if dns else "hosts",
            dns=dns,
            active=active,
        )
        (home / "jobsync.toml").write_text(config)
        health = HealthServer(addresses[name], health_port)
        fleet[name] = FailoverNode(
            name, samba, home, folder, addresses[name], health, extra_env=dict(env or {})
        )
    return fleet


def spooler(node: FailoverNode, of: FailoverNode | None = None) -> str | None:
    """The Spooler's state on ``node``, asked over SCMR as ``of`` (default: itself) would."""
    config = load_config((of or node).config)
    target = next(n for n in fleet_nodes(config) if n.name == node.name)
    with open_services(target, 5.0) as services:
        return services.state(SERVICE)


def set_spooler(node: FailoverNode, *, running: bool) -> None:
    """Start or stop the Spooler on ``node`` (the state a test begins from)."""
    config = load_config(node.config)
    here = fleet_nodes(config)[0]
    with open_services(here, 5.0) as services:
        if running:
            services.start(SERVICE, within=20)
        else:
            services.stop(SERVICE, within=20)


def stop_fleet(fleet: Fleet) -> None:
    """Stop every command and healthcheck the fleet still runs (the smbds are the factory's)."""
    for node in fleet.values():
        node.stop_runs()
        node.health.stop()
