r"""A load-balanced Integrify site for ``jobsync check --fleet``: every part a real server.

On top of the failover bed (tests/support/failover_bed.py: three ``smbd`` nodes with ``C$``,
the Spooler over MS-SCMR, a hosts file, an HTTP ``/healthcheck`` each), every node's ``C$``
holds a small Integrify tree: ``integrify\app\settings\settings.config``,
``integrify\app\webserver\server-config.json`` and IIS's ``applicationHost.config``, and
jobsync's fallback task as Task Scheduler keeps it (``Windows\System32\Tasks\jobsync push``,
the XML ``jobsync schedule install`` registers, in UTF-16). One more
``smbd`` is the NAS holding the attachments, reports and temp folders, and a local HTTPS server
with a self-signed certificate (trusted through ``SSL_CERT_FILE``) stands in for the balancer.

The files hold secrets (a connection string's password, a JSON password, an app pool's
encrypted password); :data:`SECRETS` lists them so a test can prove none reaches the output.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support.failover_bed import (
    SERVICES_NAME,
    FailoverNode,
    Fleet,
    make_fleet,
    set_spooler,
    stop_fleet,
)
from support.ports import free_port
from support.smbd import PASSWORD_ENV, SambaPeer

if TYPE_CHECKING:
    from collections.abc import Callable

SECRETS = (
    "Sql-Pa55word-7f3c",
    "Json-Secret-91be",
    "enc:AesProvider:QmFsYW5jZXJTZWNyZXQ=",
)
NAS_FOLDER = "integrify-files"
FOLDERS = ("attachments", "reports", "temp")
SHARED_KEYS = tuple(f"settings.config:appSettings/{f.title()}Path" for f in FOLDERS)
SETTINGS = Path("integrify", "app", "settings", "settings.config")
SERVER_CONFIG = Path("integrify", "app", "webserver", "server-config.json")
IIS = Path("Windows", "System32", "inetsrv", "config", "applicationHost.config")
TASK = Path("Windows", "System32", "Tasks", "jobsync push")
SERVICE_ACCOUNT = r"CORP\integrify-svc"


def settings_config(node: str, folders: dict[str, str], smtp: str = "smtp.example.test") -> str:
    """A settings.config as the OnPremise Manager writes one (the shape of .NET's)."""
    keys = "".join(
        f'    <add key="{name.title()}Path" value="{path}" />\r\n' for name, path in folders.items()
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\r\n<configuration>\r\n  <appSettings>\r\n'
        f"{keys}"
        f'    <add key="SmtpServer" value="{smtp}" />\r\n'
        f'    <add key="NodeName" value="{node}" />\r\n'
        "  </appSettings>\r\n  <connectionStrings>\r\n"
        '    <add name="Integrify" connectionString="Server=sql.example.test;Database=integrify;'
        f'User Id=integrify;Password={SECRETS[0]};" />\r\n'
        "  </connectionStrings>\r\n</configuration>\r\n"
    )


def server_config(node: str) -> str:
    """A server-config.json: the web server's settings, one of them secret."""
    return json.dumps(
        {"port": 80, "node": node, "database": {"user": "integrify", "password": SECRETS[1]}},
        indent=2,
    )


def application_host(identity: str = SERVICE_ACCOUNT) -> str:
    """IIS's applicationHost.config with Integrify's pool run as ``identity``."""
    return (
        "<configuration>\r\n  <system.applicationHost>\r\n    <applicationPools>\r\n"
        '      <add name="Integrify" managedRuntimeVersion="">\r\n'
        f'        <processModel identityType="SpecificUser" userName="{identity}" '
        f'password="[{SECRETS[2]}]" />\r\n'
        "      </add>\r\n"
        '      <add name="DefaultAppPool" />\r\n'
        '      <applicationPoolDefaults><processModel identityType="ApplicationPoolIdentity" />'
        "</applicationPoolDefaults>\r\n"
        "    </applicationPools>\r\n  </system.applicationHost>\r\n</configuration>\r\n"
    )


class _Balancer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthcheck" else 404)
        self.send_header("Set-Cookie", "ASP.NET_SessionId=abc; path=/; HttpOnly")
        if self.server.sticky:  # type: ignore[attr-defined]
            self.send_header("Set-Cookie", "BIGipServerintegrify=1677787402.20480.0000; path=/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


class Balancer:
    """The site's public HTTPS address: a certificate for ``localhost``, an affinity cookie."""

    def __init__(self, folder: Path) -> None:
        """Make a self-signed certificate in ``folder`` and listen on a free port."""
        self.ca_file = folder / "balancer.pem"
        key_file = folder / "balancer.key"
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = dt.datetime.now(dt.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=90))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.ca_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca_file, key_file)
        self.port = free_port()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), _Balancer)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.sticky = True  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The public URL."""
        return f"https://localhost:{self.port}"

    def sticky(self, on: bool) -> None:
        """Set the affinity cookie on every answer, or not."""
        self._server.sticky = on  # type: ignore[attr-defined]

    def stop(self) -> None:
        """Stop answering."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@dataclass
