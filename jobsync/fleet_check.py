r"""``jobsync check --fleet``: Integrify's load-balancing checklist, judged line by line.

The vendor's page, item by item, and the report's lines that prove it (README has the table):

1. identical configuration: ``configuration`` (each node's copy of the files against the
   copy most nodes hold, key by key);
2. the services on one node, every node's services name pointing at it: ``services``,
   ``services name``; the jobs file copied to every node: ``jobs``, ``jobsync``;
3. attachments, reports and temp on one UNC share the services' account can write:
   ``shared folders``; the services' and the IIS pools' accounts: ``accounts``;
4. ``/healthcheck`` as the balancer's probe: ``healthcheck``;
5. SSL offload, sticky sessions, ``X-Forwarded-Proto``: ``balancer``, ``certificate``,
   ``sticky sessions``, ``forwarded proto`` (CANNOT CHECK: it is not visible from outside).

Judging reads only what :mod:`jobsync.fleet_facts` gathered, so it is pure. A line never holds
a value from Integrify's files but a shared folder's path (the evidence): a difference is
named by its key path, and the values are "not shown".
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator

from jobsync import __version__
from jobsync.config.model import Config, FleetCheckConfig
from jobsync.errors import ConfigError
from jobsync.failover.nodes import FleetNode
from jobsync.failover.repoint import addresses_for
from jobsync.failover.steps import NodeAnswer, ServicesNodes, joined
from jobsync.fleet_facts import (
    Gathered,
    NodeFacts,
    PublicAnswer,
    Reach,
    folder_values,
    gather,
)
from jobsync.integrify_files import (
    ParsedFile,
    TaskDefinition,
    account_key,
    differing_keys,
    drive_letter,
    file_name,
    machine_account,
    majority,
    path_key,
    path_kind,
    same_account,
    split_key_path,
)
from jobsync.jobs_folder import name_key
from jobsync.result import BALANCER, FLEET, FleetItem, FleetLine, FleetReport, Verdict

_SHOWN_KEYS = 3  # key paths named per file before "and N more"
_DAY = 86_400.0
# Cookies balancers set for affinity, by name or prefix: F5 BIG-IP, AWS, Azure and IIS ARR,
# Citrix ADC, HAProxy's usual name, Google, ingress-nginx, Fortinet, Barracuda, Kemp.
AFFINITY_COOKIES = (
    "bigipserver", "awsalb", "awselb", "applicationgatewayaffinity", "arraffinity", "nsc_",
    "serverid", "gclb", "ingresscookie", "route", "fgtserver", "bni_", "kemp",
)  # fmt: skip


def run_fleet_check(
    config: Config, *, reach: Reach | None = None, clock: Callable[[], float] = time.monotonic
) -> FleetReport:
    """Gather, judge and time one fleet check."""
    started = clock()
    lines = judge(gather(config, reach=reach))
    return FleetReport(node=config.node, lines=lines, at=time.time(), seconds=clock() - started)


def judge(g: Gathered) -> tuple[FleetLine, ...]:
    """Every line, in the items' order, then the nodes'."""
    up = [f for f in g.nodes if f.error is None]
    services = _where_services_run(g)
    return (
        *_unreachable(g),
        *_configuration(g, up),
        *_shared_folders(g, up),
        *_accounts(g, up),
        *_services(services),
        *_services_name(g, up, services),
        *_jobs(g, services),
        *_jobsync(g, up),
        *_health(g, up),
        *_balancer(g),
    )


def _line(
    item: FleetItem,
    node: str,
    problems: list[str],
    fine: str,
    step: str,
    notes: list[str] | None = None,
) -> FleetLine:
    """FAIL with the problems when there are any, else PASS; ``notes`` go with either."""
    if problems:
        return FleetLine(item, node, "FAIL", "; ".join([*problems, *(notes or [])]), step)
    return FleetLine(item, node, "PASS", "; ".join([fine, *(notes or [])]))


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}" if number == 1 else f"{number} {thing}s"


def _some(names: list[str]) -> str:
    """The first few names, and how many more."""
    more = len(names) - _SHOWN_KEYS
    return ", ".join(names[:_SHOWN_KEYS]) + (f" and {more} more" if more > 0 else "")


def _unreachable(g: Gathered) -> Iterator[FleetLine]:
    for facts in g.nodes:
        if facts.error is not None:
            yield FleetLine(
                "node",
                facts.node.name,
                "FAIL",
                f"{facts.error}; no other item could look at this node",
                f"start {facts.node.name}, or let this account open its admin share; then run "
                "jobsync check --fleet again",
            )


# -- 1. identical configuration -------------------------------------------------------------


def _allowed(check: FleetCheckConfig, name: str) -> frozenset[str]:
    # The shared folders' keys are judged by their own item, so one cause is one FAIL line.
    items = (*check.differs_by_design, *check.shared_folders)
    found = (split_key_path(item) for item in items)
    return frozenset(key for file, key in found if name_key(file) == name_key(name))


def _configuration(g: Gathered, up: list[NodeFacts]) -> Iterator[FleetLine]:
    if len(up) < 2:  # noqa: PLR2004 - a comparison needs two
        yield FleetLine("configuration", FLEET, "CANNOT CHECK", "fewer than two nodes answered")
        return
    problems: dict[str, list[str]] = defaultdict(list)
    notes: dict[str, list[str]] = defaultdict(list)
    for relative in g.check.files:
        _compare_file(g, up, relative, problems, notes)
    names = ", ".join(file_name(f) for f in g.check.files)
    by_design = len(g.check.differs_by_design)
    for facts in up:
        node = facts.node.name
        others = tuple(f.node.name for f in up if f is not facts)
        fine = f"{names}: as on {joined(others)}, key by key"
        if by_design:
            fine += f" (but for {by_design} keys that differ by design)"
        yield _line(
            "configuration",
            node,
            problems[node],
            fine,
            f"make {node}'s files match the others' (the OnPremise Manager, or a copy from a "
            "node that is right); a key meant to differ per node goes in [fleet_check] "
            "differs_by_design",
            notes[node],
        )


def _compare_file(
    g: Gathered,
    up: list[NodeFacts],
    relative: str,
    problems: dict[str, list[str]],
    notes: dict[str, list[str]],
) -> None:
    """Each node's copy of one file against the copy most nodes hold, key by key."""
    name = file_name(relative)
    allowed = _allowed(g.check, name)
    parsed: dict[str, ParsedFile] = {}
    for facts in up:
        copy = facts.files.get(relative, "not read")
        if isinstance(copy, str):
            problems[facts.node.name].append(f"{relative}: {copy}")
        else:
            parsed[facts.node.name] = copy
    if not parsed:
        return
    shapes = {node: copy.comparable(allowed) for node, copy in parsed.items()}
    most = majority(shapes, prefer=g.config.node)
    holders = tuple(node for node, shape in shapes.items() if shape == most)
    model = parsed[holders[0]]
    for node, copy in parsed.items():
        if copy.problem is not None:
            notes[node].append(f"{name} {copy.problem}, so it is compared byte for byte")
        if shapes[node] == most:
            continue
        if copy.values is not None and model.values is not None:
            at = _some(differing_keys(copy, model, allowed))
            problems[node].append(
                f"{name} differs from {joined(holders)}'s at {at} (values not shown)"
            )
        else:
            problems[node].append(f"{name} differs from {joined(holders)}'s, byte for byte")


