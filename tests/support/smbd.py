r"""Throwaway Samba servers (``smbd``) on loopback for tests.

Each :class:`SambaPeer` runs its own ``smbd`` with a private ``smb.conf``,
port, state folders and password database under one temp folder, so peers
never interfere with each other or with a system Samba.  Everything runs as
root (smbd insists), and files in the share are served as the Unix user
``jobsynctest``.

Typical use::

    peer = start_peer(tmp_path)
    try:
        ...  # talk to peer.unc("a", "b") on peer.port
    finally:
        peer.stop()

A peer started with ``spooler=True`` also stands in for a Windows node's service manager:
Samba's built-in ``Spooler`` service really starts and stops over MS-SCMR, and the test user
is a member of BUILTIN\Administrators, as remote service control requires. Its state lives in
the ``rpcd_classic`` helper (one worker, so every client sees one state), which exits after
about 60 s without a client and starts again with Spooler RUNNING: keep a test's calls within
that window. :meth:`SambaPeer.service_state` asks with Samba's own client, to cross-check.
"""

from __future__ import annotations

import atexit
import contextlib
import grp
import os
import pwd
import shutil
import signal
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from support.polling import poll_until
from support.ports import free_port, port_open

__all__ = [
    "ADMIN_SHARE",
    "DEFAULT_PASSWORD",
    "HOST",
    "SHARE_NAME",
    "TEST_USER",
    "SambaPeer",
    "SambaUnavailableError",
    "start_peer",
]

TEST_USER = "jobsynctest"
DEFAULT_PASSWORD = "S3cret-pw!"  # noqa: S105 -- throwaway account on loopback
PASSWORD_ENV = "JOBSYNC_TEST_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
SHARE_NAME = "jobs"
ADMIN_SHARE = "C$"
HOST = "127.0.0.1"
# The Unix group mapped to BUILTIN\Administrators on peers started with ``spooler=True``.
_ADMIN_GROUP = "jobsyncadmins"
_ADMINISTRATORS_SID = "S-1-5-32-544"
_SERVICES_KEY = "HKLM\\SYSTEM\\CurrentControlSet\\Services"
_HOSTS_FOLDER = ("Windows", "System32", "drivers", "etc")

_ENCRYPT_VALUES = ("desired", "off", "required")
_START_TIMEOUT = 20.0
# Installing winbind (for the Kerberos tests' domain controller) may add it to nsswitch.conf;
# a standalone smbd would then ask winbindd about users and refuse every NTLM logon.
_SMBD_ENV = {**os.environ, "_NO_WINBINDD": "1"}
_STOP_TIMEOUT = 10.0
_POLL_INTERVAL = 0.05
_LOG_TAIL_LINES = 20

# Peers whose smbd is running, keyed by id(): stopped at interpreter exit should a test
# runner die without running its fixture teardowns.
_running: dict[int, SambaPeer] = {}


@atexit.register
def _stop_leftovers() -> None:
    for peer in list(_running.values()):
        with contextlib.suppress(Exception):
            peer.stop()


class SambaUnavailableError(RuntimeError):
    """A test smbd could not be started; the message says why in one line."""