class Site:
    """The fleet, its NAS and its balancer."""

    nodes: Fleet
    nas: SambaPeer
    balancer: Balancer

    def folders(self, nas: SambaPeer | None = None) -> dict[str, str]:
        """The shared folders' UNC paths on ``nas`` (default: the site's)."""
        return {f: (nas or self.nas).unc(NAS_FOLDER, f) for f in FOLDERS}

    def write(self, node: FailoverNode, relative: Path, text: str | bytes) -> None:
        """Write a file under ``node``'s ``C$``."""
        path = node.samba.root / "C" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)

    def check(self, node: FailoverNode, *args: str) -> tuple[int, dict]:
        """``jobsync check --fleet --json`` on ``node``: the exit code and the document."""
        done = node.run("check", "--fleet", "--json", *args)
        try:
            return done.returncode, json.loads(done.stdout)
        except json.JSONDecodeError:
            raise AssertionError(f"exit {done.returncode}:\n{done.stdout}\n{done.stderr}") from None


def scheduled_task(node: FailoverNode, *, enabled: bool = True) -> bytes:
    """The node's fallback task as Windows keeps it once registered: UTF-16, with its BOM."""
    from jobsync.config.load import load_config
    from jobsync.windows.tasks import task_xml

    text = task_xml(load_config(node.config))
    if not enabled:
        settings = text.rindex("<Enabled>true</Enabled>")  # the task's own, after the triggers'
        text = text[:settings] + "<Enabled>false</Enabled>" + text[settings + 23 :]
    return text.encode("utf-16")


def fleet_check_table(site: Site, *, nas_port: int) -> str:
    """The ``[fleet_check]`` table every node's config gets."""
    keys = ", ".join(f'"{k}"' for k in SHARED_KEYS)
    return (
        "\n[fleet_check]\n"
        "install = 'C:\\integrify'\n"
        f"shared_folders = [{keys}]\n"
        'differs_by_design = ["settings.config:appSettings/NodeName", "server-config.json:node"]\n'
        f'public_url = "{site.balancer.url}"\n'
        "[fleet_check.share_logon]\n"
        f'username = "{site.nas.user}"\n'
        f'password_env = "{PASSWORD_ENV}"\n'
        f"port = {nas_port}\n"
    )


def make_site(
    tmp_path: Path,
    make_samba: Callable[..., SambaPeer],
    *,
    names: tuple[str, ...] = ("n1", "n2", "n3"),
) -> Site:
    """Nodes (three by default) on one NAS behind one balancer, all as the vendor's page asks.

    n1 runs the services and owns the jobs; every hosts file points the services name at it.
    """
    nas = make_samba()
    for folder in FOLDERS:
        nas.mkdir(NAS_FOLDER, folder)
    balancer = Balancer(tmp_path)
    nodes = make_fleet(
        tmp_path, make_samba, names=names, env={"SSL_CERT_FILE": str(balancer.ca_file)}
    )
    site = Site(nodes, nas, balancer)
    try:
        _set_up(site)
    except BaseException:
        stop_fleet(nodes)
        balancer.stop()
        raise
    return site


def _set_up(site: Site) -> None:
    from jobsync.failover.repoint import point_name

    nodes = site.nodes
    table = fleet_check_table(site, nas_port=site.nas.port)
    n1 = nodes["n1"]
    (n1.folder / "Daily Report.jobs").write_bytes(b"<job>daily</job>")
    for node in nodes.values():
        with node.config.open("a") as config:
            config.write(table)
        site.write(node, SETTINGS, settings_config(node.name, site.folders()))
        site.write(node, SERVER_CONFIG, server_config(node.name))
        site.write(node, IIS, application_host())
        site.write(node, TASK, scheduled_task(node))
        set_spooler(node, running=node is n1)
        node.hosts.write_bytes(point_name(node.hosts.read_bytes(), SERVICES_NAME, n1.address).data)
    for args in (("takeover",), ("push", "--as-services-node")):
        done = n1.run(*args)
        assert done.returncode == 0, done.stdout + done.stderr
    for node in nodes.values():
        node.run("check")  # as install.ps1 does: each node records itself (node.json)
