"""``jobsync init`` and ``jobsync check``: a node set up, then proved able to work.

``jobsync init``: the install step of every node; on the services node it claims the jobs.
Run on every node when jobsync is installed (``install.ps1`` does). Each node records which
machine it is in its own jobs folder (:mod:`jobsync.node`). The node that ``[active]`` says
is the services node then becomes the owner by a first takeover (epoch 1), so ownership is
never left to the order of node names; a standby records its identity and nothing else. Run
again, it changes nothing: the owner already owns the jobs, and a folder that names another
owner is refused (moving the services is ``jobsync takeover``'s work, never an install's).

``jobsync check``: proves this node can work with each peer, and the fleet with itself.
For each peer: log on, open the jobs folder, then create a temp file where a push would (in
``.jobsync/tmp`` when a file created there gets the jobs folder's permissions, else beside the
jobs), read it back, rename it into the jobs folder and remove it: the exact operations a push
needs, under names the pattern never matches. Each peer's ``node.json`` is read on the way, so
the fleet as a whole is judged too (:func:`fleet_problems`): two machines going by one name,
and a ``dns`` services name that no single node carries.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import replace

from jobsync.config.model import Config, PeerConfig
from jobsync.epoch import local_clash, read_claim
from jobsync.errors import PeerError
from jobsync.jobs_folder import TMP_DIR, job_temp_name, name_key
from jobsync.logs import get_logger
from jobsync.node import (
    NODE_FILE,
    Identity,
    clash,
    identity_from_bytes,
    local_identity,
    publish,
    published_addresses,
)
from jobsync.result import CheckResult, InitResult
from jobsync.role import decide, dns_problem, resolve
from jobsync.scan import scan_source
from jobsync.sync.manifests import state_listing
from jobsync.sync.passes import temps_alike
from jobsync.takeover import takeover
from jobsync.transport import Opener, default_opener, each_peer
from jobsync.transport.base import FileWrite, Peer

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


def check(
    config: Config, *, peers: Sequence[PeerConfig], opener: Opener = default_opener
) -> list[CheckResult]:
    """Probe every peer concurrently."""
    return each_peer(peers, lambda p: check_peer(p, config=config, opener=opener), name="check")


def check_peer(peer: PeerConfig, *, config: Config, opener: Opener = default_opener) -> CheckResult:
    """Probe one peer; never raises for a peer problem."""
    started = time.monotonic()
    handle: Peer | None = None
    identity = None
    try:
        handle = opener(peer, config.timeout_seconds)
        detail = _probe(handle)
        identity = _identity(handle)
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
        identity=identity,
    )


def _identity(peer: Peer) -> Identity | None:
    """Whose folder the peer's is, by its ``node.json`` (None before that node's ``init``)."""
    if "node.json" not in state_listing(peer):
        return None
    data = peer.read_files([NODE_FILE])[NODE_FILE]
    return identity_from_bytes(data) if isinstance(data, bytes) else None


def fleet_problems(config: Config, me: Identity, results: Sequence[CheckResult]) -> list[str]:
    """What is wrong with the fleet as a whole, from what every peer said about itself."""
    problems = []
    seen: dict[str, str] = {}  # node name key -> the peer whose folder says it is that node
    for result in results:
        found = result.identity
        if found is None:
            continue
        where = f"by node.json in its jobs folder on peer {result.peer}"
        if problem := clash(me, found, where=where):
            problems.append(problem)
        other = seen.setdefault(name_key(found.node), result.peer)
        if other != result.peer:
            problems.append(
                f"peers {other} and {result.peer} both say they are node {found.node}: give each "
                "node its own name"
            )
    others = sorted(r.peer for r in results if r.identity is not None)
    if config.active.mode == "always" and others:
        problems.append(
            f'[active] is left out (or mode = "always") and {", ".join(others)} run jobsync '
            "too: every node with this file pushes as the services node; set [active] "
            '(mode = "services" or "dns") on every node'
        )
    if config.active.mode == "dns":
        holders = {me.node: set(me.addresses)}
        holders |= {r.identity.node: set(r.identity.addresses) for r in results if r.identity}
        targets = _resolved(config.active.services_host or "")
        host = config.active.services_host or "services_host"
        fleet = 1 + len(config.target_peers)
        verdict = dns_problem(targets, holders=holders, host=host, fleet=fleet) if targets else None
        if problem := verdict:
            problems.append(f"[active] {problem}")
    return problems


def _resolved(host: str) -> set[str]:
    try:
        return resolve(host)
    except (OSError, UnicodeError):
        return set()  # said by the role check already


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