# -- 3. shared folders ----------------------------------------------------------------------


def _shared_folders(g: Gathered, up: list[NodeFacts]) -> Iterator[FleetLine]:
    check = g.check
    if not check.shared_folders:
        yield FleetLine(
            "shared folders",
            FLEET,
            "CANNOT CHECK",
            "no shared_folders in [fleet_check], so no folder was looked at",
            "run jobsync check --fleet --discover, and name the keys that hold the attachments, "
            "reports and temp folders in [fleet_check] shared_folders",
        )
        return
    values = {f.node.name: dict(folder_values(f, check)) for f in up}
    common: dict[str, str] = {}
    for item in check.shared_folders:
        seen = {node: path_key(value) for node, v in values.items() if (value := v.get(item))}
        if seen:
            common[item] = str(majority(seen, prefer=g.config.node))
    for facts in up:
        node = facts.node.name
        problems = []
        for item, value in values[node].items():
            problems += _folder_problems(facts, item, value, common.get(item))
        shown = ", ".join(f"{item.rsplit('/', 1)[-1]} {v}" for item, v in values[node].items())
        yield _line(
            "shared folders",
            node,
            problems,
            f"{shown}: UNC paths, the same on every node",
            "point every node at the same \\\\server\\share\\folder (the OnPremise Manager); "
            "Windows services cannot see a mapped drive, and another node cannot see a local one",
        )
    accounts = _services_accounts(up)
    for probe in g.shares.values():
        if probe.error is not None:
            yield FleetLine(
                "shared folders",
                FLEET,
                "FAIL",
                f"{probe.folder} {probe.error}",
                f"give the services' account modify rights on {probe.folder} (share and folder)",
            )
            continue
        free = f"{probe.free_bytes / 1e9:,.1f} GB free" if probe.free_bytes is not None else ""
        yield FleetLine(
            "shared folders",
            FLEET,
            "PASS",
            f"{probe.folder}: a probe file created, read back and deleted as {probe.account}; "
            f"{free}; {_whose_rights(probe.account, accounts)}",
        )