def _find_binary(name: str) -> str:
    """Return the path of a Samba binary; sbin is often not on PATH."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])
    found = shutil.which(name, path=search)
    if found is None:
        raise SambaUnavailableError(f"{name} not found (install samba)")
    return found


def _check_root() -> None:
    if os.geteuid() != 0:
        raise SambaUnavailableError(f"smbd must run as root, but euid is {os.geteuid()}")


def _ensure_user(user: str) -> pwd.struct_passwd:
    """Return the Unix account ``user``, creating it (no home) if missing."""
    try:
        return pwd.getpwnam(user)
    except KeyError:
        pass
    useradd = _find_binary("useradd")
    result = subprocess.run(
        [useradd, "-M", "-s", "/usr/sbin/nologin", user],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        # Another worker may have created it concurrently (useradd exit 9).
        return pwd.getpwnam(user)
    except KeyError:
        raise SambaUnavailableError(
            f"cannot create Unix user {user}: {(result.stderr or result.stdout).strip()}"
        ) from None


def _ensure_member(user: str, group: str) -> None:
    """Make ``user`` a member of the Unix group ``group``, creating the group if missing."""
    if any(user in entry.gr_mem for entry in grp.getgrall() if entry.gr_name == group):
        return
    for command in (
        [_find_binary("groupadd"), "-f", group],
        [_find_binary("usermod"), "-a", "-G", group, user],
    ):
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SambaUnavailableError(
                f"{' '.join(command)} failed: {(result.stderr or result.stdout).strip()}"
            )


def _make_traversable(path: Path) -> None:
    """Give "others" search permission on every ancestor of ``path``.

    smbd opens the share as the unprivileged test user, who must be able to
    walk down from ``/``; pytest and mkdtemp create 0700 folders.
    """
    for folder in path.resolve().parents:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def _proc_stat(pid: str) -> tuple[str, int] | None:
    """(state, pgid) of a process from /proc, or None if it is gone."""
    try:
        raw = Path("/proc", pid, "stat").read_text()
    except OSError:
        return None
    # Fields after "(comm)" are: state ppid pgrp ...; comm may hold spaces.
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[0], int(fields[2])


def _live_processes(pgid: int, conf: Path) -> dict[int, int]:
    """Live (non-zombie) processes of one test smbd, as {pid: pgid}.

    That is everything in the master's process group plus anything started
    with ``conf``: smbd spawns samba-dcerpcd (and its rpcd_* workers) on
    demand, and samba-dcerpcd moves itself into a session of its own.
    """
    conf_args = (str(conf).encode(), f"--configfile={conf}".encode())
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        info = _proc_stat(entry.name)
        if info is None or info[0] == "Z":
            continue
        group = info[1]
        if group != pgid:
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if not any(arg in conf_args for arg in argv):
                continue
        found[int(entry.name)] = group
    return found


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _signal_all(pgid: int, conf: Path, sig: signal.Signals) -> None:
    """Send ``sig`` to the master's group and to the group of any helper it started."""
    groups = {pgid, *_live_processes(pgid, conf).values()}
    for group in sorted(groups):
        _signal_group(group, sig)


