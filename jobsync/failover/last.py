"""The last failover run on this node, kept in ``state_dir`` for the agent's page and metrics.

The command writes it when it ends (a dry run writes nothing); the agent reads it when the page
or the metrics are asked for, so it shows what happened even if the agent was stopped for the
move. A file that is missing or unreadable is simply no failover.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from jobsync.files import replace_atomically
from jobsync.result.failover import FailoverResult

LAST_FAILOVER = "last-failover.json"


@dataclass(frozen=True)
class LastStep:
    """One step as it ended."""

    step: str
    status: str
    summary: str
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether it held."""
        return self.status not in ("failed", "outranked")


@dataclass(frozen=True)
class LastFailover:
    """When it finished, its exit code, and its steps."""

    finished: float
    exit_code: int
    steps: tuple[LastStep, ...]


def record(state_dir: Path, result: FailoverResult) -> None:
    """Keep ``result`` as the last failover."""
    document = {
        "node": result.node,
        "finished": time.time(),
        "exit_code": int(result.exit_code),
        "steps": [asdict(s) for s in result.steps],
    }
    state_dir.mkdir(parents=True, exist_ok=True)
    replace_atomically(state_dir / LAST_FAILOVER, json.dumps(document).encode("utf-8"))


def read_last(state_dir: Path) -> LastFailover | None:
    """The last failover here, or ``None``."""
    try:
        doc = json.loads((state_dir / LAST_FAILOVER).read_text(encoding="utf-8"))
        steps = tuple(
            LastStep(str(s["step"]), str(s["status"]), str(s["summary"]), float(s["seconds"]))
            for s in doc["steps"]
        )
        return LastFailover(float(doc["finished"]), int(doc["exit_code"]), steps)
    except (OSError, ValueError, KeyError, TypeError):
        return None
