"""A recording runner that answers as Windows' service manager and Task Scheduler would.

It keeps the services and tasks that the commands create, answers ``sc.exe`` and ``schtasks.exe``
in their own words (exit codes and the lines jobsync reads), and records every command line.
``schtasks /Run`` really runs the task's action on this machine, so a task's definition is
proved by running it. Only the tools' answers are simulated; jobsync's decisions are real.

:func:`node_config` and :func:`fake_winsw` give a test a node to install and the WinSW to
install it with.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jobsync.config.load import load_config
from jobsync.config.model import Config
from jobsync.integrify_files import TASK_NAMESPACE
from jobsync.windows import Completed, Tools

TASK = {"t": TASK_NAMESPACE}
POWERSHELL_REGISTER = re.compile(
    r"Register-ScheduledTask -TaskName '((?:[^']|'')*)' "
    r"-Xml \(Get-Content -Raw -LiteralPath '((?:[^']|'')*)'\) -Force \| Out-Null"
)
STATES = {"STOPPED": 1, "START_PENDING": 2, "STOP_PENDING": 3, "RUNNING": 4}


@dataclass
class Service:
    """One service as the service manager holds it."""

    exe: str
    state: str = "STOPPED"
    start_name: str = "LocalSystem"
    pending: int = 0  # queries still answered with a *_PENDING state


@dataclass
class FakeWindows:
    """The runner: call it with a command line; inspect ``commands``, ``services``, ``tasks``."""

    typed_account: str | None = None  # what the administrator types at WinSW's prompt
    home_owner: str = "BUILTIN\\Administrators"  # what Get-Acl says owns jobsync's folder
    unknown_accounts: set[str] = field(default_factory=set)  # sc.exe config answers 1332
    event_sources: set[str] = field(default_factory=set)  # registered with New-EventLog
    pending_queries: int = 1
    commands: list[list[str]] = field(default_factory=list)
    interactive: list[list[str]] = field(default_factory=list)
    services: dict[str, Service] = field(default_factory=dict)
    tasks: dict[str, str] = field(default_factory=dict)  # name -> its XML
    said: list[str] = field(default_factory=list)

    def tools(self) -> Tools:
        """Tools that use this runner, record what is said and never really sleep."""
        clock = [0.0]

        def sleep(seconds: float) -> None:
            clock[0] += seconds

        return Tools(run=self, say=self.said.append, sleep=sleep, clock=lambda: clock[0])

    def __call__(self, argv: Sequence[str], *, interactive: bool = False) -> Completed:
        """Answer one command line."""
        argv = list(argv)
        self.commands.append(argv)
        if interactive:
            self.interactive.append(argv)
        tool = Path(argv[0].replace("\\", "/")).name.lower()
        if tool == "sc.exe":
            return self._sc(argv[1], argv[2], argv[3:])
        if tool == "schtasks.exe":
            return self._schtasks(argv[1:])
        if tool == "powershell.exe":
            return self._powershell(argv[-1])
        if tool == "icacls.exe":
            return Completed(0, "processed file")
        return self._winsw(argv)

    def _sc(self, verb: str, name: str, rest: list[str]) -> Completed:
        service = self.services.get(name)
        if service is None:
            return Completed(1060, "[SC] OpenService FAILED 1060: no such service")
        if verb == "query":
            return self._sc_query(name, service)
        if verb in ("stop", "start"):
            wanted = "STOPPED" if verb == "stop" else "RUNNING"
            if service.state == wanted:
                return Completed(1062 if verb == "stop" else 1056, "already")
            service.state, service.pending = wanted, self.pending_queries
        elif verb == "config":
            account = rest[rest.index("obj=") + 1]
            if account in self.unknown_accounts:
                return Completed(
                    1332,
                    "[SC] ChangeServiceConfig FAILED 1332:\r\n\r\nNo mapping between account "
                    "names and security IDs was done.\r\n",
                )
            service.start_name = account
        elif verb == "qc":
            return Completed(0, f"SERVICE_NAME: {name}\n SERVICE_START_NAME : {service.start_name}")
        elif verb == "delete":
            del self.services[name]
        return Completed(0)

    @staticmethod
    def _sc_query(name: str, service: Service) -> Completed:
        shown = service.state
        if service.pending:  # the state it is heading for shows after a query or two
            service.pending -= 1
            shown = "STOP_PENDING" if service.state == "STOPPED" else "START_PENDING"
        return Completed(0, f"SERVICE_NAME: {name}\n  STATE : {STATES[shown]}  {shown}\n")

    def _winsw(self, argv: list[str]) -> Completed:
        exe = Path(argv[0])
        definition = ET.parse(exe.with_suffix(".xml")).getroot()  # noqa: S314 - jobsync's own
        service_id = definition.findtext("id") or ""
        if argv[1] == "install":
            if service_id in self.services:
                return Completed(1, "Service with id already exists")
            account = self.typed_account if "/p" in argv else "LocalSystem"
            self.services[service_id] = Service(str(exe), start_name=account or "LocalSystem")
        elif argv[1] == "uninstall":
            self.services.pop(service_id)
        return Completed(0)

    def _schtasks(self, args: list[str]) -> Completed:
        verb, name = args[0], args[args.index("/TN") + 1]
        if verb == "/Create":
            xml = Path(args[args.index("/XML") + 1]).read_text(encoding="utf-16")
            self.tasks[name] = xml
            return Completed(0, "SUCCESS")
        if name not in self.tasks:
            return Completed(1, "ERROR: The system cannot find the file specified.")
        if verb == "/Query":
            return Completed(0, self.tasks[name] if "/XML" in args else name)
        if verb == "/Delete":
            del self.tasks[name]
        elif verb == "/Change":
            root = ET.fromstring(self.tasks[name])  # noqa: S314 - jobsync's own XML
            root.find("t:Settings/t:Enabled", TASK).text = str("/ENABLE" in args).lower()  # type: ignore[union-attr]
            self.tasks[name] = ET.tostring(root, encoding="unicode")
        elif verb == "/Run":
            return self._run_task(self.tasks[name])
        return Completed(0)

    def _powershell(self, command: str) -> Completed:
        """The three PowerShell lines jobsync runs: an owner, the Event Log, a gMSA task."""
        if command.startswith("(Get-Acl"):
            return Completed(0, self.home_owner + "\r\n")
        if "EventLog" in command:
            return self._event_log(command)
        return self._register_from_powershell(command)

    def _event_log(self, command: str) -> Completed:
        """New-EventLog / Remove-EventLog, each guarded by SourceExists as jobsync writes them."""
        found = re.search(
            r"(New|Remove)-EventLog (?:-LogName Application )?-Source '([^']+)'", command
        )
        assert found, command
        verb, source = found.groups()
        if verb == "New":
            self.event_sources.add(source)
        else:
            self.event_sources.discard(source)
        return Completed(0)

    def _register_from_powershell(self, command: str) -> Completed:
        found = POWERSHELL_REGISTER.fullmatch(command)
        assert found, command
        name, path = (group.replace("''", "'") for group in found.groups())
        self.tasks[name] = Path(path).read_text(encoding="utf-16")
        return Completed(0)

    def _run_task(self, xml: str) -> Completed:
        """Run the task's action here, as Task Scheduler would, and wait for it."""
        root = ET.fromstring(xml)  # noqa: S314 - jobsync's own XML
        action = root.find("t:Actions/t:Exec", TASK)
        assert action is not None
        command = [action.findtext("t:Command", namespaces=TASK) or sys.executable]
        command += shlex.split(action.findtext("t:Arguments", namespaces=TASK) or "")
        folder = action.findtext("t:WorkingDirectory", namespaces=TASK)
        subprocess.run(command, cwd=folder, check=False, capture_output=True, timeout=120)
        return Completed(0, "SUCCESS: Attempted to run the scheduled task")