def stop_tree(proc: subprocess.Popen[bytes], conf: Path) -> None:
    """Stop a Samba master started with ``conf`` and every process it spawned.

    Raises RuntimeError if some process survives SIGKILL (should never happen), so leaks show
    up as test errors rather than stray daemons.
    """
    pgid = proc.pid
    # A stopped (frozen) process only acts on SIGTERM once continued.
    _signal_all(pgid, conf, signal.SIGCONT)
    _signal_all(pgid, conf, signal.SIGTERM)
    try:
        proc.wait(timeout=_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        _signal_all(pgid, conf, signal.SIGKILL)
        proc.wait(timeout=_STOP_TIMEOUT)
    # Children and helpers that left the group are not our children: poll until gone.
    for final_signal in (signal.SIGTERM, signal.SIGKILL):
        _signal_all(pgid, conf, final_signal)
        if poll_until(
            lambda: not _live_processes(pgid, conf), timeout=_STOP_TIMEOUT, interval=_POLL_INTERVAL
        ):
            return
    left = _live_processes(pgid, conf)
    raise RuntimeError(f"Samba processes {sorted(left)} of {conf} survived SIGKILL")


@dataclass
class SambaPeer:
    """One private ``smbd`` serving the share ``jobs`` on ``127.0.0.1:port``.

    All of its files (config, state, logs and the shared folder) live under
    ``root``.  ``encrypt`` is the ``server smb encrypt`` setting: "desired",
    "off" or "required"; ``min_protocol`` and ``max_protocol`` bound the dialect (e.g.
    "SMB2_02", "SMB3_00"). ``options`` are extra ``[global]`` lines and ``share_options``
    extra lines of the share, to make this peer behave like a particular server (``smb2 max
    trans = 65536``, ``smb2 max credits = 8``, ``vfs objects = acl_xattr``, ...).

    ``spooler`` serves Samba's ``Spooler`` service over MS-SCMR, with the test user an
    administrator (see the module's docstring); ``admin_root`` is served as the share ``C$``,
    standing in for a Windows node's admin share (``True``: the folder ``C`` under ``root``),
    with the folder of the hosts file (``Windows/System32/drivers/etc``) in it.
    """

    root: Path
    share_path: Path
    port: int
    user: str = TEST_USER
    password: str = DEFAULT_PASSWORD
    encrypt: str = "desired"
    max_protocol: str = "SMB3_11"
    min_protocol: str = "SMB2_10"
    options: tuple[str, ...] = ()
    share_options: tuple[str, ...] = ()
    spooler: bool = False
    admin_root: Path | bool | None = None
    _proc: subprocess.Popen[bytes] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _output: IO[bytes] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Reject an ``encrypt`` value smbd would not understand."""
        if self.encrypt not in _ENCRYPT_VALUES:
            raise ValueError(f"encrypt must be one of {_ENCRYPT_VALUES}, not {self.encrypt!r}")

    # -- paths ----------------------------------------------------------

    @property
    def conf_path(self) -> Path:
        """The smb.conf this smbd runs with."""
        return self.root / "smb.conf"

    @property
    def log_path(self) -> Path:
        """The ``log file`` smbd writes to."""
        return self.root / "log" / "smbd.log"

    @property
    def output_path(self) -> Path:
        """Where smbd's stdout and stderr go."""
        return self.root / "log" / "smbd.out"

    @property
    def admin_path(self) -> Path | None:
        """The folder served as ``C$``, if any."""
        if self.admin_root is True:
            return self.root / "C"
        return self.admin_root or None

    @property
    def pid(self) -> int | None:
        """PID of the master smbd (also its process group id), if running."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    @property
    def running(self) -> bool:
        """True while the master smbd process is alive."""
        return self.pid is not None

    # -- lifecycle ------------------------------------------------------

    def _state_dirs(self) -> dict[str, Path]:
        return {
            "lock directory": self.root / "lock",
            "state directory": self.root / "state",
            "cache directory": self.root / "cache",
            "pid directory": self.root / "run",
            "private dir": self.root / "private",
            "ncalrpc dir": self.root / "run" / "ncalrpc",
            "ntp signd socket directory": self.root / "run" / "ntp_signd",
            "winbindd socket directory": self.root / "run" / "winbindd",
        }

    def _write_conf(self) -> None:
        dirs = self._state_dirs()
        for folder in [*dirs.values(), self.log_path.parent]:
            folder.mkdir(parents=True, exist_ok=True)
        lines = [
            "[global]",
            "    interfaces = lo",
            "    bind interfaces only = yes",
            f"    smb ports = {self.port}",
            "    disable netbios = yes",
            *(f"    {key} = {path}" for key, path in dirs.items()),
            f"    log file = {self.log_path}",
            "    log level = 1",
            "    max log size = 0",
            f"    passdb backend = tdbsam:{self.root / 'private' / 'passdb.tdb'}",
            "    security = user",
            "    map to guest = never",
            f"    disable spoolss = {'no' if self.spooler else 'yes'}",
            *(["    rpcd_classic:num_workers = 1"] if self.spooler else []),
            "    load printers = no",
            "    printing = bsd",
            "    printcap name = /dev/null",
            f"    server min protocol = {self.min_protocol}",
            f"    server max protocol = {self.max_protocol}",
            f"    server smb encrypt = {self.encrypt}",
            *(f"    {line}" for line in self.options),
            "",
            f"[{SHARE_NAME}]",
            f"    path = {self.share_path}",
            "    read only = no",
            "    browseable = yes",
            f"    valid users = {self.user}",
            "    create mask = 0644",
            "    directory mask = 0755",
            *(f"    {line}" for line in self.share_options),
            "",
        ]
        if self.admin_path is not None:
            lines += [
                f"[{ADMIN_SHARE}]",
                f"    path = {self.admin_path}",
                "    read only = no",
                "    browseable = no",
                f"    valid users = {self.user}",
                "",
            ]
        self.conf_path.write_text("\n".join(lines))

    def _prepare(self) -> None:
        """Create folders, the Unix user and the Samba account."""
        _check_root()
        account = _ensure_user(self.user)
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        self.share_path.mkdir(parents=True, exist_ok=True)
        os.chown(self.share_path, account.pw_uid, account.pw_gid)
        self.share_path.chmod(0o755)
        _make_traversable(self.share_path)
        if self.admin_path is not None:
            etc = self.admin_path.joinpath(*_HOSTS_FOLDER)  # as on every Windows C$
            etc.mkdir(parents=True, exist_ok=True)
            for folder in (etc, *etc.parents):
                os.chown(folder, account.pw_uid, account.pw_gid)
                if folder == self.admin_path:
                    break
            _make_traversable(etc)
        self._write_conf()
        self._smbpasswd(self.user, self.password)
        if self.spooler:
            self._make_administrator(self.user)

    def _make_administrator(self, user: str) -> None:
        r"""Map a Unix group holding ``user`` to BUILTIN\Administrators on this peer."""
        _ensure_member(user, _ADMIN_GROUP)
        listed = self._net("groupmap", "list", f"sid={_ADMINISTRATORS_SID}", check=False)
        if _ADMINISTRATORS_SID not in listed:
            self._net(
                "groupmap", "add", f"sid={_ADMINISTRATORS_SID}", f"unixgroup={_ADMIN_GROUP}",
                "type=builtin",
            )  # fmt: skip

    def _net(self, *args: str, check: bool = True, password: str | None = None) -> str:
        """Run Samba's ``net`` with this peer's smb.conf; its output.

        ``password`` goes in the environment (``PASSWD``), never on the command line.
        """
        env = _SMBD_ENV if password is None else {**_SMBD_ENV, "PASSWD": password}
        result = subprocess.run(
            [_find_binary("net"), *args, "-s", str(self.conf_path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=env,
        )
        if check and result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise SambaUnavailableError(
                f"net {args[0]} {args[1]} failed (exit {result.returncode}): "
                + " | ".join(detail[-3:])
            )
        return result.stdout

    def service_state(
        self, service: str = "Spooler", *, user: str | None = None, password: str | None = None
    ) -> str:
        """The service's state as Samba's own client reports it ("running", "stopped", ...).

        An independent observer for tests of jobsync's own client; ``user`` (default: the test
        user) logs on with ``password`` (default: this peer's).
        """
        out = self._net(
            "rpc", "service", "status", service, "-S", HOST, "-p", str(self.port),
            "--user", user or self.user, password=password or self.password,
        )  # fmt: skip
        first = out.splitlines()[0] if out else ""
        prefix, suffix = f"{service} service is ", "."
        if not (first.startswith(prefix) and first.endswith(suffix)):
            raise RuntimeError(f"net rpc service status answered {first!r}")
        return first[len(prefix) : -len(suffix)]

    def set_service_value(self, service: str, name: str, value: str) -> None:
        """Write a string value of the service's registry key, as a Windows admin could.

        The service manager reads ``ObjectName`` (the account) from there at once. The rpcd
        helpers write their defaults back when they start, so call this after a first RPC.
        """
        key = f"{_SERVICES_KEY}\\{service}"
        self._net("registry", "setvalue", key, name, "sz", value)

    def add_user(self, user: str, password: str) -> pwd.struct_passwd:
        """Create a second account (Unix and Samba) on this peer; returns the Unix account."""
        account = _ensure_user(user)
        self._smbpasswd(user, password)
        return account

    def _smbpasswd(self, user: str, password: str) -> None:
        """Add ``user`` to this peer's password database."""
        result = subprocess.run(
            [_find_binary("smbpasswd"), "-c", str(self.conf_path), "-s", "-a", user],
            input=f"{password}\n{password}\n",
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            env=_SMBD_ENV,
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise SambaUnavailableError(
                f"smbpasswd -a {user} failed (exit {result.returncode}): " + " | ".join(detail[-3:])
            )

    def _failure(self, reason: str) -> SambaUnavailableError:
        tail = [
            *(f"[smbd.log] {line}" for line in _tail(self.log_path)),
            *(f"[smbd.out] {line}" for line in _tail(self.output_path)),
        ]
        where = f"smbd on {HOST}:{self.port} (root {self.root})"
        if not tail:
            return SambaUnavailableError(f"{where}: {reason}; no log output")
        return SambaUnavailableError(f"{where}: {reason}; log tail:\n" + "\n".join(tail))

    def start(self) -> None:
        """Write smb.conf, start smbd and wait until its port accepts TCP.

        Raises SambaUnavailableError (with the log tail) if smbd cannot be
        started or does not listen within 20 seconds.
        """
        if self.running:
            raise RuntimeError(f"smbd for {self.root} is already running")
        self._discard_process()
        smbd = _find_binary("smbd")
        # Someone else listening there would pass our readiness probe.
        if port_open(self.port):
            raise SambaUnavailableError(f"port {HOST}:{self.port} is already in use")
        self._prepare()
        self._output = self.output_path.open("ab")
        try:
            self._proc = subprocess.Popen(
                [smbd, "-s", str(self.conf_path), "--foreground", "--no-process-group"],
                stdin=subprocess.DEVNULL,
                stdout=self._output,
                stderr=subprocess.STDOUT,
                env=_SMBD_ENV,
                # smbd SIGTERMs its whole process group on shutdown; give it
                # its own so it cannot hit the test runner (and so that
                # freeze/stop reach every child it forks).
                start_new_session=True,
            )
        except OSError as exc:
            self._discard_process()
            raise SambaUnavailableError(f"cannot run {smbd}: {exc}") from exc
        _running[id(self)] = self

        proc = self._proc
        poll_until(
            lambda: proc.poll() is not None or port_open(self.port),
            timeout=_START_TIMEOUT,
            interval=_POLL_INTERVAL,
        )
        code = proc.poll()
        if code is not None:
            error = self._failure(f"smbd exited at start with code {code}")
            self._discard_process()
            raise error
        if not port_open(self.port):
            error = self._failure(f"port never opened within {_START_TIMEOUT:.0f} s")
            self.stop()
            raise error

    def _signal_all(self, pgid: int, sig: signal.Signals) -> None:
        _signal_all(pgid, self.conf_path, sig)

    def stop(self) -> None:
        """Stop smbd and every process it spawned; safe to call twice.

        Raises RuntimeError if some process survives SIGKILL (should never
        happen), so leaks show up as test errors rather than stray daemons.
        """
        proc = self._proc
        if proc is None:
            return
        stop_tree(proc, self.conf_path)
        self._discard_process()

    def _discard_process(self) -> None:
        _running.pop(id(self), None)
        self._proc = None
        if self._output is not None:
            self._output.close()
            self._output = None

    def restart(self) -> None:
        """Stop and start smbd again on the same port."""
        self.stop()
        self.start()

    def _group(self) -> int:
        pid = self.pid
        if pid is None:
            raise RuntimeError(f"smbd for {self.root} is not running")
        return pid

    def freeze(self) -> None:
        """SIGSTOP every process of this smbd, simulating a hung server.

        The kernel still completes TCP handshakes into the listen backlog,
        so connects succeed but no SMB request is ever answered.
        """
        self._signal_all(self._group(), signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT every process of this smbd (undoes :meth:`freeze`)."""
        self._signal_all(self._group(), signal.SIGCONT)

    # -- share helpers --------------------------------------------------

    def unc(self, *parts: str) -> str:
        r"""UNC path inside the share, e.g. ``\\127.0.0.1\jobs\a\b``."""
        return "\\".join([f"\\\\{HOST}", SHARE_NAME, *parts])

    def peer_toml(
        self,
        name: str,
        *parts: str,
        password_env: str,
        port: int | None = None,
        path: str | None = None,
    ) -> list[str]:
        """The jobsync ``[[peers]]`` entry that reaches ``parts`` in this share over SMB.

        ``port`` and ``path`` replace the peer's own (a proxy in front of it, another UNC form).
        """
        return [
            "[[peers]]",
            f'name = "{name}"',
            f"path = '{path or self.unc(*parts)}'",
            f"port = {self.port if port is None else port}",
            f'username = "{self.user}"',
            f'password_env = "{password_env}"',
        ]

    def mkdir(self, *parts: str) -> Path:
        """Create ``share_path/parts...`` owned by the test user; return it."""
        account = pwd.getpwnam(self.user)
        path = self.share_path
        for part in parts:
            path = path / part
            path.mkdir(exist_ok=True)
            os.chown(path, account.pw_uid, account.pw_gid)
        return path


def start_peer(
    base: Path,
    *,
    encrypt: str = "desired",
    password: str = DEFAULT_PASSWORD,
    max_protocol: str = "SMB3_11",
    min_protocol: str = "SMB2_10",
    options: tuple[str, ...] = (),
    share_options: tuple[str, ...] = (),
    spooler: bool = False,
    admin_root: Path | bool | None = None,
) -> SambaPeer:
    """Start a fresh peer in a new folder under ``base`` on a free port (see :class:`SambaPeer`)."""
    _check_root()
    _find_binary("smbd")
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    root = base / f"smbd-{port}"
    suffix = 0
    while root.exists():  # the same port may be handed out twice
        suffix += 1
        root = base / f"smbd-{port}-{suffix}"
    root.mkdir()
    peer = SambaPeer(
        root=root,
        share_path=root / "share",
        port=port,
        user=TEST_USER,
        password=password,
        encrypt=encrypt,
        max_protocol=max_protocol,
        min_protocol=min_protocol,
        options=tuple(options),
        share_options=tuple(share_options),
        spooler=spooler,
        admin_root=admin_root,
    )
    peer.start()
    return peer
