"""Retention: kept copies leave ``trash/`` and ``backup/`` once older than ``[retention]`` says.

A kept copy's age is the UTC time in its name (``<job>.<YYYYmmddTHHMMSS.ffffffZ>``, see
:func:`jobsync.jobs_folder.stamp_name`), never its write time: a backup keeps the write time of the
content it saved, which may be years old. Only files directly in ``.jobsync/trash/`` and
``.jobsync/backup/`` are ever looked at; a name that does not parse, or a time in the future,
is left alone. Deciding what is expired is pure; :func:`prune_kept` carries it out on a peer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from jobsync.config.model import RetentionConfig
from jobsync.errors import PeerError
from jobsync.jobs_folder import BACKUP_DIR, TRASH_DIR, RemoteFile, kept_at
from jobsync.logs import get_logger
from jobsync.transport.base import Peer

log = get_logger(__name__)

DAY_SECONDS = 86_400
KeptKind = Literal["trash", "backup"]
KEPT_FOLDERS: tuple[tuple[KeptKind, str], ...] = (("trash", TRASH_DIR), ("backup", BACKUP_DIR))


@dataclass(frozen=True)
class Expired:
    """A kept copy older than its folder's retention."""

    path: str  # relative to the jobs folder, e.g. ``.jobsync/trash/a.jobs.20240101T...Z``
    kind: KeptKind
    age_days: float


def keep_days(retention: RetentionConfig, kind: KeptKind) -> int:
    """How many days copies of ``kind`` are kept (0: for ever)."""
    return retention.trash_days if kind == "trash" else retention.backup_days


def expired(
    files: Iterable[RemoteFile], *, folder: str, kind: KeptKind, days: int, now: datetime
) -> list[Expired]:
    """The files of one kept-copies folder that are more than ``days`` old at ``now``."""
    if days <= 0:
        return []
    found = []
    for f in files:
        when = kept_at(f.name)
        if when is None:
            continue
        age = (now - when).total_seconds()
        if age > days * DAY_SECONDS:
            found.append(Expired(f"{folder}/{f.name}", kind, round(age / DAY_SECONDS, 1)))
    return sorted(found, key=lambda e: e.path)


def kind_of(path: str) -> str:
    """``trash`` or ``backup``: which kept-copies folder a removed path was in."""
    return "backup" if path.startswith(f"{BACKUP_DIR}/") else "trash"


def prune_kept(
    peer: Peer, retention: RetentionConfig, *, now: datetime, dry_run: bool = False
) -> tuple[str, ...]:
    """Remove the peer's expired kept copies; returns the paths removed (or due, if dry).

    Never raises: a peer that cannot be listed is logged and left for the next time.
    """
    removed: list[str] = []
    for kind, folder in KEPT_FOLDERS:
        days = keep_days(retention, kind)
        if days <= 0:
            continue
        try:
            due = expired(peer.list_files(folder), folder=folder, kind=kind, days=days, now=now)
            outcome = {} if dry_run or not due else peer.remove_files([e.path for e in due])
        except PeerError as exc:
            log.warning("kept_copies_not_pruned", peer=peer.name, folder=folder, error=str(exc))
            continue
        for item in due:
            error = outcome.get(item.path)
            if error is not None:
                log.warning(
                    "kept_copy_not_removed", peer=peer.name, file=item.path, error=str(error)
                )
                continue
            removed.append(item.path)
            if not dry_run:
                log.info(
                    "kept_copy_removed",
                    peer=peer.name,
                    file=item.path,
                    kind=kind,
                    age_days=item.age_days,
                    keep_days=days,
                )
    return tuple(removed)


PRUNE_EVERY_SECONDS = 86_400.0  # kept copies expire by the day: pruning daily is enough
