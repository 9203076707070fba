"""``jobsync check``: proves this node can work with each peer.

For each peer: log on, open the jobs folder, then create a temp file where a push would (in
``.jobsync/tmp`` when a file created there gets the jobs folder's permissions, else beside the
jobs), read it back, rename it into the jobs folder and remove it: the exact operations a push
needs, under names the pattern never matches.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence

from jobsync.config import Config, PeerConfig
from jobsync.errors import PeerError
from jobsync.fanout import each_peer
from jobsync.names import TMP_DIR, job_temp_name
from jobsync.result import CheckResult
from jobsync.sync.steps import temps_alike
from jobsync.transport import FileWrite, Opener, Peer, default_opener


def check(
    config: Config, *, peers: Sequence[PeerConfig], opener: Opener = default_opener
) -> list[CheckResult]:
    """Probe every peer concurrently."""
    return each_peer(peers, lambda p: check_peer(p, config=config, opener=opener), name="check")


def check_peer(peer: PeerConfig, *, config: Config, opener: Opener = default_opener) -> CheckResult:
    """Probe one peer; never raises for a peer problem."""
    started = time.monotonic()
    handle: Peer | None = None
    try:
        handle = opener(peer, config.timeout_seconds)
        detail = _probe(handle)
        ok = True
    except PeerError as exc:
        detail, ok = str(exc), False
    finally:
        if handle is not None:
            handle.close()
    return CheckResult(
        peer=peer.name,
        location=peer.location,
        ok=ok,
        detail=detail,
        seconds=time.monotonic() - started,
    )


def _probe(peer: Peer) -> str:
    token = secrets.token_hex(4)
    peer.make_dirs(TMP_DIR)
    jobs = len(peer.list_files())
    alike = temps_alike(peer, token)
    # Both names are never a job, and the next full pass removes them if left over.
    temp = f"{TMP_DIR}/{token}-1.tmp" if alike else job_temp_name(token, 1)
    renamed = job_temp_name(token, 2)
    (outcome,) = peer.write_files(
        [FileWrite(path=renamed, temp=temp, data=b"jobsync check\n", mtime_ns=time.time_ns())]
    )
    if outcome.error is not None:
        raise outcome.error
    removed = peer.remove_files([renamed])[renamed]
    if removed is not None:
        raise removed
    written = (
        "in .jobsync/tmp, whose new files get the jobs folder's permissions"
        if alike
        else "beside the jobs, to get the jobs folder's permissions"
    )
    return (
        f"can log on, list ({jobs} files), create, read back, rename and remove "
        f"({peer.protection}); jobs are written {written}"
    )
