"""Installing and removing the agent's Windows service (``jobsync service install|uninstall``).

The service is WinSW (``jobsync-service.exe``, checked against the SHA-256 its release page
gives) beside its definition (``jobsync-service.xml``), both in the config's folder. The account
goes to the service manager, never into a file: ``sc.exe config`` for a gMSA (it has no
password), WinSW's own console prompt for an account with a password, nothing for LocalSystem.
Installing again rewrites the definition and keeps the service, so an upgrade or a changed
``[service]`` section needs no removal.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from jobsync.config import Config
from jobsync.errors import ConfigError, SafetyRefusalError
from jobsync.names import name_key
from jobsync.windows import (
    LOCAL_SYSTEM,
    acl_name,
    config_home,
    needs_password,
    write_atomically,
)
from jobsync.windows.acl import secure_home
from jobsync.windows.eventlog import register_commands, unregister_commands
from jobsync.windows.runner import Tools, WindowsToolError
from jobsync.windows.service import service_xml

SERVICE_EXE = "jobsync-service.exe"  # WinSW finds its XML by its own base name
SERVICE_XML = "jobsync-service.xml"
SERVICE_MISSING = 1060  # ERROR_SERVICE_DOES_NOT_EXIST
NOT_STARTED = 1062  # ERROR_SERVICE_NOT_ACTIVE
ALREADY_RUNNING = 1056  # ERROR_SERVICE_ALREADY_RUNNING
MARKED_FOR_DELETION = 1072  # ERROR_SERVICE_MARKED_FOR_DELETE
RESTART_ACTIONS = "restart/10000/restart/60000/restart/300000"
START_SECONDS = 30.0
_STATE = re.compile(
    r":\s*\d+\s+(STOPPED|START_PENDING|STOP_PENDING|RUNNING|CONTINUE_PENDING|PAUSE_PENDING|PAUSED)\b"
)
_START_NAME = re.compile(r"SERVICE_START_NAME\s*:\s*(\S.*?)\s*$", re.MULTILINE)
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
ACCOUNT_ERRORS = {  # what sc.exe config's errors mean for the account, in words
    1057: " (the account name is invalid or does not exist, or its password is wrong)",
    1332: " (no such account: the name does not map to one in the domain; for a gMSA, is it "
    "installed on this node with Install-ADServiceAccount?)",
}


def service_files(config: Config) -> tuple[Path, Path]:
    """Where WinSW and the service definition live: the config's own folder."""
    home = Path(config_home(config))
    return home / SERVICE_EXE, home / SERVICE_XML


def service_state(config: Config, tools: Tools) -> str | None:
    """The service's state as ``sc.exe`` names it (``RUNNING``, ``STOPPED``, ...), or None."""
    answer = tools.check(["sc.exe", "query", config.service.id], fine=(0, SERVICE_MISSING))
    if answer.code == SERVICE_MISSING:
        return None
    found = _STATE.search(answer.output)
    if found is None:
        raise WindowsToolError(f"sc.exe query {config.service.id}: no state in its answer")
    return found.group(1)


def install_service(
    config: Config,
    tools: Tools,
    *,
    winsw: Path | None = None,
    winsw_sha256: str | None = None,
    start: bool = True,
) -> None:
    """Install the service, or refresh its definition when it exists; then start it."""
    exe, xml = service_files(config)
    service = config.service
    if winsw is not None:
        _verify(winsw, winsw_sha256)
    elif not exe.is_file():
        raise ConfigError(
            f"no WinSW at {exe}: pass --winsw FILE --winsw-sha256 HASH "
            "(the SHA-256 from WinSW's release page)"
        )
    secure_home(config, tools)  # before anything is written there
    state = service_state(config, tools)
    if state not in (None, "STOPPED"):
        stop_service(config, tools)  # its executable cannot be replaced while it runs
    if winsw is not None and (not exe.is_file() or _sha256(exe) != _sha256(winsw)):
        shutil.copyfile(winsw, exe)
        tools.say(f"WinSW copied to {exe}")
    write_atomically(xml, service_xml(config))
    tools.say(f"service definition written to {xml}")
    if state is None:
        _register(config, tools, exe)
    else:
        _converge_account(config, tools, exe)
    _require_account(config, tools)
    tools.check(register_commands())  # the Application log's "jobsync" source
    grant_folders(config, tools)
    tools.check(["sc.exe", "failure", service.id, "reset=", "86400", "actions=", RESTART_ACTIONS])
    tools.check(["sc.exe", "failureflag", service.id, "1"])
    if start or state not in (None, "STOPPED"):
        start_service(config, tools)


