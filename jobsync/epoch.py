"""Epochs: which node owns the jobs, and fencing the node that lost the role.

Every ``jobsync takeover`` starts a new epoch, higher than any it can see, and records it in
three places: the node's own claim (``.jobsync/epoch.json`` in its jobs folder, which pushes
never touch), its local manifest, and every reachable peer's manifest. A node pushes in the
epoch of its claim (0 before any takeover). A folder whose manifest names another owner whose
claim outranks this node's (:mod:`jobsync.versions`: the higher epoch, then the name that sorts
first) refuses that node's writes: the old services node, back after a failover, cannot
overwrite the new one's jobs, whatever its clock says, and of two nodes that took over in the
same epoch while they could not see each other, exactly one goes on.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from jobsync.errors import ManifestTooNewError
from jobsync.jobs_folder import (
    MANIFEST,
    STATE_DIR,
    Manifest,
    ManifestCorruptError,
    manifest_from_bytes,
    name_key,
)
from jobsync.node import Identity, clash, read_folder_identity, replace_atomically
from jobsync.versions import Claim, manifest_claim

CLAIM = f"{STATE_DIR}/epoch.json"


def read_claim(folder: Path) -> Claim | None:
    """The claim in a jobs folder, if any (an unreadable one counts as none: epoch 0)."""
    try:
        doc = json.loads((folder / CLAIM).read_text(encoding="utf-8"))
        claim = Claim(
            node=doc["node"],
            epoch=doc["epoch"],
            since=doc.get("since", ""),
            install=doc.get("install", ""),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    texts = (claim.node, claim.since, claim.install)
    if not all(isinstance(t, str) for t in texts) or not isinstance(claim.epoch, int):
        return None
    return claim


def write_claim(folder: Path, claim: Claim) -> None:
    """Record a claim atomically."""
    document = {
        "node": claim.node,
        "epoch": claim.epoch,
        "since": claim.since,
        "install": claim.install,
    }
    replace_atomically(folder / CLAIM, json.dumps(document).encode("utf-8"))


def node_epoch(folder: Path, node: str) -> int:
    """The epoch this node pushes in: that of its own claim, else 0."""
    claim = read_claim(folder)
    return claim.epoch if claim and name_key(claim.node) == name_key(node) else 0


def read_local_manifest(folder: Path) -> Manifest:
    """The manifest in a local jobs folder (empty when missing or corrupt).

    Raises :class:`ManifestTooNewError` when a newer jobsync wrote it.
    """
    try:
        return manifest_from_bytes((folder / MANIFEST).read_bytes())
    except (OSError, ManifestCorruptError):
        return Manifest()


def owner_identity(manifest: Manifest) -> Identity | None:
    """The identity of the owner a manifest names, when it records one (jobsync 0.3 on)."""
    if not manifest.owner or not manifest.owner_install:
        return None
    return Identity(manifest.owner, manifest.owner_host or "unknown host", manifest.owner_install)


def manifest_clash(manifest: Manifest, me: Identity, *, where: str) -> str | None:
    """Whether the owner a manifest names is another machine going by ``me``'s node name."""
    return clash(me, owner_identity(manifest), where=where)


def fence_reason(
    manifest: Manifest, *, epoch: int, node: str, me: Identity | None = None, where: str = ""
) -> str | None:
    """Why ``node`` at ``epoch`` must not write to a folder with this manifest, or ``None``.

    With ``me``, a manifest whose owner has this node's name but another install (two machines
    given one name) refuses too, saying it was found ``where``.
    """
    if me is not None and (problem := manifest_clash(manifest, me, where=where)):
        return problem
    winner = manifest_claim(manifest)
    mine = Claim(node=node, epoch=epoch)
    if winner is None or winner.same_node(mine) or not winner.outranks(mine):
        return None
    return outranked_reason(winner, mine)


@dataclass(frozen=True)
class Verdict:
    """What a peer's manifest says about a node about to write there."""

    epoch: int  # the epoch the node writes in there (its own; a lost claim keeps the peer's)
    reason: str | None  # why the node must not write there, naming the winner; None: it may
    winner: Claim | None  # the claim that outranks the node's, to be fenced by everywhere
    clash: str | None = None  # two machines go by this node's name: refused everywhere too


