r"""Step 4: point the services name at this node, as ``[failover] repoint`` says.

- ``"hosts"``: the marked line in every node's hosts file, through its admin share
  (``C$\Windows\System32\drivers\etc\hosts``), each node at once. The file as it was is kept in
  ``etc\.jobsync\backup\`` first; the new one is written under a temp name and renamed over it,
  then read back. Windows' DNS client reads a changed hosts file at once.
- ``"dns"``: an RFC 2136 update of the name's A record, signed with GSS-TSIG (Active
  Directory's secure zones), checked by asking the server again. Clients that looked the name
  up earlier may keep the old address for the old record's TTL: the result says how long.
- ``"none"``: a cluster's Network Name (or another tool) owns the name; nothing is done here.

The services name's line in a Windows hosts file (``System32\drivers\etc\hosts``): pure text.
jobsync owns one line, marked so that a person reading the file knows who wrote it. Any other
line that maps the services name would win or lose against it depending on its place in the
file, so it is commented out (never deleted: the text stays, and the whole file is kept in
backup before it is written). Everything else is left byte for byte as it was; the file is
written back with Windows line ends.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from jobsync.errors import JobsyncError, PeerError, PeerIOError
from jobsync.failover.dns_update import DnsServer, repoint
from jobsync.failover.nodes import HOSTS_FOLDER, FleetNode, Move, again_if_session_lost
from jobsync.jobs_folder import BACKUP_DIR, STAMP_FORMAT, stamp_name
from jobsync.logs import get_logger
from jobsync.result import StepOutcome
from jobsync.transport import each_peer
from jobsync.transport.base import FileWrite, Peer

MARK = "# jobsync: the services name (jobsync failover)"
SET_ASIDE = "# jobsync set this aside: "
_NEWLINE = "\r\n"
# The hosts file is read by Windows in the system's ANSI code page; latin-1 round-trips any byte.
_ENCODING = "latin-1"


@dataclass(frozen=True)
class HostsEdit:
    """The file with the services name pointing at ``address``, and what that changed."""

    data: bytes
    changed: bool
    previous: tuple[str, ...]  # the addresses the name had in this file before (in file order)
    set_aside: int  # how many other lines for the name were commented out


def _names_on(line: str) -> tuple[str, list[str]] | None:
    """The address and names of an entry line, or ``None`` for a comment or a blank line."""
    entry = line.split("#", 1)[0].split()
    if len(entry) < 2:  # noqa: PLR2004 - an address and at least one name
        return None
    return entry[0], [n.rstrip(".").casefold() for n in entry[1:]]


def _lines(data: bytes) -> list[str]:
    """The file's lines, split at CR, LF or CRLF only.

    ``str.splitlines`` also splits at U+0085, which is a character of a comment in the ANSI
    code page (an ellipsis in Windows-1252): found by the property test.
    """
    return [line.decode(_ENCODING) for line in data.splitlines()]


def addresses_for(data: bytes, name: str) -> tuple[str, ...]:
    """The addresses the file maps ``name`` to, in file order (Windows takes the first)."""
    wanted = name.rstrip(".").casefold()
    found = []
    for line in _lines(data):
        entry = _names_on(line)
        if entry is not None and wanted in entry[1]:
            found.append(entry[0])
    return tuple(found)


def point_name(data: bytes, name: str, address: str) -> HostsEdit:
    """``data`` with one marked line ``address name`` and every other line for ``name`` aside."""
    wanted = name.rstrip(".").casefold()
    ours = f"{address} {name.rstrip('.')} {MARK}"
    lines = _lines(data)
    out: list[str] = []
    placed = False
    aside = 0
    for line in lines:
        entry = _names_on(line)
        if entry is None or wanted not in entry[1]:
            out.append(line)
            continue
        if line.rstrip().endswith(MARK):
            if not placed:
                out.append(ours)
                placed = True
            continue  # a second marked line (an interrupted edit by hand): one is enough
        out.append(SET_ASIDE + line)
        aside += 1
    if not placed:
        while out and not out[-1].strip():
            out.pop()
        out.append(ours)
    text = _NEWLINE.join(out) + _NEWLINE
    new = text.encode(_ENCODING)
    return HostsEdit(
        data=new,
        changed=new != data,
        previous=addresses_for(data, name),
        set_aside=aside,
    )


log = get_logger(__name__)
HOSTS = "hosts"


@dataclass(frozen=True)
class HostsOutcome:
    """One node's hosts file: what the name pointed at before, and what became of it."""

    node: str
    previous: tuple[str, ...] = ()
    changed: bool = False
    kept_as: str | None = None
    error: str | None = None


def repoint_step(move: Move) -> StepOutcome:
    """Step 4, by the configured method."""
    method = move.failover.repoint
    if method == "none":
        return StepOutcome(
            "repoint", "skipped", 'repoint = "none": the services name is not jobsync\'s to move'
        )
    name = move.failover.services_name
    assert name is not None  # noqa: S101 - the config requires it unless repoint = "none"
    address = move.here.address()
    if method == "hosts":
        return _hosts_step(move, name, address)
    return _dns_step(move, name, address)


