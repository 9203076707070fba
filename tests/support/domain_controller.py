"""A real Samba AD domain controller on loopback, for Kerberos logons in tests.

The docs recommend running jobsync as a gMSA or the computer account with no user name in the
config: peers are then reached with a Kerberos ticket. :class:`DomainController` provisions a
throwaway domain (TEST.LAN) under a temp folder, runs ``samba`` in the foreground, shares
``integrify$`` on its own SMB port, and prepares a ``krb5.conf``, a keytab and a credential
cache for the Administrator account. Tickets last ``TICKET_LIFETIME`` (the shortest the MIT
client accepts), so a session's expiry can be met in minutes.

It also serves the domain's DNS zone (``test.lan``) with Samba's internal DNS server, as an AD
DC does, on a port of its own (``dns_port``): a secure zone that takes only updates signed
with GSS-TSIG, for the failover's signed updates of the services name.

Every port it binds is chosen free (the KDC and kpasswd through ``krb5 port`` and ``kpasswd
port``; the services that only have fixed ports, LDAP among them, are not run), so two suites,
or a suite and a system Samba, can run at once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from support.polling import poll_until
from support.ports import free_port, port_open
from support.smbd import SambaUnavailableError, stop_tree

REALM = "TEST.LAN"
ZONE = "test.lan"  # the domain's DNS zone, served by the DC
DC_HOST_NAME = "dc1.test.lan"  # the zone's SOA MNAME: clients ask Kerberos for DNS/<it>
SHARE = "integrify$"
HOST = "127.0.0.1"
TICKET_LIFETIME_SECONDS = 300  # "5m": the MIT client refuses anything shorter
_ADMIN_PASSWORD = "Adm1n!Passw0rd"  # noqa: S105 - a throwaway domain on loopback
_START_TIMEOUT = 90.0
# Only what the tests use: SMB, the KDC, the internal DNS server and winbindd (which the DC's
# smbd asks about its users). Left out are the services that can only listen on fixed ports
# (LDAP 389/636/3268/3269, CLDAP, NetBIOS 137/138, the endpoint mapper 135), so that the DC
# binds nothing but ports chosen free and two suites can run at once. samba-tool works on the
# database directly (-s smb.conf), not over LDAP.
_SERVICES = "s3fs kdc dns winbindd"


def _binary(name: str) -> str:
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    found = shutil.which(name, path=search)
    if found is None:
        raise SambaUnavailableError(f"{name} not found (install samba-ad-dc and krb5-user)")
    return found


def _rpc_ports() -> str:
    """A thousand ports outside this machine's ephemeral range, for the DC's RPC servers."""
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text(encoding="ascii")
        low, high = (int(part) for part in text.split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    if high + 1000 <= 65535:
        return f"{high + 1}-{high + 1000}"
    return f"{low - 1000}-{low - 1}"


@dataclass
class DomainController:
    """A provisioned and running Samba AD DC under ``root``."""

    root: Path
    smb_port: int = field(default_factory=free_port)
    dns_port: int = field(default_factory=free_port)
    kdc_port: int = field(default_factory=free_port)
    kpasswd_port: int = field(default_factory=free_port)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _output: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def conf_path(self) -> Path:
        """The DC's smb.conf."""
        return self.root / "dc" / "etc" / "smb.conf"

    @property
    def share_path(self) -> Path:
        """The folder behind the share integrify$."""
        return self.root / "share"

    @property
    def keytab(self) -> Path:
        """The Administrator's keys: a service account's stand-in (gMSA, computer account)."""
        return self.root / "admin.keytab"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a process that logs on as the current account with Kerberos.

        ``KRB5_CLIENT_KTNAME`` lets the Kerberos library fetch a new ticket from the keytab
        when the old one ends, as Windows does for a gMSA or the computer account.
        """
        return {
            "KRB5_CONFIG": str(self.root / "krb5.conf"),
            "KRB5CCNAME": f"FILE:{self.root / 'ccache'}",
            "KRB5_CLIENT_KTNAME": str(self.keytab),
        }

    def unc(self, *parts: str) -> str:
        """A UNC path inside the DC's share."""
        return "\\".join([f"\\\\{HOST}", SHARE, *parts])

    def start(self) -> None:
        """Provision, start, and prepare Kerberos; raises SambaUnavailableError with the reason."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._provision()
        self.share_path.mkdir(exist_ok=True)
        self.share_path.chmod(0o777)
        with self.conf_path.open("a") as conf:
            conf.write(f"\n[{SHARE}]\n\tpath = {self.share_path}\n\tread only = No\n")
        self._output = (self.root / "samba.out").open("ab")
        self._proc = subprocess.Popen(
            [_binary("samba"), "-s", str(self.conf_path), "-i", "--debug-stdout", "-d0"],
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # samba signals its process group when it stops
        )
        proc = self._proc

        ports = (self.kdc_port, self.smb_port, self.dns_port)

        def up_or_gone() -> bool:
            return proc.poll() is not None or all(map(port_open, ports))

        poll_until(up_or_gone, timeout=_START_TIMEOUT, interval=0.2)
        if proc.poll() is not None or not all(map(port_open, ports)):
            tail = (self.root / "samba.out").read_text(errors="replace")[-2000:]
            self.stop()
            raise SambaUnavailableError(f"the domain controller did not start:\n{tail}")
        # So that cifs/127.0.0.1 names the DC: peers are reached by address in tests.
        self._tool("spn", "add", f"cifs/{HOST}", "DC1$")
        self._tool("domain", "exportkeytab", str(self.keytab), f"--principal=Administrator@{REALM}")
        (self.root / "krb5.conf").write_text(
            "[libdefaults]\n"
            f"  default_realm = {REALM}\n"
            "  dns_lookup_realm = false\n  dns_lookup_kdc = false\n  rdns = false\n"
            "  dns_canonicalize_hostname = false\n"
            f"  ticket_lifetime = {TICKET_LIFETIME_SECONDS // 60}m\n"
            f"[realms]\n  {REALM} = {{\n    kdc = {HOST}:{self.kdc_port}\n"
            f"    kpasswd_server = {HOST}:{self.kpasswd_port}\n  }}\n"
        )
        self.kinit()

    def kinit(self) -> None:
        """Get a fresh ticket for the Administrator from the keytab."""
        self._run(
            [_binary("kinit"), "-k", "-t", str(self.keytab), f"Administrator@{REALM}"],
            env={**os.environ, **self.env},
        )

    def add_user(self, name: str, password: str) -> str:
        """Create a plain domain user; its principal, ``name@REALM``."""
        self._tool("user", "create", name, password)
        return f"{name}@{REALM}"

    def _provision(self) -> None:
        run = self.root / "run"
        run.mkdir(parents=True, exist_ok=True)
        options = {
            "interfaces": "lo",
            "bind interfaces only": "yes",
            "smb ports": str(self.smb_port),
            # The internal DNS server (--dns-backend=SAMBA_INTERNAL) on a port of its own, so
            # that it needs no port 53 and leaves the host's resolver alone.
            "dns port": str(self.dns_port),
            "krb5 port": str(self.kdc_port),
            "kpasswd port": str(self.kpasswd_port),
            "server services": _SERVICES,
            # Samba's default 49152-65535 overlaps the ports the kernel hands out to every
            # outgoing connection and to the suite's peers: once 127.0.0.1:49154 was taken and
            # the DC did not start. A range outside the ephemeral one cannot collide.
            "rpc server dynamic port range": _rpc_ports(),
            "pid directory": str(run),
            # Not "winbindd socket directory": the DC's smbd finds its winbindd through
            # libwbclient's built-in path only. Its winbindd therefore listens where a system
            # winbindd would, and the standalone test peers run with _NO_WINBINDD=1
            # (support/smbd.py) so that they never ask it about their users.
            "log file": str(self.root / "log.%m"),
        }
        self._run(
            [
                _binary("samba-tool"),
                "domain",
                "provision",
                f"--targetdir={self.root / 'dc'}",
                f"--realm={REALM}",
                "--domain=TEST",
                "--server-role=dc",
                "--dns-backend=SAMBA_INTERNAL",
                f"--adminpass={_ADMIN_PASSWORD}",
                "--host-name=dc1",
                *(f"--option={key}={value}" for key, value in options.items()),
            ]
        )

    def _tool(self, *args: str) -> None:
        self._run([_binary("samba-tool"), *args, "-s", str(self.conf_path)])

    @staticmethod
    def _run(command: list[str], env: dict[str, str] | None = None) -> None:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=120, check=False, env=env
        )
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip()[-1500:]
            raise SambaUnavailableError(f"{' '.join(command[:3])} failed: {detail}")

    def stop(self) -> None:
        """Stop samba and every process it started; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_tree(proc, self.conf_path)
        if self._output is not None:
            self._output.close()
            self._output = None