def fence_verdict(
    manifest: Manifest, *, epoch: int, node: str, me: Identity | None = None, where: str = ""
) -> Verdict:
    """Whether ``node``, pushing in ``epoch``, may write to a folder with this manifest."""
    # A node whose claim was lost still owns what it owns: keep the peer's epoch then.
    same_owner = name_key(manifest.owner) == name_key(node)
    problem = manifest_clash(manifest, me, where=where) if me is not None else None
    reason = problem or fence_reason(manifest, epoch=epoch, node=node)
    return Verdict(
        epoch=max(epoch, manifest.epoch) if same_owner else epoch,
        reason=reason,
        winner=manifest_claim(manifest) if reason is not None and problem is None else None,
        clash=problem,
    )


def outranked_reason(winner: Claim, mine: Claim) -> str:
    """The message of a node whose claim ``mine`` lost to ``winner``: it names the winner."""
    since = f" on {winner.since}" if winner.since else ""
    advice = (
        "nothing was changed (run jobsync takeover here first if this node is to be the "
        "services node again)"
    )
    if winner.epoch > mine.epoch:
        return (
            f"{winner.node} took over at epoch {winner.epoch}{since}; this node is at epoch "
            f"{mine.epoch}: {advice}"
        )
    rule = "at equal epochs the node whose name sorts first owns the jobs"
    if winner.epoch == 0:
        return (
            f"{winner.node} owns the jobs at epoch 0 (no takeover yet), as this node "
            f"({mine.node}) would; {rule}, so {winner.node} does: {advice}"
        )
    return (
        f"{winner.node} took over at epoch {winner.epoch}{since}, as did this node ({mine.node}); "
        f"{rule}, so {winner.node} does: {advice}"
    )


class LocalFence:
    """A node's epoch, and whether a claim that outranks its own says another node owns the jobs.

    The claim can be in the node's own jobs folder (once the winner pushed there) or have been
    seen on any peer during this run (:meth:`saw`): from then on the node is fenced everywhere.
    With the node's ``identity``, a record of another machine going by the same name, in its
    own folder or on any peer (:meth:`saw_clash`), fences it too. Re-reads the local manifest
    only when its size or write time changed, so the agent can ask before every pass.
    """

    def __init__(self, folder: Path, node: str, *, identity: Identity | None = None) -> None:
        """Watch ``folder``, the node's own jobs folder."""
        self._folder = folder
        self._node = node
        self.identity = identity
        self._clash: str | None = None
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._manifest = Manifest()
        self._too_new: str | None = None  # why the local manifest cannot be read by this jobsync
        self._seen: Claim | None = None

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
                self._manifest, self._too_new = Manifest(), None
                try:
                    self._manifest = read_local_manifest(self._folder) if stamp else Manifest()
                except ManifestTooNewError as exc:
                    self._too_new = (
                        f"this node's own jobs folder has a manifest {exc}: upgrade jobsync on "
                        "this node before it pushes; nothing was changed"
                    )
                self._stamp = stamp
            return self._manifest

    def saw(self, claim: Claim) -> None:
        """Remember a claim seen on a peer that outranks this node's: fenced from now on."""
        with self._lock:
            if self._seen is None or claim.outranks(self._seen):
                self._seen = claim

    def saw_clash(self, reason: str) -> None:
        """Remember that another machine goes by this node's name: fenced from now on."""
        with self._lock:
            self._clash = self._clash or reason

    def reason(self) -> str | None:
        """Why this node must not push at all, or ``None``."""
        epoch = self.epoch()
        local = fence_reason(
            self.manifest(),
            epoch=epoch,
            node=self._node,
            me=self.identity,
            where="by the manifest in this node's own jobs folder",
        )
        with self._lock:
            seen, too_new, clashed = self._seen, self._too_new, self._clash
        if clashed is not None:
            return clashed
        if too_new is not None:
            return too_new
        if self.identity is not None and (problem := folder_clash(self._folder, self.identity)):
            return problem
        if local is not None or seen is None:
            return local
        return outranked_reason(seen, Claim(node=self._node, epoch=epoch))


def folder_clash(folder: Path, me: Identity) -> str | None:
    """Another machine's ``node.json`` in this node's own folder (a shared or copied one)."""
    where = "by node.json in this node's own jobs folder"
    return clash(me, read_folder_identity(folder), where=where)


def local_clash(folder: Path, me: Identity) -> str | None:
    """Whether this node's own folder shows another machine going by its name.

    Its manifest (written by the owner's pushes) or its ``node.json``; read-only, for a node
    that is about to do nothing (a standby) and must still say so.
    """
    try:
        manifest = read_local_manifest(folder)
    except ManifestTooNewError:
        manifest = Manifest()
    where = "by the manifest in this node's own jobs folder"
    return manifest_clash(manifest, me, where=where) or folder_clash(folder, me)