def _hosts_step(move: Move, name: str, address: str) -> StepOutcome:
    nodes = [n for n in move.nodes if n.name not in move.down]

    def work(node: FleetNode) -> HostsOutcome:
        return point_hosts_file(move, node, name, address)

    outcomes = each_peer(nodes, work, name="jobsync-hosts")
    details = [_hosts_line(o, name, address, dry=move.dry_run) for o in outcomes]
    details += [f"{n}: down, not changed: fix its hosts file when it is back" for n in move.down]
    failed = [o.node for o in outcomes if o.error is not None]
    changed = [o.node for o in outcomes if o.changed]
    if failed:
        summary = f"the hosts file of {', '.join(failed)} still points elsewhere"
        return StepOutcome("repoint", "failed", summary, tuple(details))
    if move.dry_run:
        verb = f"would point {name} at {address} on {', '.join(changed)}" if changed else None
        return StepOutcome(
            "repoint", "planned", verb or f"{name} already points here", tuple(details)
        )
    if not changed:
        summary = f"every hosts file already points {name} at {address}"
        return StepOutcome("repoint", "already", summary, tuple(details))
    return StepOutcome(
        "repoint", "done", f"{name} -> {address} in {len(changed)} hosts file(s)", tuple(details)
    )


def point_hosts_file(move: Move, node: FleetNode, name: str, address: str) -> HostsOutcome:
    """Point ``name`` at ``address`` in one node's hosts file; never raises for the node."""
    try:
        folder = move.opener(node.admin(HOSTS_FOLDER), move.timeout)
    except PeerError as exc:
        return HostsOutcome(node.name, error=str(exc))

    def edit() -> HostsOutcome:
        data = read_hosts(folder)
        if isinstance(data, PeerIOError):
            return HostsOutcome(node.name, error=f"cannot read its hosts file: {data}")
        change = point_name(data, name, address)
        if not change.changed or move.dry_run:
            return HostsOutcome(node.name, previous=change.previous, changed=change.changed)
        kept_as = _replace_hosts(folder, data, change.data)
        log.warning("hosts_repointed", node=node.name, name=name, address=address, kept_as=kept_as)
        return HostsOutcome(node.name, previous=change.previous, changed=True, kept_as=kept_as)

    try:
        return again_if_session_lost(edit)
    except PeerError as exc:
        return HostsOutcome(node.name, error=str(exc))
    finally:
        folder.close()


def read_hosts(folder: Peer) -> bytes | PeerIOError:
    """The hosts file in a node's ``etc`` folder, or why it cannot be read."""
    return folder.read_files([HOSTS])[HOSTS]


def _replace_hosts(folder: Peer, old: bytes, new: bytes) -> str:
    """Keep ``old`` in backup, put ``new`` in place atomically, read it back; the backup's name."""
    stamp = datetime.now(timezone.utc).strftime(STAMP_FORMAT)
    kept_as = f"{BACKUP_DIR}/{stamp_name(HOSTS, stamp)}"
    folder.make_dirs(BACKUP_DIR)
    now = time.time_ns()
    for write in (FileWrite(kept_as, _temp(), old, now), FileWrite(HOSTS, _temp(), new, now)):
        outcome = folder.write_files([write])[0]
        if outcome.error is not None:
            raise outcome.error
    if folder.read_files([HOSTS])[HOSTS] != new:
        raise PeerIOError("its hosts file did not read back as written")
    return kept_as


def _temp() -> str:
    """A temp name in the hosts folder that nothing else uses."""
    return f".jobsync-hosts-{secrets.token_hex(4)}.tmp"


def _hosts_line(outcome: HostsOutcome, name: str, address: str, *, dry: bool) -> str:
    if outcome.error is not None:
        return f"{outcome.node}: {outcome.error}"
    before = ", ".join(outcome.previous) or "nothing"
    if not outcome.changed:
        return f"{outcome.node}: {name} -> {address} already"
    verb = "would point" if dry else "pointed"
    kept_as = (outcome.kept_as or "").replace("/", "\\")
    kept = f" (the old file kept as etc\\{kept_as})" if kept_as else ""
    return f"{outcome.node}: {verb} {name} at {address}, was {before}{kept}"


def _dns_step(move: Move, name: str, address: str) -> StepOutcome:
    dns = move.failover.dns
    assert dns is not None  # noqa: S101 - the config requires [failover.dns] for "dns"
    server = DnsServer.of(dns)
    try:
        change = repoint(
            server, name, address, ttl=dns.ttl_seconds, timeout=move.timeout, dry_run=move.dry_run
        )
    except JobsyncError as exc:
        return StepOutcome("repoint", "failed", str(exc))
    before = ", ".join(change.before) or "no address"
    cache = (
        f"clients may keep the old address up to {change.old_ttl} s (its TTL)"
        if change.old_ttl
        else "no old record for clients to keep"
    )
    if move.dry_run:
        summary = f"would point {name} at {address} (now {before})"
        return StepOutcome("repoint", "planned", summary, (cache,))
    if not change.changed:
        return StepOutcome("repoint", "already", f"{name} already points at {address}")
    return StepOutcome(
        "repoint",
        "done",
        f"{name} -> {address} on {dns.server} (was {before})",
        (f"the server now answers {', '.join(change.after)}", cache),
    )
