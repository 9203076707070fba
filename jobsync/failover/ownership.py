"""Who owns the jobs now, as every reachable folder says: the failover's "already done?" test.

A takeover records this node's claim (its epoch) in its own folder and in every reachable
peer's manifest. When all of them name this node at its epoch, and nothing outranks it, the
takeover is done and running it again would only start a needless epoch; when another claim
outranks this node's, another failover won (the ownership rule), and this node must step back.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from jobsync.config import Config, PeerConfig
from jobsync.epoch import read_claim, read_local_manifest
from jobsync.errors import PeerError
from jobsync.failover.nodes import again_if_session_lost
from jobsync.fanout import each_peer
from jobsync.names import name_key
from jobsync.transport import Opener, default_opener
from jobsync.transport.manifests import read_manifest
from jobsync.versions import Claim, claim_key, manifest_claim


@dataclass(frozen=True)
class Ownership:
    """The claim of the node running the failover, the best claim seen, where folders stand."""

    mine: Claim
    winner: Claim
    behind: tuple[str, ...]  # reachable peers whose manifest does not name this node's claim
    unreachable: tuple[str, ...]

    @property
    def outranked(self) -> bool:
        """Whether another node's claim wins over this node's."""
        return not self.winner.same_node(self.mine) and self.winner.outranks(self.mine)

    def stepping_back(self) -> str:
        """The summary of a step that found this node outranked."""
        return (
            f"{self.winner.node} took over at epoch {self.winner.epoch} meanwhile and owns the "
            "jobs (the ownership rule); this node steps back"
        )

    def settled(self, *, down: frozenset[str] = frozenset()) -> bool:
        """Whether this node owns the jobs on every folder but those known to be down."""
        unseen = {name_key(n) for n in self.unreachable} - {name_key(n) for n in down}
        return self.mine.epoch > 0 and not self.outranked and not self.behind and not unseen


def read_ownership(config: Config, *, opener: Opener = default_opener) -> Ownership:
    """Read the claim here and the owner every reachable peer's manifest names; change nothing."""
    claim = read_claim(config.source)
    mine_epoch = claim.epoch if claim and name_key(claim.node) == name_key(config.node) else 0
    mine = Claim(node=config.node, epoch=mine_epoch, since=claim.since if claim else "")
    claims = [mine]
    local = manifest_claim(read_local_manifest(config.source))
    if local is not None:
        claims.append(local)

    def visit(peer_config: PeerConfig) -> Claim | PeerError | None:
        try:
            peer = opener(peer_config, config.timeout_seconds)
        except PeerError as exc:
            return exc
        try:
            manifest, _problem = again_if_session_lost(partial(read_manifest, peer))
            return manifest_claim(manifest)
        except PeerError as exc:
            return exc
        finally:
            peer.close()

    peers = config.target_peers
    answers = each_peer(peers, visit, name="jobsync-ownership")
    behind: list[str] = []
    unreachable: list[str] = []
    for peer_config, answer in zip(peers, answers, strict=True):
        if isinstance(answer, PeerError):
            unreachable.append(peer_config.name)
            continue
        if answer is not None:
            claims.append(answer)
        if answer is None or claim_key(answer) != claim_key(mine):
            behind.append(peer_config.name)
    winner = max(claims, key=claim_key)
    return Ownership(mine=mine, winner=winner, behind=tuple(behind), unreachable=tuple(unreachable))
