"""Windows operations that can be decided in Python: the service and scheduled-task definitions.

The PowerShell scripts in ``scripts/`` stay thin: they render these with ``jobsync service xml``
and ``jobsync schedule xml`` and hand them to WinSW and Task Scheduler.
"""

from __future__ import annotations

import sys
from pathlib import Path

from jobsync.config import Config


def python_executable(config: Config) -> str:
    """The python.exe the service and the task run: configured, else the one running now."""
    return config.service.python or sys.executable


def config_argument(config: Config) -> str:
    """The absolute config path as one quoted command-line argument."""
    return f'--config "{Path(config.path).resolve()}"'


def is_gmsa(account: str | None) -> bool:
    """A group managed service account: no password anywhere, Windows rotates it."""
    return bool(account) and account.endswith("$")  # type: ignore[union-attr]
