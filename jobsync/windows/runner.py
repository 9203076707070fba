"""The one door to Windows' own tools: WinSW, ``sc.exe``, ``schtasks.exe``, ``icacls.exe``.

Every install, removal and upgrade step calls a :class:`Runner` with the command line it wants
run. :func:`run_command` runs it for real; tests pass a runner that records the commands and
answers as Windows would, so every decision is tested on any system. No command line ever
carries a password: where one is needed, the tool asks for it on the console itself.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from jobsync.errors import ExitCode, JobsyncError


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
        raise WindowsToolError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
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