def _folder_problems(
    facts: NodeFacts, item: str, value: str | None, common: str | None
) -> list[str]:
    node = facts.node.name
    if value is None:
        file, key = split_key_path(item)
        return [f"{file} has no {key} here"]
    problems = []
    kind = path_kind(value)
    if kind == "drive":
        letter = drive_letter(value) or ""
        local = facts.drives.get(letter)
        if local is False:
            problems.append(
                f"{item} is {value}, and {letter}: is no disk of {node} (it has no {letter}$ "
                "share): a mapped drive, which Windows services cannot see"
            )
        elif local:
            problems.append(
                f"{item} is {value}, a disk of {node}: the other nodes cannot see what is "
                "written there"
            )
        else:
            problems.append(
                f"{item} is {value}: a disk of {node}, which the other nodes cannot see, or a "
                "mapped drive, which Windows services cannot see ({letter}$ could not be asked)"
            )
    elif kind == "other":
        problems.append(f"{item} is {value}, not a UNC path (\\\\server\\share\\folder)")
    if common is not None and path_key(value) != common:
        problems.append(f"{item} is not the folder most nodes use")
    return problems


def _services_accounts(up: list[NodeFacts]) -> set[str]:
    return {
        account
        for facts in up
        if isinstance(facts.services, dict)
        for _running, account in facts.services.values()
    }


def _whose_rights(account: str, services: set[str]) -> str:
    if not services:
        return "the services' account could not be read, so whether it may write is not proven"
    if all(same_account(account, s) for s in services):
        return "the services' account: their rights are proven"
    theirs = ", ".join(sorted(services))
    how = (
        ", which reach it as each node's computer account"
        if any(machine_account(s) for s in services)
        else ""
    )
    return f"not the services' account ({theirs}{how}): their rights are not proven"


# -- 3. accounts ----------------------------------------------------------------------------


def _accounts(g: Gathered, up: list[NodeFacts]) -> Iterator[FleetLine]:
    services = {f.node.name: f.services for f in up if isinstance(f.services, dict)}
    accounts = {
        (node, service): account_key(account)
        for node, found in services.items()
        for service, (_running, account) in found.items()
    }
    pools = {f.node.name: f.pools for f in up if isinstance(f.pools, dict)}
    identities = {
        (node, pool): account_key(identity)
        for node, found in pools.items()
        for pool, identity in found.items()
    }
    wanted_pools = g.check.app_pools or tuple(sorted({pool for _n, pool in identities}))
    step = (
        "run Integrify's services and IIS pools as the same account on every node (the "
        "account with rights on the shared folders)"
    )
    for facts in up:
        node = facts.node.name
        problems: list[str] = []
        unknown: list[str] = []
        seen: list[str] = []
        if isinstance(facts.services, str):
            unknown.append(f"its service manager could not be asked ({facts.services})")
        else:
            for service, (_running, account) in facts.services.items():
                seen.append(f"{service} runs as {account}")
                if not _as_most(accounts, node, service, g.config.node):
                    problems.append(f"{service} runs as {account} here, not as on the others")
        if isinstance(facts.pools, str):
            unknown.append(f"IIS's applicationHost.config: {facts.pools}")
        else:
            for pool in wanted_pools:
                identity = facts.pools.get(pool)
                if identity is None:
                    problems.append(f"IIS has no application pool {pool} here")
                    continue
                seen.append(f"pool {pool} runs as {identity}")
                if not _as_most(identities, node, pool, g.config.node):
                    problems.append(f"pool {pool} runs as {identity} here, not as on the others")
        if problems or not unknown:
            yield _line(
                "accounts", node, problems + unknown, "; ".join(seen) + ": as on every node", step
            )
        else:
            yield FleetLine("accounts", node, "CANNOT CHECK", "; ".join(unknown + seen), step)


