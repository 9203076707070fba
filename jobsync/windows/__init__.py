"""Windows operations decided in Python, and the one door to Windows' own tools.

Windows operations that can be decided in Python: definitions, installs, upgrades.
The service and scheduled-task definitions are rendered here (``service.py``, ``schedule.py``);
installing, removing and pausing them for an upgrade (``install.py``, ``tasks.py``,
``upgrade.py``) goes through one runner (``runner.py``), so that everything but the Windows tools
themselves is tested on any system. ``install.ps1`` in the Windows bundle only creates the
virtual environment and calls these commands.

The one door to Windows' own tools: WinSW, ``sc.exe``, ``schtasks.exe``, ``icacls.exe``.
Every install, removal and upgrade step calls a :class:`Runner` with the command line it wants
run. :func:`run_command` runs it for real; tests pass a runner that records the commands and
answers as Windows would, so every decision is tested on any system. No command line ever
carries a password: where one is needed, the tool asks for it on the console itself.
"""

from __future__ import annotations

import ntpath
import posixpath
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Protocol

from jobsync.errors import ExitCode, JobsyncError

if TYPE_CHECKING:
    from jobsync.config.model import Config


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
    # Loaded here: node.py brings the work lock and the identity, which the command line's
    # --help (which imports this package) never needs.
    from jobsync.node import replace_atomically

    replace_atomically(path, text.encode(encoding))


class WindowsToolError(JobsyncError):
    """A Windows tool could not be run or refused a step (the message names both)."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class Completed:
    """What a command answered: its exit code and, unless interactive, its output."""

    code: int
    output: str = ""


class Runner(Protocol):
    """Runs one command line; ``interactive`` lets the tool talk to the console (prompts)."""

    def __call__(self, argv: Sequence[str], *, interactive: bool = False) -> Completed:
        """Run ``argv`` and return its exit code and output."""
        ...


def run_command(argv: Sequence[str], *, interactive: bool = False) -> Completed:
    """Run a Windows tool for real (the runner of the CLI)."""
    # The console tools write in the OEM code page; "oem" exists only on Windows.
    encoding = "oem" if sys.platform == "win32" else None
    try:
        if interactive:
            return Completed(subprocess.run(argv, check=False).returncode)  # noqa: S603
        done = subprocess.run(  # noqa: S603 - fixed tools, arguments from the config
            argv,
            capture_output=True,
            text=True,
            encoding=encoding,
            errors="replace",
            check=False,
        )
    except OSError as exc:
        raise WindowsToolError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
    return Completed(done.returncode, (done.stdout or "") + (done.stderr or ""))


@dataclass
class Tools:
    """What the Windows steps need from the outside world, replaceable in tests."""

    run: Runner = run_command
    say: Callable[[str], None] = print
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def check(
        self, argv: Sequence[str], *, interactive: bool = False, fine: tuple[int, ...] = (0,)
    ) -> Completed:
        """Run ``argv``; an exit code not in ``fine`` is a :class:`WindowsToolError`."""
        answer = self.run(argv, interactive=interactive)
        if answer.code not in fine:
            said = " ".join(answer.output.split())
            raise WindowsToolError(
                f"{' '.join(argv)} failed (exit {answer.code})" + (f": {said}" if said else "")
            )
        return answer

    def wait_for(self, condition: Callable[[], bool], *, seconds: float, what: str) -> None:
        """Poll ``condition`` every half second until it holds; fail after ``seconds``."""
        deadline = self.clock() + seconds
        while not condition():
            if self.clock() > deadline:
                raise WindowsToolError(f"gave up after {seconds:g} s waiting for {what}")
            self.sleep(0.5)
