"""``jobsync init``: the install step of every node; on the services node it claims the jobs.

Run on every node when jobsync is installed (``install.ps1`` does). Each node records which
machine it is in its own jobs folder (:mod:`jobsync.identity`). The node that ``[active]`` says
is the services node then becomes the owner by a first takeover (epoch 1), so ownership is
never left to the order of node names; a standby records its identity and nothing else. Run
again, it changes nothing: the owner already owns the jobs, and a folder that names another
owner is refused (moving the services is ``jobsync takeover``'s work, never an install's).
"""

from __future__ import annotations

from dataclasses import replace

from jobsync.config import Config
from jobsync.epoch import local_clash, read_claim
from jobsync.identity import local_identity, publish, published_addresses
from jobsync.logs import get_logger
from jobsync.names import name_key
from jobsync.result.init import InitResult
from jobsync.role_gate import decide
from jobsync.scan import scan_source
from jobsync.takeover import takeover
from jobsync.transport import Opener, default_opener

log = get_logger(__name__)


def init(
    config: Config,
    *,
    dry_run: bool = False,
    override: bool = False,
    busy: str | None = None,
    opener: Opener = default_opener,
) -> InitResult:
    """Record this node's identity; claim the jobs if it is the services node and none does.

    ``busy`` names who holds this node's work lock (the agent): the identity is still recorded
    and an owner is still told it owns the jobs, but a claim is refused until it stops.
    """
    if not config.source.is_dir():
        scan_source(config.source, config.pattern)  # raises the SourceError that says why
    decision = decide(config, override=override)
    me = local_identity(config, addresses=published_addresses(config))
    clash = (None if dry_run else publish(config.source, me)) or local_clash(config.source, me)
    result = InitResult(
        node=config.node,
        host=me.host,
        install=me.install,
        role=decision.name,
        role_reason=decision.reason,
        overridden=decision.overridden,
        clash=clash,
        dry_run=dry_run,
    )
    if clash is not None or not decision.active:
        log.info("node_initialised", role=decision.name, clash=clash is not None)
        return result
    claim = read_claim(config.source)
    mine = claim is not None and name_key(claim.node) == name_key(config.node)
    if claim is not None and mine and claim.epoch > 0 and claim.install in ("", me.install):
        return replace(result, owned_since=claim.epoch)
    if busy is not None and not dry_run:
        refused = (
            f"{busy} is at work on this node; stop the jobsync agent service, run jobsync init"
        )
        return replace(result, refused=f"{refused} again, then start it")
    claimed = takeover(config, dry_run=dry_run, first=True, opener=opener)
    log.info("node_initialised", role=decision.name, epoch=claimed.epoch, refused=claimed.refused)
    return replace(result, claimed=claimed)