def _as_most(
    found: dict[tuple[str, str], tuple[str, str]], node: str, what: str, here: str
) -> bool:
    """Whether ``node``'s account for ``what`` is the one most nodes use."""
    each = {n: account for (n, w), account in found.items() if w == what}
    return each[node] == majority(each, prefer=here)


# -- 2. the services on one node, the name pointing at it ------------------------------------


def _where_services_run(g: Gathered) -> ServicesNodes | None:
    if g.config.failover is None:
        return None
    answers = []
    for facts in g.nodes:
        name = facts.node.name
        if facts.error is not None or isinstance(facts.services, str):
            answers.append(NodeAnswer(name, error=facts.error or str(facts.services)))
        else:
            running = tuple(s for s, (on, _a) in facts.services.items() if on)
            answers.append(NodeAnswer(name, running=running))
    return ServicesNodes(g.config.failover.services, tuple(answers), at=g.at)


def _services(found: ServicesNodes | None) -> Iterator[FleetLine]:
    if found is None:
        yield FleetLine(
            "services",
            FLEET,
            "CANNOT CHECK",
            "no [failover] table names Integrify's services",
            "add [failover] with services = [...] (docs/failover.md)",
        )
        return
    verdict: Verdict = "PASS" if found.verdict == "one" else "FAIL"
    if found.verdict == "unknown":
        verdict = "CANNOT CHECK"
    step = found.next_step() if found.wrong else ""
    yield FleetLine("services", FLEET, verdict, found.summary(), step)


def _services_name(
    g: Gathered, up: list[NodeFacts], found: ServicesNodes | None
) -> Iterator[FleetLine]:
    failover = g.config.failover
    name = failover.services_name if failover is not None else None
    if name is None:
        yield FleetLine("services name", FLEET, "CANNOT CHECK", "no services_name in [failover]")
        return
    points = {f.node.name: _where_name_points(g, f, name) for f in up}
    owner = _the_services_node(g, found)
    if owner is None:  # no one node to point at: the nodes may still disagree among themselves
        seen = {n: p[1] for n, p in points.items() if p is not None}
        most = majority(seen, prefer=g.config.node) if seen else None
        for node, answer in points.items():
            if answer is None:
                continue
            said = f"{answer[0]} points {name} at {answer[1]} ({_node_at(g, answer[1])})"
            if answer[1] != most:
                step = "point the name at one node everywhere (jobsync failover does)"
                yield FleetLine("services name", node, "FAIL", f"{said}, unlike most nodes", step)
            else:
                why = f"{said}; which node it should be cannot be told: no one node runs them"
                yield FleetLine("services name", node, "CANNOT CHECK", why)
        return
    address = owner[1]
    for node, answer in points.items():
        if answer is None:
            yield FleetLine("services name", node, "CANNOT CHECK", f"{g.name_addresses}")
            continue
        where, at = answer
        wrong = f"{where} points {name} at {at} ({_node_at(g, at)}), not at {owner[0]} ({address})"
        yield _line(
            "services name",
            node,
            [] if at == address else [wrong + ", where the services run"],
            f"{where} points {name} at {address}, {owner[0]}, where the services run",
            f"run jobsync failover on {owner[0]} (it points the name at it on every node), or "
            f"correct {node}'s hosts file or the DNS record",
        )


def _where_name_points(g: Gathered, facts: NodeFacts, name: str) -> tuple[str, str] | None:
    """(by what, the address) a node sends the services name to; ``None``: cannot be told."""
    hosts = addresses_for(facts.hosts, name) if isinstance(facts.hosts, bytes) else ()
    if hosts:
        return "its hosts file", hosts[0]
    if isinstance(g.name_addresses, str):
        return None
    return f"DNS (no hosts entry; asked from {g.config.node})", (
        ",".join(g.name_addresses) or "nothing"
    )


def _the_services_node(g: Gathered, found: ServicesNodes | None) -> tuple[str, str] | None:
    """The one node running the services and its address, if there is one."""
    if found is None or found.verdict != "one":
        return None
    node = next(f.node for f in g.nodes if f.node.name == found.running_on[0])
    address = _address(node)
    return None if address is None else (node.name, address)


def _node_at(g: Gathered, address: str) -> str:
    return next((f.node.name for f in g.nodes if _address(f.node) == address), "no node")


def _address(node: FleetNode) -> str | None:
    try:
        return node.address()
    except ConfigError:
        return None


# -- 2. the jobs -----------------------------------------------------------------------------


