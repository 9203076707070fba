"""The state the agent leaves for ``jobsync status``: one JSON file, replaced atomically."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

STATE_FILE = "agent.json"


def state_path(state_dir: Path) -> Path:
    """Where the agent's state lives."""
    return state_dir / STATE_FILE


def write_state(path: Path, document: dict[str, Any]) -> None:
    """Replace the state file in one step: a reader sees the old state or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".agent-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temp).chmod(0o644)  # readable by monitoring, writable by the agent only
        Path(temp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(temp).unlink()
        raise


def read_state(path: Path) -> dict[str, Any] | None:
    """The last state an agent wrote, or ``None`` when none has run (or it is unreadable)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None
