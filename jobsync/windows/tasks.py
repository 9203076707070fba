"""The scheduled tasks: the fallback push, and ``jobsync check`` run as the service's account.

``schtasks.exe`` registers a task from its XML (written UTF-16, as Task Scheduler reads it). The
principal decides how: SYSTEM needs nothing more; an account with a password is named with
``/RU`` and ``/RP *``, so schtasks asks for the password on the console and Task Scheduler keeps
it; a gMSA has no password to give, which schtasks cannot express, so PowerShell's
``Register-ScheduledTask`` registers it (the way Microsoft documents for gMSA tasks).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from jobsync.config import Config
from jobsync.errors import ExitCode
from jobsync.windows import LOCAL_SYSTEM, config_home, is_gmsa, needs_password, write_atomically
from jobsync.windows.acl import secure_home
from jobsync.windows.install import grant_folders
from jobsync.windows.runner import Tools, WindowsToolError
from jobsync.windows.schedule import NAMESPACE, probe_task_xml, task_xml

TASK_XML = "jobsync-task.xml"
PROBE_XML = "jobsync-check-task.xml"
PROBE_RESULT = "check-as-service.json"
PROBE_GRACE_SECONDS = 60.0  # logon and interpreter start, on top of the check's own time


def task_exists(name: str, tools: Tools) -> bool:
    """Whether Task Scheduler has a task of this name."""
    return tools.run(["schtasks.exe", "/Query", "/TN", name]).code == 0


def task_enabled(name: str, tools: Tools) -> bool | None:
    """Whether the task is enabled (None: no such task), from its XML, whatever the language."""
    answer = tools.run(["schtasks.exe", "/Query", "/TN", name, "/XML"])
    if answer.code != 0:
        return None
    try:
        root = ET.fromstring(answer.output.strip())  # noqa: S314 - Task Scheduler's own answer
    except ET.ParseError as exc:
        raise WindowsToolError(f"schtasks.exe /Query /TN {name} /XML: unreadable ({exc})") from None
    enabled = root.findtext("t:Settings/t:Enabled", default="true", namespaces={"t": NAMESPACE})
    return enabled.strip().lower() != "false"


def install_task(config: Config, tools: Tools) -> None:
    """Register (or replace) the fallback push task."""
    schedule = config.schedule
    path = Path(config_home(config)) / TASK_XML
    secure_home(config, tools)  # before the definition is written there
    _register(schedule.task_name, path, task_xml(config), schedule.account, tools)
    tools.say(
        f"task {schedule.task_name!r} registered: jobsync push every "
        f"{schedule.interval_minutes} min, as {schedule.account or LOCAL_SYSTEM}"
    )


def uninstall_task(config: Config, tools: Tools) -> None:
    """Remove the fallback push task, if it is there."""
    name = config.schedule.task_name
    if task_exists(name, tools):
        tools.check(["schtasks.exe", "/Delete", "/TN", name, "/F"])
        tools.say(f"task {name!r} removed")
    else:
        tools.say(f"no task {name!r}: nothing to remove")
    (Path(config_home(config)) / TASK_XML).unlink(missing_ok=True)


def check_as_service(config: Config, tools: Tools) -> tuple[int, str]:
    """Run ``jobsync check`` once as the service's account; its exit code and output.

    A task without triggers, with the service's account as its principal, runs
    ``python -m jobsync.windows.probe``, which writes what the check printed to the state
    folder; the task is removed afterwards, whatever happened.
    """
    name = f"{config.service.id} check"
    account = config.service.account or LOCAL_SYSTEM
    secure_home(config, tools)  # the probe's definition is written there
    grant_folders(config, tools)  # the account writes its answer to the state folder
    result = Path(config.state_dir) / PROBE_RESULT
    result.unlink(missing_ok=True)
    path = Path(config_home(config)) / PROBE_XML
    xml = probe_task_xml(config, name=name, result=result)
    _register(name, path, xml, config.service.account, tools)
    try:
        tools.say(f"running jobsync check as {account} ...")
        tools.check(["schtasks.exe", "/Run", "/TN", name])
        limit = PROBE_GRACE_SECONDS + 4 * config.timeout_seconds
        tools.wait_for(result.is_file, seconds=limit, what=f"the check run as {account}")
        answer = json.loads(result.read_text(encoding="utf-8"))
    finally:
        tools.run(["schtasks.exe", "/Delete", "/TN", name, "/F"])
        path.unlink(missing_ok=True)
        result.unlink(missing_ok=True)
    header = f"jobsync check, run as {answer.get('user') or account}:"
    return int(answer.get("exit_code", ExitCode.PEER_FAILED)), f"{header}\n{answer['output']}"


def _register(name: str, path: Path, xml: str, account: str | None, tools: Tools) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, xml, encoding="utf-16")
    if is_gmsa(account):
        tools.check(
            ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", _ps(name, path)]
        )
    elif needs_password(account):
        tools.say(f"schtasks asks for the password of {account} now; Task Scheduler keeps it")
        create = ["schtasks.exe", "/Create", "/TN", name, "/XML", str(path), "/F"]
        tools.check([*create, "/RU", str(account), "/RP", "*"], interactive=True)
    else:
        tools.check(["schtasks.exe", "/Create", "/TN", name, "/XML", str(path), "/F"])


def _ps(name: str, path: Path) -> str:
    """The PowerShell line that registers a gMSA task (no password exists to pass)."""

    def quoted(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    return (
        f"Register-ScheduledTask -TaskName {quoted(name)} "
        f"-Xml (Get-Content -Raw -LiteralPath {quoted(str(path))}) -Force | Out-Null"
    )