def _jobs(g: Gathered, found: ServicesNodes | None) -> Iterator[FleetLine]:
    here = g.config.node
    if isinstance(g.jobs, str):
        yield FleetLine("jobs", FLEET, "CANNOT CHECK", f"reconcile could not run: {g.jobs}")
    else:
        down = {name_key(f.node.name) for f in g.nodes if f.error is not None}
        for peer in g.jobs.peers:
            if name_key(peer.peer) in down:
                continue  # its node line says so
            if not peer.reachable:
                yield FleetLine(
                    "jobs", peer.peer, "FAIL", f"its jobs folder cannot be read: {peer.error}",
                    f"let jobsync reach {peer.peer}'s jobs share (jobsync check)",
                )  # fmt: skip
                continue
            files = [d.file for d in peer.drift]
            yield _line(
                "jobs",
                peer.peer,
                [f"{_count(len(files), 'job')} not as on {here}: {_some(files)}"] if files else [],
                f"in step with {here} ({_count(g.jobs.source_files, 'job')})",
                "jobsync reconcile on the services node says why; with --apply it repairs",
            )
    if isinstance(g.ownership, str):
        yield FleetLine("jobs", FLEET, "CANNOT CHECK", f"who owns the jobs: {g.ownership}")
        return
    owner = g.ownership.winner
    owns = f"{owner.node} owns the jobs (epoch {owner.epoch})"
    if found is None or found.verdict != "one":
        yield FleetLine("jobs", FLEET, "CANNOT CHECK", f"{owns}; no one node runs the services")
        return
    runs = found.running_on[0]
    right = owner.epoch > 0 and name_key(owner.node) == name_key(runs)
    yield _line(
        "jobs",
        FLEET,
        [] if right else [f"{owns}, but the services run on {runs}: its jobs are not copied"],
        f"{owns} and runs the services",
        f"run jobsync failover (or jobsync takeover) on {runs}",
    )


def _jobsync(g: Gathered, up: list[NodeFacts]) -> Iterator[FleetLine]:
    """Every node runs this jobsync, its agent's service is not stopped, its task would push."""
    task = repr(g.config.schedule.task_name)
    have_task = tuple(f.node.name for f in up if isinstance(f.task, TaskDefinition))
    lacking = sum(1 for f in up if f.task is None)
    for facts in up:
        node = facts.node.name
        if isinstance(facts.identity, str):
            why = f"its node.json: {facts.identity}"
            yield FleetLine("jobsync", node, "CANNOT CHECK", why, _INSTALL)
            continue
        problems, steps = _install_problems(facts)
        # A node needs the agent's service or the task; one most nodes have, it should have.
        lacks = facts.agent is None or len(have_task) > lacking
        found, more = _task_problems(facts, task, others=have_task if lacks else None)
        if problems or found:
            yield FleetLine(
                "jobsync", node, "FAIL", "; ".join(problems + found), "; ".join(steps + more)
            )
        elif isinstance(facts.task, str) and facts.agent is None:
            yield FleetLine(
                "jobsync", node, "CANNOT CHECK",
                f"jobsync {__version__}; no jobsync service here, and its scheduled task "
                f"could not be read ({facts.task})",
                f"on {node}: jobsync service check, or Get-ScheduledTask {task}",
            )  # fmt: skip
        else:
            yield FleetLine("jobsync", node, "PASS", _installed(facts, task))


def _install_problems(facts: NodeFacts) -> tuple[list[str], list[str]]:
    """The version jobsync last ran as here, and its agent's service: problems and steps."""
    problems = []
    if facts.identity is None:
        problems.append("jobsync never ran here (no node.json in its jobs folder)")
    elif not isinstance(facts.identity, str) and facts.identity.version != __version__:
        runs = facts.identity.version or "older than 0.4"
        problems.append(f"it runs jobsync {runs}, this node {__version__}")
    if facts.agent == "stopped":
        problems.append("the jobsync agent's service is stopped")
    return problems, [_INSTALL] if problems else []


def _task_problems(
    facts: NodeFacts, task: str, *, others: tuple[str, ...] | None
) -> tuple[list[str], list[str]]:
    """The fallback task: disabled, running something else, or missing (``others`` have it)."""
    node, found = facts.node.name, facts.task
    if isinstance(found, TaskDefinition):
        problems, steps = [], []
        if not found.enabled:
            problems.append(f"its scheduled task {task} is disabled")
            steps.append(f"Enable-ScheduledTask -TaskName {task} on {node}")
        if not found.pushes:
            problems.append(f"its scheduled task {task} does not run jobsync push")
            steps.append(f"jobsync schedule install on {node}, which writes the task anew")
        return problems, steps
    if found is not None or others is None:
        return [], []
    lacks = f"which {joined(others)} have" if others else "nor jobsync's service"
    problem = f"no scheduled task {task} here, {lacks}"
    return [problem], [f"jobsync schedule install on {node} (install.ps1 -Task)"]


