r"""Who may write jobsync's own folder on a Windows node (``%ProgramData%\jobsync``).

Folders under ``%ProgramData%`` inherit ``BUILTIN\Users:(CI)(WD,AD,WEA,WA)``: any local user may
create files there. The config, WinSW and its definition, the state and the logs live in
jobsync's folder, and the service runs as LocalSystem or a service account, so the folder is
made the administrators' alone before anything is written to it: its owner must be the
Administrators group or SYSTEM (an owner may always rewrite the access list, so a folder a user
created beforehand is refused, never adopted), inheritance is removed, and only SYSTEM and
Administrators keep full control; the service's account may read it, and write its state and
logs (:func:`jobsync.windows.install.grant_folders`).
"""

from __future__ import annotations

from pathlib import Path

from jobsync.config import Config
from jobsync.errors import SafetyRefusalError
from jobsync.names import name_key
from jobsync.windows import LOCAL_SYSTEM, acl_name, config_home
from jobsync.windows.runner import Tools, WindowsToolError

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