WINSW_BYTES = b"MZ stands in for WinSW-x64.exe"  # what fake_winsw() writes


def node_config(tmp_path: Path, account: str | None = None) -> Config:
    """A node whose one peer is a local folder, with the service account given."""
    source, peer = tmp_path / "jobs", tmp_path / "peer"
    source.mkdir(exist_ok=True)
    peer.mkdir(exist_ok=True)
    (source / "a.jobs").write_bytes(b"a")
    service = f"[service]\naccount = '{account}'\n" if account else ""
    home = tmp_path / "ProgramData" / "jobsync"
    home.mkdir(parents=True, exist_ok=True)
    path = home / "jobsync.toml"
    path.write_text(
        "node = 'node1'\nnode_differs_from_host = true\n"
        f"source = '{source}'\n[[peers]]\nname = 'node2'\npath = '{peer}'\n" + service,
        encoding="utf-8",
    )
    return load_config(path, environ={})


def fake_winsw(tmp_path: Path) -> tuple[Path, str]:
    """A stand-in for WinSW-x64.exe under ``tmp_path``, and its SHA-256."""
    exe = tmp_path / "downloads" / "WinSW-x64.exe"
    exe.parent.mkdir(exist_ok=True)
    exe.write_bytes(WINSW_BYTES)
    return exe, hashlib.sha256(WINSW_BYTES).hexdigest()