_INSTALL = "install or upgrade jobsync there (install.ps1), and start its service"


def _installed(facts: NodeFacts, task: str) -> str:
    """A node's jobsync that passes, in words: the version, the agent, the task."""
    agent = f"its agent's service is {facts.agent}" if facts.agent else "no agent service"
    if isinstance(facts.task, TaskDefinition):
        fallback = f"its task {task} {facts.task.summary()}"
    elif facts.task is None:
        fallback = "no scheduled task"
    else:
        fallback = f"its task {task} could not be read ({facts.task})"
    return f"jobsync {__version__}; {agent}; {fallback} (each acts as [active] decides)"


# -- 4. healthcheck, 5. the balancer ---------------------------------------------------------

HEALTHY = 200


def _health(g: Gathered, up: list[NodeFacts]) -> Iterator[FleetLine]:
    if g.config.failover is None:
        why = "no [failover] table gives the healthcheck URL"
        yield FleetLine("healthcheck", FLEET, "CANNOT CHECK", why)
        return
    for facts in up:
        answer = facts.health
        if answer is not None:
            yield _line(
                "healthcheck",
                facts.node.name,
                [] if answer.healthy else [answer.describe()],
                answer.describe(),
                f"look at Integrify on {facts.node.name} (IIS, the application's logs); the "
                "balancer sends no one there meanwhile",
            )


def _balancer(g: Gathered) -> Iterator[FleetLine]:
    answer = g.public
    if answer is None:
        yield FleetLine(
            "balancer", BALANCER, "CANNOT CHECK", "no public_url in [fleet_check]",
            'add public_url = "https://..." (the site as its users reach it)',
        )  # fmt: skip
    else:
        said = answer.error or f"answered {answer.status}"
        yield _line(
            "balancer",
            BALANCER,
            [] if answer.status == HEALTHY else [f"{answer.url}: {said}"],
            f"{answer.url} answered 200 through the balancer",
            "check the balancer's pool and its /healthcheck monitor",
        )
        yield _certificate(g.check, answer, now=g.at)
        yield _sticky(g.check, answer)
    yield FleetLine(
        "forwarded proto",
        BALANCER,
        "CANNOT CHECK",
        "whether the balancer sends X-Forwarded-Proto: https cannot be seen from outside it",
        "in the balancer's HTTPS virtual server, set the header X-Forwarded-Proto: https on "
        "the requests it passes to the nodes",
    )


def _certificate(check: FleetCheckConfig, answer: PublicAnswer, *, now: float) -> FleetLine:
    if not answer.url.startswith("https://"):
        return FleetLine(
            "certificate", BALANCER, "FAIL", f"{answer.url} is plain HTTP",
            "offload SSL at the balancer, and give the site an https:// public_url",
        )  # fmt: skip
    if answer.certificate_expires is None:
        return FleetLine(
            "certificate", BALANCER, "FAIL", answer.error or "no certificate was seen",
            "give the balancer a certificate its clients trust",
        )  # fmt: skip
    days = (answer.certificate_expires - now) / _DAY
    until = time.strftime("%Y-%m-%d", time.gmtime(answer.certificate_expires))
    soon = days < check.certificate_days
    return _line(
        "certificate",
        BALANCER,
        [f"the certificate expires on {until}, in {days:.0f} days"] if soon else [],
        f"trusted, valid until {until} ({days:.0f} days)",
        "renew the balancer's certificate",
    )


def _sticky(check: FleetCheckConfig, answer: PublicAnswer) -> FleetLine:
    names = answer.cookies
    wanted = (check.affinity_cookie.casefold(),) if check.affinity_cookie else AFFINITY_COOKIES
    sticky = [n for n in names if n.casefold().startswith(wanted)]
    seen = ", ".join(names) if names else "none"
    return _line(
        "sticky sessions",
        BALANCER,
        [] if sticky else [f"the answer sets no affinity cookie (cookies set: {seen})"],
        f"the balancer sets {', '.join(sticky)}, an affinity cookie",
        "turn on cookie persistence (sticky sessions) at the balancer, or name its cookie in "
        "[fleet_check] affinity_cookie; persistence by client address cannot be seen from here",
    )
