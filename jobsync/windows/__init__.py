"""Windows operations that can be decided in Python: definitions, installs, upgrades.

The service and scheduled-task definitions are rendered here (``service.py``, ``schedule.py``);
installing, removing and pausing them for an upgrade (``install.py``, ``tasks.py``,
``upgrade.py``) goes through one runner (``runner.py``), so that everything but the Windows tools
themselves is tested on any system. ``install.ps1`` in the Windows bundle only creates the
virtual environment and calls these commands.
"""

from __future__ import annotations

import ntpath
import posixpath
import sys
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from jobsync.files import replace_atomically

if TYPE_CHECKING:
    from jobsync.config import Config

LOCAL_SYSTEM = "LocalSystem"
NETWORK_SERVICE = "NT AUTHORITY\\NetworkService"  # the computer's identity on the network
# Built-in accounts Windows logs on without a password, by the SID Task Scheduler names them by.
BUILTIN_SIDS = {"localsystem": "S-1-5-18", "nt authority\\networkservice": "S-1-5-20"}


def python_executable(config: Config) -> str:
    """The python.exe the service and the task run: configured, else the one running now."""
    return config.service.python or sys.executable


# -I: isolated mode. Python otherwise puts the working directory (or the script's folder) first
# on the import path and reads PYTHON* variables, so a file any local user may create there (a
# planted jobsync\__main__.py or structlog.py) would run as the service's account.
ISOLATED = "-I"


def module_command(module: str, *arguments: str) -> str:
    """The arguments of ``python.exe`` that run ``module`` isolated from where it runs."""
    return " ".join([ISOLATED, "-m", module, *arguments])


def interpreter_folder(config: Config) -> str:
    """The folder of the python.exe, the working directory of the service and the tasks.

    Only administrators may write it (the virtual environment under Program Files), so neither
    an import nor a DLL looked up in the working directory can be planted there.
    """
    executable = python_executable(config)
    windows = "\\" in executable or executable[1:2] == ":"
    return ntpath.dirname(executable) if windows else posixpath.dirname(executable)


def config_file(config: Config) -> PurePath:
    """The config's absolute path (taken as given when it already is absolute)."""
    path: PurePath = config.path
    return path if path.is_absolute() else Path(path).resolve()


def config_home(config: Config) -> PurePath:
    """The folder of the config file: the service's files and logs live there."""
    return config_file(config).parent


def config_argument(config: Config) -> str:
    """The absolute config path as one quoted command-line argument."""
    return f'--config "{config_file(config)}"'


def is_gmsa(account: str | None) -> bool:
    """A group managed service account: no password anywhere, Windows rotates it."""
    return account is not None and account.endswith("$")


def builtin_sid(account: str | None) -> str | None:
    """The SID of a built-in account (LocalSystem when none is named), else None."""
    return BUILTIN_SIDS.get((account or LOCAL_SYSTEM).casefold())


def acl_name(account: str) -> str:
    """How icacls is told the account: a built-in one by SID, the same in every language."""
    sid = builtin_sid(account)
    return f"*{sid}" if sid else account


def needs_password(account: str | None) -> bool:
    """An account whose password someone must type: not built in, not a gMSA."""
    return account is not None and builtin_sid(account) is None and not is_gmsa(account)


def write_atomically(path: Path, text: str, *, encoding: str = "utf-8") -> None:
    """Replace ``path`` with ``text`` in one step: a reader sees the old file or the new one."""
    replace_atomically(path, text.encode(encoding))
