r"""Installing the agent's Windows service, securing its folder, sealing peers' passwords.

Installing and removing the agent's Windows service (``jobsync service install|uninstall``).
The service is WinSW (``jobsync-service.exe``, checked against the SHA-256 its release page
gives) beside its definition (``jobsync-service.xml``), both in the config's folder. The account
goes to the service manager, never into a file: ``sc.exe config`` for a gMSA (it has no
password), WinSW's own console prompt for an account with a password, nothing for LocalSystem.
Installing again rewrites the definition and keeps the service, so an upgrade or a changed
``[service]`` section needs no removal.

The WinSW definition of the agent's Windows service (``jobsync service xml``).
WinSW runs ``python -I -m jobsync watch`` as a service, in the interpreter's own folder (see
:data:`jobsync.windows.ISOLATED`), sends Ctrl+C on stop and kills after ``stoptimeout``,
restarts it on failure (10 s, 60 s, 5 min) and rolls its logs. The account is
not in the file: ``jobsync service install`` gives it to the service manager (with ``sc.exe`` for
a gMSA, through WinSW's own prompt for an account with a password), so no password is ever
written anywhere, and the file is the same whichever WinSW release reads it.

Who may write jobsync's own folder on a Windows node (``%ProgramData%\jobsync``).
Folders under ``%ProgramData%`` inherit ``BUILTIN\Users:(CI)(WD,AD,WEA,WA)``: any local user may
create files there. The config, WinSW and its definition, the state and the logs live in
jobsync's folder, and the service runs as LocalSystem or a service account, so the folder is
made the administrators' alone before anything is written to it: its owner must be the
Administrators group or SYSTEM (an owner may always rewrite the access list, so a folder a user
created beforehand is refused, never adopted), inheritance is removed, and only SYSTEM and
Administrators keep full control; the service's account may read it, and write its state and
logs (:func:`jobsync.windows.install.grant_folders`).

``jobsync secret set PEER``: a peer's password, sealed for this machine, readable by few.
For a peer outside the domain (a DR share, a workgroup server) the service needs a user name
and a password. An environment variable would put it in the service's definition, and a gMSA,
NetworkService or LocalSystem cannot have a Credential Manager entry an administrator could
fill. So the administrator types it once; it is sealed with DPAPI for this machine
(:mod:`jobsync.credentials`) and written to the peer's ``password_file``, whose access list
then holds SYSTEM and Administrators (full control) and the service's and the task's accounts
(read) alone.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from jobsync.config.model import Config, PeerConfig
from jobsync.credentials import Seal, entropy
from jobsync.errors import ConfigError, SafetyRefusalError
from jobsync.jobs_folder import name_key
from jobsync.logs import register_commands, unregister_commands
from jobsync.node import replace_atomically
from jobsync.windows import (
    LOCAL_SYSTEM,
    Tools,
    WindowsToolError,
    acl_name,
    config_argument,
    config_home,
    interpreter_folder,
    module_command,
    needs_password,
    python_executable,
    write_atomically,
)

SYSTEM = "*S-1-5-18"  # NT AUTHORITY\SYSTEM, by SID: the same in every language of Windows
ADMINISTRATORS = "*S-1-5-32-544"  # BUILTIN\Administrators
TRUSTED_OWNERS = ("BUILTIN\\Administrators", "NT AUTHORITY\\SYSTEM")


def folder_owner(folder: Path, tools: Tools) -> str:
    """The owner of ``folder``, as Windows names it (the Administrators group: see below)."""
    quoted = str(folder).replace("'", "''")
    command = f"(Get-Acl -LiteralPath '{quoted}').Owner"
    answer = tools.check(["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", command])
    owner = answer.output.strip()
    if not owner:
        raise WindowsToolError(f"Get-Acl {folder}: no owner in its answer")
    return owner


def secure_home(config: Config, tools: Tools) -> None:
    """Make jobsync's folder the administrators' alone; refuse one another user owns."""
    home = Path(config_home(config))
    home.mkdir(parents=True, exist_ok=True)
    owner = folder_owner(home, tools)
    if name_key(owner) not in {name_key(o) for o in TRUSTED_OWNERS}:
        raise SafetyRefusalError(
            f"{home} is owned by {owner}, not by Administrators or SYSTEM: whoever created it "
            "may have left files there that would run as the service's account; look at what "
            f'it holds, then remove it (or give it to Administrators: icacls "{home}" '
            "/setowner *S-1-5-32-544 /T) and install again"
        )
    # Inherited entries only (files inside too), then none but these two.
    tools.check(["icacls.exe", str(home), "/reset", "/T", "/C", "/Q"])
    tools.check(
        [
            "icacls.exe",
            str(home),
            "/inheritance:r",
            "/grant:r",
            f"{SYSTEM}:(OI)(CI)F",
            f"{ADMINISTRATORS}:(OI)(CI)F",
        ]
    )
    for account in dict.fromkeys((config.service.account, config.schedule.account)):
        if account and account != LOCAL_SYSTEM:  # reads the config; SYSTEM already may
            tools.check(["icacls.exe", str(home), "/grant", f"{acl_name(account)}:(OI)(CI)RX"])
    tools.say(f"{home}: only SYSTEM and Administrators may change it")


RESTART_DELAYS = ("10 sec", "60 sec", "5 min")
LOG_SIZE_KB = 10_240
LOG_FILES_KEPT = 8


def service_xml(config: Config) -> str:
    """Render the WinSW XML for this config."""
    service = config.service
    home = config_home(config)
    root = ET.Element("service")
    for tag, text in (
        ("id", service.id),
        ("name", service.name),
        ("description", service.description),
        ("executable", python_executable(config)),
        ("arguments", module_command("jobsync", "watch", config_argument(config))),
        ("workingdirectory", interpreter_folder(config)),
        ("stoptimeout", f"{service.stop_timeout_seconds:g} sec"),
        ("startmode", "Automatic"),
    ):
        ET.SubElement(root, tag).text = text
    for delay in RESTART_DELAYS:
        ET.SubElement(root, "onfailure", action="restart", delay=delay)
    ET.SubElement(root, "resetfailure").text = "1 day"
    ET.SubElement(root, "logpath").text = str(service.log_dir or home / "logs")
    log = ET.SubElement(root, "log", mode="roll-by-size")
    ET.SubElement(log, "sizeThreshold").text = str(LOG_SIZE_KB)
    ET.SubElement(log, "keepFiles").text = str(LOG_FILES_KEPT)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


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


def secret_peer(config: Config, name: str) -> PeerConfig:
    """The peer whose password is to be stored: it must name a user and a password_file."""
    peer = next((p for p in config.peers if name_key(p.name) == name_key(name)), None)
    if peer is None:
        known = ", ".join(p.name for p in config.peers)
        raise ConfigError(f"{config.path}: no peer {name} (peers: {known})")
    if peer.username is None or peer.password_file is None:
        raise ConfigError(
            f"{config.path}: peer {peer.name} needs username and password_file (where the "
            "sealed password goes, e.g. password_file = 'secrets\\\\node3.dpapi') first"
        )
    return peer


def store_secret(
    config: Config, peer: PeerConfig, password: str, tools: Tools, *, seal: Seal
) -> Path:
    """Seal ``password`` for ``peer``'s user into its password_file; only a few may read it."""
    if not password:
        raise ConfigError("an empty password was typed: nothing was stored")
    if peer.username is None or peer.password_file is None:
        raise ConfigError(f"peer {peer.name} needs username and password_file")
    path = peer.password_file
    replace_atomically(path, seal(password.encode("utf-8"), entropy(peer.username)), mode=0o600)
    accounts = dict.fromkeys((config.service.account, config.schedule.account))
    grants = [f"{SYSTEM}:F", f"{ADMINISTRATORS}:F"]
    grants += [f"{acl_name(a)}:R" for a in accounts if a and a != LOCAL_SYSTEM]  # (is SYSTEM)
    tools.check(["icacls.exe", str(path), "/inheritance:r", "/grant:r", *grants])
    readers = ", ".join(a for a in (config.service.account, config.schedule.account) if a)
    tools.say(
        f"the password of {peer.username} for {peer.name} is sealed in {path}; SYSTEM, "
        f"Administrators{' and ' + readers if readers else ''} may read it"
    )
    return path