def uninstall_service(config: Config, tools: Tools) -> None:
    """Stop and remove the service, WinSW, its Event Log source and its account's grants.

    The config, state and logs stay. A step that fails does not stop the others: each is
    tried, and the failures are reported together at the end (a re-run finishes the job).
    """
    exe, xml = service_files(config)
    service_id = config.service.id
    failures: list[str] = []

    def attempt(step: Callable[[], object]) -> None:
        try:
            step()
        except WindowsToolError as exc:
            failures.append(str(exc) + _in_words(str(exc)))

    state = service_state(config, tools)
    if state is None:
        tools.say(f"no service {service_id}: nothing to remove")
    else:
        stopped = len(failures)
        if state != "STOPPED":
            attempt(lambda: stop_service(config, tools))
        remove = [str(exe), "uninstall"] if exe.is_file() else ["sc.exe", "delete", service_id]
        if len(failures) == stopped:  # never removed while it still runs
            attempt(lambda: tools.check(remove))
    attempt(lambda: tools.check(unregister_commands()))
    attempt(lambda: revoke_folders(config, tools))
    for leftover in (exe, xml):
        leftover.unlink(missing_ok=True)
    if failures:
        raise WindowsToolError("; ".join(failures))
    if state is not None:
        tools.say(f"service {service_id} removed")
    tools.say(f"{exe.parent} keeps the config, the state and the logs")


def _in_words(message: str) -> str:
    if _code(message) == MARKED_FOR_DELETION:
        return (
            " (Windows removes it once nothing holds it open: close services.msc and Event "
            "Viewer, or restart the node, then run jobsync service uninstall again)"
        )
    return ""


def stop_service(config: Config, tools: Tools) -> None:
    """Stop the service and wait until it has (the agent stops within 10 s)."""
    service = config.service
    tools.check(["sc.exe", "stop", service.id], fine=(0, NOT_STARTED))
    tools.wait_for(
        lambda: service_state(config, tools) in (None, "STOPPED"),
        seconds=service.stop_timeout_seconds + 15,
        what=f"service {service.id} to stop",
    )
    tools.say(f"service {service.id} stopped")


def start_service(config: Config, tools: Tools) -> None:
    """Start the service and wait until Windows reports it running."""
    service_id = config.service.id
    tools.check(["sc.exe", "start", service_id], fine=(0, ALREADY_RUNNING))
    tools.wait_for(
        lambda: service_state(config, tools) == "RUNNING",
        seconds=START_SECONDS,
        what=f"service {service_id} to run",
    )
    tools.say(f"service {service_id} running")


def _register(config: Config, tools: Tools, exe: Path) -> None:
    """Register the service with its account, as one step: a failure leaves nothing behind."""
    account = config.service.account
    if needs_password(account):
        _register_with_password(config, tools, exe)
        return
    tools.check([str(exe), "install"])
    if account and account != LOCAL_SYSTEM:  # a gMSA or NetworkService: no password to type
        try:
            _set_account(config, tools)
        except WindowsToolError:
            # Registered but not under its account: removed, so a re-run starts clean.
            tools.run([str(exe), "uninstall"])
            raise
    tools.say(f"service {config.service.id} installed, running as {account or LOCAL_SYSTEM}")


def _register_with_password(config: Config, tools: Tools, exe: Path) -> None:
    account = config.service.account
    tools.say(
        f"WinSW asks for the service's account now: type {account}, its password, then y "
        "(to let it log on as a service). The password goes to Windows, not to a file."
    )
    tools.check([str(exe), "install", "/p"], interactive=True)
    tools.say(f"service {config.service.id} installed")


