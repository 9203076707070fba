"""Epochs: which node owns the jobs, and fencing the node that lost the role.

Every ``jobsync takeover`` starts a new epoch, higher than any it can see, and records it in
three places: the node's own claim (``.jobsync/epoch.json`` in its jobs folder, which pushes
never touch), its local manifest, and every reachable peer's manifest. A node pushes in the
epoch of its claim (0 before any takeover). A folder whose manifest names another owner in a
higher epoch refuses that node's writes: the old services node, back after a failover, cannot
overwrite the new one's jobs, whatever its clock says.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from jobsync.manifest import Manifest, ManifestCorruptError, manifest_from_bytes
from jobsync.names import MANIFEST, STATE_DIR, name_key

CLAIM = f"{STATE_DIR}/epoch.json"


@dataclass(frozen=True)
class Claim:
    """A node's record of the epoch it started when it took over."""

    node: str
    epoch: int
    since: str


def read_claim(folder: Path) -> Claim | None:
    """The claim in a jobs folder, if any (an unreadable one counts as none: epoch 0)."""
    try:
        doc = json.loads((folder / CLAIM).read_text(encoding="utf-8"))
        claim = Claim(node=doc["node"], epoch=doc["epoch"], since=doc.get("since", ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(claim.node, str) or not isinstance(claim.epoch, int):
        return None
    return claim


def write_claim(folder: Path, claim: Claim) -> None:
    """Record a claim atomically."""
    target = folder / CLAIM
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".epoch-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"node": claim.node, "epoch": claim.epoch, "since": claim.since}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temp).replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(temp).unlink()
        raise


def node_epoch(folder: Path, node: str) -> int:
    """The epoch this node pushes in: that of its own claim, else 0."""
    claim = read_claim(folder)
    return claim.epoch if claim and name_key(claim.node) == name_key(node) else 0


def read_local_manifest(folder: Path) -> Manifest:
    """The manifest in a local jobs folder (empty when missing or corrupt)."""
    try:
        return manifest_from_bytes((folder / MANIFEST).read_bytes())
    except (OSError, ManifestCorruptError):
        return Manifest()


def fence_reason(manifest: Manifest, *, epoch: int, node: str) -> str | None:
    """Why ``node`` at ``epoch`` must not write to a folder with this manifest, or ``None``."""
    if manifest.epoch > epoch and name_key(manifest.owner) != name_key(node):
        since = f" on {manifest.owner_since}" if manifest.owner_since else ""
        return (
            f"{manifest.owner} took over at epoch {manifest.epoch}{since}; this node is "
            f"at epoch {epoch}: nothing was changed (run jobsync takeover here first if this "
            "node is to be the services node again)"
        )
    return None


class LocalFence:
    """A node's epoch, and whether its own jobs folder says another node took over.

    Re-reads the local manifest only when its size or write time changed, so the agent can ask
    before every pass.
    """

    def __init__(self, folder: Path, node: str) -> None:
        """Watch ``folder``, the node's own jobs folder."""
        self._folder = folder
        self._node = node
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._manifest = Manifest()

    def epoch(self) -> int:
        """The epoch this node pushes in."""
        return node_epoch(self._folder, self._node)

    def since(self) -> str:
        """When this node took over (empty before any takeover)."""
        claim = read_claim(self._folder)
        return claim.since if claim and name_key(claim.node) == name_key(self._node) else ""

    def manifest(self) -> Manifest:
        """The local manifest: what is known of the versions this node holds."""
        with self._lock:
            try:
                st = (self._folder / MANIFEST).stat()
                stamp: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
            except OSError:
                stamp = None
            if stamp != self._stamp:
                self._manifest = read_local_manifest(self._folder) if stamp else Manifest()
                self._stamp = stamp
            return self._manifest

    def reason(self) -> str | None:
        """Why this node must not push at all, or ``None``."""
        return fence_reason(self.manifest(), epoch=self.epoch(), node=self._node)
