"""The state the agent leaves for ``jobsync status``: one JSON file, replaced atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jobsync.files import replace_atomically

STATE_FILE = "agent.json"


def state_path(state_dir: Path) -> Path:
    """Where the agent's state lives."""
    return state_dir / STATE_FILE


def write_state(path: Path, document: dict[str, Any]) -> None:
    """Replace the state file in one step: a reader sees the old state or the new, never half.

    Readable by monitoring, writable by the agent only.
    """
    replace_atomically(path, json.dumps(document, indent=1).encode("utf-8"), mode=0o644)


def read_state(path: Path) -> dict[str, Any] | None:
    """The last state an agent wrote, or ``None`` when none has run (or it is unreadable)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None