def _set_account(config: Config, tools: Tools) -> None:
    """Give the service a gMSA or NetworkService (no password to give) or LocalSystem."""
    account = config.service.account or LOCAL_SYSTEM
    password = ["password=", ""] if account != LOCAL_SYSTEM else []
    try:
        tools.check(["sc.exe", "config", config.service.id, "obj=", account, *password])
    except WindowsToolError as exc:
        words = ACCOUNT_ERRORS.get(_code(str(exc)) or 0, "")
        raise WindowsToolError(
            f"service {config.service.id} cannot run as {account}{words}: {exc}"
        ) from exc


def _converge_account(config: Config, tools: Tools, exe: Path) -> None:
    """An installed service gets the config's account, whatever an earlier run left."""
    wanted, actual = config.service.account or LOCAL_SYSTEM, _start_name(config, tools)
    if _same_account(actual, wanted):
        tools.say(f"service {config.service.id} was already installed, running as {actual}")
        return
    tools.say(f"service {config.service.id} runs as {actual}; the config says {wanted}")
    if needs_password(wanted):
        # Only WinSW's prompt gives an account its password and "log on as a service".
        tools.check([str(exe), "uninstall"])
        _register_with_password(config, tools, exe)
    else:
        _set_account(config, tools)


def _require_account(config: Config, tools: Tools) -> None:
    """Refuse to go on (and to start) when the service runs as another account than the config's."""
    service_id, wanted = config.service.id, config.service.account or LOCAL_SYSTEM
    actual = _start_name(config, tools)
    if not _same_account(actual, wanted):
        raise SafetyRefusalError(
            f"service {service_id} runs as {actual}, but the config says {wanted}: it was not "
            "started; run jobsync service install again (it sets the account)"
        )
    if name_key(actual) != name_key(wanted):
        tools.say(f"service {service_id} runs as {actual}, taken for {wanted}")


def _start_name(config: Config, tools: Tools) -> str:
    found = _START_NAME.search(tools.check(["sc.exe", "qc", config.service.id]).output)
    return found.group(1) if found else "an account sc.exe did not name"


def _same_account(actual: str, wanted: str) -> bool:
    """One account, whether written as DOMAIN, backslash, name or as name@domain."""

    def user(name: str) -> str:
        return name_key(name.rsplit("\\", 1)[-1].split("@", 1)[0])

    if name_key(actual) == name_key(wanted):
        return True
    system = name_key(LOCAL_SYSTEM)
    return system not in (name_key(actual), name_key(wanted)) and user(actual) == user(wanted)


def _code(message: str) -> int | None:
    found = re.search(r"FAILED (\d+)", message)
    return int(found.group(1)) if found else None


def revoke_folders(config: Config, tools: Tools) -> None:
    """Take back what :func:`grant_folders` and the install's read grant gave the account."""
    account = config.service.account
    if not account or account == LOCAL_SYSTEM:
        return
    home = Path(config_home(config))
    folders = [home, Path(config.state_dir), Path(config.service.log_dir or home / "logs")]
    for folder in folders:
        if folder.is_dir():
            tools.check(["icacls.exe", str(folder), "/remove:g", acl_name(account)])
    tools.say(f"{account} no longer has grants on {home}")


def grant_folders(config: Config, tools: Tools) -> None:
    """Let the service's account write its state and logs (LocalSystem already may)."""
    account = config.service.account
    folders = [Path(config.state_dir), Path(config.service.log_dir or config_home(config) / "logs")]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        if account and account != LOCAL_SYSTEM:
            tools.check(["icacls.exe", str(folder), "/grant", f"{acl_name(account)}:(OI)(CI)M"])
    if account and account != LOCAL_SYSTEM:
        tools.say(f"{account} may write {' and '.join(str(f) for f in folders)}")


def _verify(winsw: Path, expected: str | None) -> None:
    if expected is None or not _SHA256.fullmatch(expected):
        raise ConfigError("--winsw-sha256 must be the 64 hex digits from WinSW's release page")
    if not winsw.is_file():
        raise ConfigError(f"--winsw {winsw}: no such file")
    actual = _sha256(winsw)
    if actual != expected.lower():
        raise SafetyRefusalError(
            f"{winsw} has SHA-256 {actual}, not {expected.lower()}: refusing to install it"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
