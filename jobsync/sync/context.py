"""What every step of one pass over one peer shares: the peer, who pushes, names and clocks."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from jobsync.epoch import LocalFence
from jobsync.names import TMP_DIR, job_temp_name
from jobsync.transport import Peer

Progress = Callable[[str, int, int], None]


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(timezone.utc)


def fresh_temp() -> str:
    """A temp name under ``.jobsync`` for a write outside any pass (a deferred manifest)."""
    return f"{TMP_DIR}/{secrets.token_hex(4)}-1.tmp"


@dataclass(frozen=True, kw_only=True)
class PushOptions:
    """How a push behaves."""

    dry_run: bool = False
    allow_mass_delete: bool = False
    hold: frozenset[str] = frozenset()  # name keys to leave alone (a peer holds a newer version)
    distrust: frozenset[str] = frozenset()  # name keys whose manifest record is ignored: the
    # peer file is read, and kept in backup before it is replaced


@dataclass(kw_only=True)
class PassContext:
    """One pass over one open peer; temp names are unique to the pass (its run id)."""

    peer: Peer
    node: str
    epoch: int
    fence: LocalFence
    now: Callable[[], datetime]
    log: Any  # structlog's bound logger, bound to the peer
    progress: Progress | None = None
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    # Whether a file created in .jobsync/tmp gets the permissions of one created in the jobs
    # folder, so jobs may be written there (None: not probed yet; the first copy does). Beside
    # the jobs costs a Samba server twice the look-ups per new job in a large folder.
    temps_alike: bool | None = None
    _temps: int = 0

    @property
    def name(self) -> str:
        """The peer's name."""
        return self.peer.name

    def temp(self) -> str:
        """A temp name for a file jobsync keeps under ``.jobsync`` (a backup, the manifest)."""
        self._temps += 1
        return f"{TMP_DIR}/{self.run_id}-{self._temps}.tmp"

    def job_temp(self) -> str:
        """A temp name for a job, which must land with the jobs folder's permissions.

        A renamed file keeps the permissions it was created with: it is written in
        ``.jobsync/tmp`` only when a file created there is known to get the same ones.
        """
        if self.temps_alike is True:
            return self.temp()
        self._temps += 1
        return job_temp_name(self.run_id, self._temps)

    def stamp(self) -> str:
        """The time a trashed or backed-up file is named with."""
        return self.now().strftime("%Y%m%dT%H%M%S.%fZ")

    def written(self) -> str:
        """The time a manifest record says its file was written."""
        return self.now().isoformat(timespec="seconds")
