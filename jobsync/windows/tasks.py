"""The scheduled tasks: the fallback push, and ``jobsync check`` as the service's account.

``schtasks.exe`` registers a task from its XML (written UTF-16, as Task Scheduler reads it). The
principal decides how: SYSTEM needs nothing more; an account with a password is named with
``/RU`` and ``/RP *``, so schtasks asks for the password on the console and Task Scheduler keeps
it; a gMSA has no password to give, which schtasks cannot express, so PowerShell's
``Register-ScheduledTask`` registers it (the way Microsoft documents for gMSA tasks).

The Task Scheduler definition of the fallback push (``jobsync schedule xml``).
Every ``interval_minutes`` and shortly after boot, ``jobsync push`` runs; a run still going when
the next is due makes the new one wait out (IgnoreNew), and a run is stopped after
``time_limit_minutes``. The principal can reach the network: a gMSA or a stored-password account
(logon type Password), or SYSTEM acting as the computer account. Never S4U ("do not store
password"), whose logons have no network access and so could not reach a single peer.

Whether a config is ready to be installed as a service or a task: ``jobsync check`` passes.
``install.ps1`` writes the example config on a node's first run, and an administrator who goes
straight on to ``-Service -Task`` would install a service for the example's peers, its gMSA and
``integrify-services.example.com``: a service that fails at every pass, as an account that
does not exist. So installing the service or the task first refuses the example as shipped,
then runs the check (the role's mode, every peer's create-read-rename, the fleet) and refuses
unless it passes.

``python -m jobsync.windows.tasks --config FILE --result FILE``: check, and say how it went.
The task ``jobsync service check`` registers runs this as the service's account, where nobody
sees a console: it runs ``jobsync check`` in this process, and writes its exit code, what it
printed (secrets hidden, as always) and the account it ran as to the result file, in one step.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path, PurePath

from jobsync.__main__ import main as jobsync_main
from jobsync.config.model import Config
from jobsync.errors import ConfigError, ExitCode, SafetyRefusalError
from jobsync.integrify_files import TASK_NAMESPACE, task_definition
from jobsync.logs import secrets_hidden
from jobsync.node import account_name
from jobsync.windows import (
    LOCAL_SYSTEM,
    Tools,
    WindowsToolError,
    builtin_sid,
    config_argument,
    config_home,
    interpreter_folder,
    is_gmsa,
    module_command,
    needs_password,
    python_executable,
    write_atomically,
)
from jobsync.windows.install import grant_folders, secure_home

FIRST_RUN = "2000-01-01T00:00:00"  # a start boundary in the past: the repetition runs from now
PROBE_TIME_LIMIT_MINUTES = 10


def task_xml(config: Config) -> str:
    """Render the Task Scheduler XML of the fallback push for this config."""
    schedule = config.schedule
    return _render(
        config,
        name=schedule.task_name,
        description="jobsync fallback push: copies changed Integrify jobs to the peers.",
        account=schedule.account,
        arguments=module_command("jobsync", "push", config_argument(config)),
        time_limit_minutes=schedule.time_limit_minutes,
        repeat=True,
    )


def probe_task_xml(config: Config, *, name: str, result: PurePath) -> str:
    """Render a task without triggers that runs ``jobsync check`` as the service's account.

    ``jobsync service check`` registers it, runs it once and reads what it wrote to ``result``.
    """
    return _render(
        config,
        name=name,
        description="jobsync check as the service's account (removed after one run).",
        account=config.service.account,
        arguments=module_command(
            "jobsync.windows.tasks", config_argument(config), f'--result "{result}"'
        ),
        time_limit_minutes=PROBE_TIME_LIMIT_MINUTES,
        repeat=False,
    )


def _render(
    config: Config,
    *,
    name: str,
    description: str,
    account: str | None,
    arguments: str,
    time_limit_minutes: int,
    repeat: bool,
) -> str:
    ET.register_namespace("", TASK_NAMESPACE)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{TASK_NAMESPACE}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    task = ET.Element(f"{{{TASK_NAMESPACE}}}Task", version="1.2")
    info = sub(task, "RegistrationInfo")
    sub(info, "Description", description)
    sub(info, "URI", "\\" + name)

    triggers = sub(task, "Triggers")
    if repeat:
        schedule = config.schedule
        # A trigger's children are a sequence in the schema (triggerBaseType): Enabled,
        # StartBoundary, EndBoundary, Repetition, ExecutionTimeLimit, then the trigger's own.
        timed = sub(triggers, "TimeTrigger")
        sub(timed, "Enabled", "true")
        sub(timed, "StartBoundary", FIRST_RUN)
        repetition = sub(timed, "Repetition")
        sub(repetition, "Interval", f"PT{schedule.interval_minutes}M")
        sub(repetition, "StopAtDurationEnd", "false")
        boot = sub(triggers, "BootTrigger")
        sub(boot, "Enabled", "true")
        sub(boot, "Delay", f"PT{schedule.boot_delay_minutes}M")

    principal = sub(sub(task, "Principals"), "Principal", id="jobsync")
    builtin = builtin_sid(account)
    if builtin is None:
        sub(principal, "UserId", str(account))
        sub(principal, "LogonType", "Password")
    else:
        sub(principal, "UserId", builtin)  # SYSTEM or NetworkService: the computer's identity
        sub(principal, "LogonType", "ServiceAccount")
    sub(principal, "RunLevel", "LeastPrivilege")

    settings = sub(task, "Settings")
    for tag, text in (
        ("MultipleInstancesPolicy", "IgnoreNew"),
        ("DisallowStartIfOnBatteries", "false"),
        ("StopIfGoingOnBatteries", "false"),
        ("StartWhenAvailable", "true"),
        ("RunOnlyIfNetworkAvailable", "false"),
        ("ExecutionTimeLimit", f"PT{time_limit_minutes}M"),
        ("Enabled", "true"),
    ):
        sub(settings, tag, text)

    actions = sub(task, "Actions", Context="jobsync")
    command = sub(actions, "Exec")
    sub(command, "Command", python_executable(config))
    sub(command, "Arguments", arguments)
    sub(command, "WorkingDirectory", interpreter_folder(config))
    ET.indent(task)
    return (
        '<?xml version="1.0" encoding="UTF-16"?>\n' + ET.tostring(task, encoding="unicode") + "\n"
    )


# SHA-256 of docs/jobsync.example.toml with "\n" line ends (tests/unit/test_windows_ops.py keeps it
# in step with the file).
EXAMPLE_SHA256 = "edb8a8cf9a761705ae19b928f311e00b8ac0ef10f8a307cf4c92d6fa7895e147"


def example_digest(text: bytes) -> str:
    """The digest compared with :data:`EXAMPLE_SHA256`, whatever the line ends."""
    return hashlib.sha256(text.replace(b"\r\n", b"\n")).hexdigest()


def require_ready(config: Config, *, what: str) -> None:
    """Refuse (exit 2 or 4, nothing installed) unless ``jobsync check`` passes with ``config``."""
    from jobsync.node import local_identity, published_addresses
    from jobsync.node_setup import check, fleet_problems
    from jobsync.role import decide

    if example_digest(config.path.read_bytes()) == EXAMPLE_SHA256:
        raise ConfigError(
            f"{config.path} is the example as shipped: set source, the [[peers]], [active] and "
            f"[service] account for this site (docs\\windows.md, step 2), run jobsync check, "
            f"then install the {what} again"
        )
    decide(config)  # a role mode that cannot work here is a ConfigError
    results = check(config, peers=config.target_peers)
    me = local_identity(config, addresses=published_addresses(config))
    problems = [f"{r.peer}: {r.detail}" for r in results if not r.ok]
    problems += fleet_problems(config, me, results)
    if problems:
        raise SafetyRefusalError(
            f"the {what} was not installed: jobsync check fails ({'; '.join(problems)}); fix "
            "that, run jobsync check until it passes, then install again"
        )


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
        return task_definition(answer.output.strip()).enabled
    except ValueError as exc:
        raise WindowsToolError(f"schtasks.exe /Query /TN {name} /XML: unreadable ({exc})") from None


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
    ``python -m jobsync.windows.tasks``, which writes what the check printed to the state
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


def run_check(config: str) -> tuple[int, str]:
    """Run ``jobsync check --config CONFIG``; its exit code and everything it printed."""
    printed = io.StringIO()
    code: int | str | None = 0
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        try:
            jobsync_main(["check", "--config", config])
        except SystemExit as exit_:
            code = exit_.code
    return (code if isinstance(code, int) else 1), printed.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Write the check's outcome to ``--result``; the exit code is the check's."""
    parser = argparse.ArgumentParser(prog="python -m jobsync.windows.tasks")
    parser.add_argument("--config", required=True)
    parser.add_argument("--result", required=True, type=Path)
    args = parser.parse_args(argv)
    code, output = run_check(args.config)
    answer = {"exit_code": code, "output": secrets_hidden(output), "user": account_name()}
    write_atomically(args.result, json.dumps(answer, ensure_ascii=False) + "\n")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
