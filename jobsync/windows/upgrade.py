"""Holding jobsync still while it is upgraded: ``jobsync deploy stop`` and ``deploy start``.

``stop`` stops the agent's service and disables the fallback task (ending a push under way:
a killed push leaves only complete files), so no jobsync process holds the files pip replaces.
It records what it stopped in ``stopped-for-upgrade.json`` beside the config, adding to a record
an earlier, unfinished upgrade left, so running it twice never forgets anything. ``start``,
run by the new version, rewrites the service's and the task's definitions for its own
interpreter, starts again exactly what was stopped, and removes the record.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from jobsync.config.model import Config
from jobsync.windows import Tools, WindowsToolError, config_home, write_atomically
from jobsync.windows.install import install_service, service_state, stop_service
from jobsync.windows.tasks import install_task, task_enabled

RECORD = "stopped-for-upgrade.json"


def record_path(config: Config) -> Path:
    """Where ``deploy stop`` notes what it stopped."""
    return Path(config_home(config)) / RECORD


def stop_for_upgrade(config: Config, tools: Tools) -> dict[str, bool]:
    """Stop the service and disable the task, as far as they run; what is now stopped."""
    path = record_path(config)
    stopped = _read(path)

    def note(what: str) -> None:
        # Noted before it is stopped: a run that fails halfway still starts it again later.
        stopped[what] = True
        _save(path, stopped)

    if service_state(config, tools) not in (None, "STOPPED"):
        note("service")
        stop_service(config, tools)
    name = config.schedule.task_name
    if task_enabled(name, tools):
        note("task")
        tools.check(["schtasks.exe", "/Change", "/TN", name, "/DISABLE"])
        tools.run(["schtasks.exe", "/End", "/TN", name])  # fails when no push runs: fine
        tools.say(f"task {name!r} disabled")
    if not path.exists():
        _save(path, stopped)  # nothing was running: the note says so
    if not any(stopped.values()):
        tools.say("neither the service nor the task was running")
    return stopped


def start_after_upgrade(config: Config, tools: Tools) -> dict[str, bool]:
    """Start again what :func:`stop_for_upgrade` stopped; what was started.

    The service's and the task's definitions are rewritten whether they ran or not: they name
    the python.exe of the new version's virtual environment (the previous one is kept for a
    rollback, and removed by a later upgrade). What was not running stays so.
    """
    path = record_path(config)
    stopped = _read(path)
    name = config.schedule.task_name
    service = service_state(config, tools)
    enabled = task_enabled(name, tools)
    for what, missing in (("service", service is None), ("task", enabled is None)):
        if stopped[what] and missing:
            # The note says it was there when stopped: an answer that says otherwise is not
            # believed, and the note is kept for the next run.
            raise WindowsToolError(
                f"the {what} stopped for the upgrade cannot be found now; nothing was started: "
                "run jobsync deploy start again"
            )
    if service is not None:
        install_service(config, tools, start=stopped["service"])
    if enabled is not None:
        install_task(config, tools)  # registered enabled, with the new command line
        if not stopped["task"] and not enabled:
            tools.check(["schtasks.exe", "/Change", "/TN", name, "/DISABLE"])
        else:
            tools.say(f"task {name!r} enabled")
    path.unlink(missing_ok=True)
    if not any(stopped.values()):
        tools.say("nothing was stopped for the upgrade: nothing to start")
    return stopped


def _save(path: Path, stopped: dict[str, bool]) -> None:
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_atomically(path, json.dumps({**stopped, "since": stamp}) + "\n")


def _read(path: Path) -> dict[str, bool]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"service": False, "task": False}
    except (OSError, ValueError):
        raw = None
    if not isinstance(raw, dict):
        # Unreadable: start whatever exists; starting too much beats leaving a node unsynced.
        return {"service": True, "task": True}
    return {key: bool(raw.get(key)) for key in ("service", "task")}
