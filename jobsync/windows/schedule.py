"""The Task Scheduler definition of the fallback push (``jobsync schedule xml``).

Every ``interval_minutes`` and shortly after boot, ``jobsync push`` runs; a run still going when
the next is due makes the new one wait out (IgnoreNew), and a run is stopped after
``time_limit_minutes``. The principal can reach the network: a gMSA or a stored-password account
(logon type Password), or SYSTEM acting as the computer account. Never S4U ("do not store
password"), whose logons have no network access and so could not reach a single peer.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import PurePath

from jobsync.config import Config
from jobsync.windows import (
    builtin_sid,
    config_argument,
    interpreter_folder,
    module_command,
    python_executable,
)

NAMESPACE = "http://schemas.microsoft.com/windows/2004/02/mit/task"
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
            "jobsync.windows.probe", config_argument(config), f'--result "{result}"'
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
    ET.register_namespace("", NAMESPACE)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{NAMESPACE}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    task = ET.Element(f"{{{NAMESPACE}}}Task", version="1.2")
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
