"""Names of job files and of jobsync's own files on a peer.

Names compare as Windows compares them: case-insensitively. Everything jobsync keeps on a peer
lives under ``.jobsync/`` inside the jobs folder, which the (non-recursive) pattern never reaches,
so a backup or a trashed job can never be taken for a job.

The one exception is a job being written where ``.jobsync/tmp`` would not give it the jobs
folder's permissions (on NTFS, and Samba with ``acl_xattr``, a renamed file keeps the
permissions it was created with): it is created in the jobs folder itself, as
``.jobsync-<run>-<n>.tmp``, and renamed over the job once verified. Configuration refuses a
pattern that could match such a name (:func:`pattern_problem`), and every full pass removes the
ones a killed run left.
"""

from __future__ import annotations

import fnmatch
import re
from datetime import datetime, timezone

STATE_DIR = ".jobsync"
TMP_DIR = f"{STATE_DIR}/tmp"  # noqa: S108 - inside the peer's jobs folder, not /tmp
TRASH_DIR = f"{STATE_DIR}/trash"
BACKUP_DIR = f"{STATE_DIR}/backup"
MANIFEST = f"{STATE_DIR}/manifest.json"
STAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"  # when a copy was kept, in UTC: see stamp_name
_STAMPED = re.compile(r".+\.(\d{8}T\d{6}\.\d{6}Z)", re.DOTALL)

_RESERVED_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)
_INVALID_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f]')
_TEMP_NAME = re.compile(r"\.jobsync-[0-9a-z]+-[0-9]+\.tmp", re.IGNORECASE)
_TEMP_SAMPLES = (".jobsync-0a1b2c3d-1.tmp", ".JOBSYNC-0A1B2C3D-12.TMP")


def name_key(name: str) -> str:
    """The key under which a name is compared: Windows names are case-insensitive."""
    return name.casefold()


def job_temp_name(run_id: str, count: int) -> str:
    """The name a job is written under in the jobs folder before it is renamed into place."""
    return f".jobsync-{run_id}-{count}.tmp"


def is_job_temp_name(name: str) -> bool:
    """Whether ``name`` is one of jobsync's temp names in a jobs folder."""
    return _TEMP_NAME.fullmatch(name) is not None


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be the job pattern, or ``None``: it must never match a temp name."""
    matcher = compile_pattern(pattern)
    if any(matcher.fullmatch(sample) for sample in _TEMP_SAMPLES):
        return (
            f"pattern {pattern!r} also matches the names jobs are written under "
            "(.jobsync-*.tmp), so a half-written job could be taken for one"
        )
    return None


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a glob such as ``*.jobs`` into a case-insensitive full-name matcher."""
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE | re.DOTALL)


def windows_name_problem(name: str) -> str | None:  # noqa: PLR0911 - one return per rule
    """Why Windows could not store a file of this name, or ``None`` when it can."""
    # Checked once per job and per manifest entry at every pass: the first problem found is
    # the one reported, and an ordinary name pays for each test once.
    if not name:
        return "empty name"
    if not (name.isascii() or _is_text(name)):
        return "not valid Unicode text (the file system gave bytes that are not UTF-8)"
    if _INVALID_CHARS.search(name):
        return "contains a character Windows does not allow in a file name"
    if name[-1] in (".", " "):
        return "ends with a dot or a space"
    stem = name.split(".", 1)[0].rstrip(" ").upper()
    if stem in _RESERVED_DEVICES:
        return f"{stem} is a reserved device name on Windows"
    if len(name) > 255:  # noqa: PLR2004 - the NTFS limit
        return "longer than 255 characters"
    return None


def _is_text(name: str) -> bool:
    try:
        name.encode("utf-16-le")
    except UnicodeEncodeError:
        return False
    return True


def stamp_name(name: str, stamp: str) -> str:
    """The name a trashed or backed-up file gets: the original name, then when it was kept."""
    return f"{name}.{stamp}"


def kept_at(name: str) -> datetime | None:
    """When a trashed or backed-up copy was kept, from its name; ``None`` if it does not parse."""
    match = _STAMPED.fullmatch(name)
    if match is None:
        return None
    try:
        return datetime.strptime(match[1], STAMP_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:  # digits in the right places, but no such date (month 13)
        return None
