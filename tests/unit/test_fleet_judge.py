"""The fleet check's judging, on facts built by hand: the cases a loopback site cannot stage.

(The site itself, with every server real, is tests/integration/test_fleet_check.py.)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from jobsync import __version__
from jobsync.config.model import (
    Config,
    FailoverConfig,
    FleetCheckConfig,
    PeerConfig,
    UncPath,
)
from jobsync.failover.nodes import Probe, fleet_nodes
from jobsync.fleet_check import judge
from jobsync.fleet_facts import Gathered, NodeFacts, PublicAnswer, task_file
from jobsync.integrify_files import TaskDefinition, parse_file
from jobsync.node import Identity
from jobsync.result import FleetLine

NOW = 1_800_000_000.0
TASK = TaskDefinition(enabled=True, pushes=True, account="SYSTEM", every_minutes=5.0)
DAY = 86_400.0
SETTINGS = r"app\settings\settings.config"


def config(**check: object) -> Config:
    """Three nodes, n1 running the check; a [failover] and a [fleet_check]."""
    peers = tuple(
        PeerConfig(
            name=f"n{i}",
            path=f"\\\\node{i}\\jobs\\integrify",
            target=UncPath(f"node{i}", "jobs", "integrify"),
            address=f"10.0.0.{i}",
        )
        for i in (1, 2, 3)
    )
    return Config(
        path=Path("jobsync.toml"),
        node="n1",
        source=Path("jobs"),
        peers=peers,
        failover=FailoverConfig(
            services=("IntegrifyScheduler",), repoint="hosts", services_name="svc.example.com"
        ),
        fleet_check=FleetCheckConfig(install="C:\\integrify", files=(SETTINGS,), **check),  # type: ignore[arg-type]
    )


def settings(smtp: str = "smtp", password: str = "Hunter2") -> bytes:  # noqa: S107 - a test value
    """A settings.config with one secret."""
    return (
        f'<configuration><appSettings><add key="SmtpServer" value="{smtp}" /></appSettings>'
        f'<connectionStrings><add name="Db" connectionString="Password={password}" />'
        "</connectionStrings></configuration>"
    ).encode()


def facts(cfg: Config, **overrides: dict[str, object]) -> tuple[NodeFacts, ...]:
    """Every node healthy and alike, n1 running the service; ``overrides`` by node name."""
    made = []
    for node in fleet_nodes(cfg):
        one = NodeFacts(
            node,
            files={SETTINGS: parse_file("settings.config", settings())},
            pools={"Integrify": "CORP\\svc"},
            hosts=b"10.0.0.1 svc.example.com\r\n",
            services={"IntegrifyScheduler": (node.name == "n1", "CORP\\svc")},
            agent="running",
            health=Probe(f"http://{node.smb.address}/healthcheck", status=200),
            identity=Identity(node.name, node.host, "0" * 32, version=__version__),
            task=TASK,
        )
        for key, value in overrides.get(node.name, {}).items():
            setattr(one, key, value)
        made.append(one)
    return tuple(made)


def gathered(cfg: Config, nodes: tuple[NodeFacts, ...], **fields: object) -> Gathered:
    """The facts with the rest left unknown (jobs and owner are judged elsewhere)."""
    base = Gathered(
        config=cfg,
        check=cfg.fleet_check,  # type: ignore[arg-type]
        nodes=nodes,
        jobs="not read here",
        ownership="not read here",
        public=None,
        name_addresses=("10.0.0.1",),
        at=NOW,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def only(lines: tuple[FleetLine, ...], item: str, node: str) -> FleetLine:
    """The one line of ``item`` on ``node``."""
    (found,) = [line for line in lines if line.item == item and line.node == node]
    return found


def test_a_secret_that_differs_is_named_by_key_path_only() -> None:
    """The connection string differs on n2: the report names where, never the value."""
    cfg = config()
    other = parse_file("settings.config", settings("smtp", "X-9"))
    nodes = facts(cfg, n2={"files": {SETTINGS: other}})
    lines = judge(gathered(cfg, nodes))
    line = only(lines, "configuration", "n2")
    assert line.verdict == "FAIL"
    assert "connectionStrings/Db/@connectionString (values not shown)" in line.evidence
    text = repr(lines)
    assert "X-9" not in text
    assert "Hunter2" not in text


def test_a_name_without_hosts_entry_is_judged_by_dns() -> None:
    """No hosts entry on n3: the DNS answer counts, and says it was asked from n1."""
    cfg = config()
    nodes = facts(cfg, n3={"hosts": b"127.0.0.1 localhost\r\n"})
    fine = only(judge(gathered(cfg, nodes)), "services name", "n3")
    assert fine.verdict == "PASS"
    assert "DNS (no hosts entry; asked from n1)" in fine.evidence
    wrong = only(judge(gathered(cfg, nodes, name_addresses=("10.0.0.2",))), "services name", "n3")
    assert wrong.verdict == "FAIL"
    assert "at 10.0.0.2 (n2), not at n1 (10.0.0.1)" in wrong.evidence


def test_another_version_or_a_stopped_agent_fails_jobsync() -> None:
    """n2 runs an older jobsync; n3's agent service is stopped."""
    cfg = config()
    old = Identity("n2", "node2", "1" * 32, version="0.2.1")
    nodes = facts(cfg, n2={"identity": old}, n3={"agent": "stopped"})
    lines = judge(gathered(cfg, nodes))
    assert only(lines, "jobsync", "n1").verdict == "PASS"
    assert f"runs jobsync 0.2.1, this node {__version__}" in only(lines, "jobsync", "n2").evidence
    assert "agent's service is stopped" in only(lines, "jobsync", "n3").evidence


def test_the_fallback_task_disabled_running_something_else_or_missing() -> None:
    """n2's task is off, n3's runs another command; then n3 has none while the others do."""
    cfg = config()
    off = replace(TASK, enabled=False)
    other = replace(TASK, pushes=False)
    lines = judge(gathered(cfg, facts(cfg, n2={"task": off}, n3={"task": other})))
    assert only(lines, "jobsync", "n1").evidence == (
        f"jobsync {__version__}; its agent's service is running; its task 'jobsync push' runs "
        "jobsync push every 5 minutes as SYSTEM (each acts as [active] decides)"
    )
    n2, n3 = only(lines, "jobsync", "n2"), only(lines, "jobsync", "n3")
    assert (n2.verdict, n2.evidence) == ("FAIL", "its scheduled task 'jobsync push' is disabled")
    assert n2.next_step == "Enable-ScheduledTask -TaskName 'jobsync push' on n2"
    assert n3.evidence == "its scheduled task 'jobsync push' does not run jobsync push"
    missing = only(judge(gathered(cfg, facts(cfg, n3={"task": None}))), "jobsync", "n3")
    assert (missing.verdict, missing.evidence) == (
        "FAIL",
        "no scheduled task 'jobsync push' here, which n1 and n2 have",
    )
    assert missing.next_step == "jobsync schedule install on n3 (install.ps1 -Task)"


def test_the_agent_alone_is_enough_but_a_node_needs_one_of_the_two() -> None:
    """No node has the task: the agents suffice; n2 has neither agent nor task: it fails."""
    cfg = config()
    no_tasks = {name: {"task": None} for name in ("n1", "n3")}
    lines = judge(gathered(cfg, facts(cfg, n2={"task": None, "agent": None}, **no_tasks)))
    assert only(lines, "jobsync", "n1").verdict == "PASS"
    assert "; no scheduled task (" in only(lines, "jobsync", "n1").evidence
    assert only(lines, "jobsync", "n2").evidence == (
        "no scheduled task 'jobsync push' here, nor jobsync's service"
    )


def test_a_task_that_cannot_be_read_without_an_agent_cannot_be_checked() -> None:
    """Access denied on the Tasks folder and no agent service: CANNOT CHECK, with the step."""
    cfg = config()
    nodes = facts(cfg, n2={"task": "access denied", "agent": None})
    line = only(judge(gathered(cfg, nodes)), "jobsync", "n2")
    assert line.verdict == "CANNOT CHECK"
    assert "its scheduled task could not be read (access denied)" in line.evidence
    assert line.next_step == "on n2: jobsync service check, or Get-ScheduledTask 'jobsync push'"


def test_a_task_in_a_folder_is_read_from_that_folder() -> None:
    r"""Task Scheduler keeps the task ``\jobsync\push`` as ``Tasks\jobsync\push``."""
    cfg = config()
    assert task_file(cfg) == "Windows/System32/Tasks/jobsync push"
    foldered = replace(cfg, schedule=replace(cfg.schedule, task_name="\\jobsync\\push"))
    assert task_file(foldered) == "Windows/System32/Tasks/jobsync/push"


def test_a_node_that_could_not_be_asked_leaves_the_services_unknown() -> None:
    """With n3 unreachable, "one node" cannot be claimed: CANNOT CHECK, not PASS."""
    cfg = config()
    nodes = facts(cfg)
    down = (*nodes[:2], NodeFacts(nodes[2].node, error="cannot open \\\\node3\\C$: refused"))
    lines = judge(gathered(cfg, down))
    assert only(lines, "node", "n3").verdict == "FAIL"
    assert only(lines, "services", "fleet").verdict == "CANNOT CHECK"
    assert [line.item for line in lines if line.node == "n3"] == ["node"]


def public(**fields: object) -> PublicAnswer:
    """A healthy answer through the balancer, with a sticky cookie and a 90-day certificate."""
    base = PublicAnswer(
        "https://integrify.example.com/healthcheck",
        status=200,
        certificate_expires=NOW + 90 * DAY,
        cookies=("ASP.NET_SessionId", "BIGipServer~pool"),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def test_the_balancer_certificate_cookie_and_the_header_it_cannot_see() -> None:
    """PASS for the answer, the certificate and the cookie; X-Forwarded-Proto is never a PASS."""
    cfg = config(public_url="https://integrify.example.com")
    lines = judge(gathered(cfg, facts(cfg), public=public()))
    assert only(lines, "balancer", "balancer").verdict == "PASS"
    assert only(lines, "certificate", "balancer").verdict == "PASS"
    assert only(lines, "sticky sessions", "balancer").verdict == "PASS"
    proto = only(lines, "forwarded proto", "balancer")
    assert proto.verdict == "CANNOT CHECK"
    assert "X-Forwarded-Proto: https" in proto.next_step


def test_a_certificate_near_expiry_or_plain_http_fails() -> None:
    """Ten days left against a 14-day bound; an http:// site has no SSL offload at all."""
    cfg = config(public_url="https://integrify.example.com")
    soon = judge(gathered(cfg, facts(cfg), public=public(certificate_expires=NOW + 10 * DAY)))
    assert "expires on" in only(soon, "certificate", "balancer").evidence
    plain = public(url="http://integrify.example.com/healthcheck", certificate_expires=None)
    lines = judge(gathered(cfg, facts(cfg), public=plain))
    assert only(lines, "certificate", "balancer").evidence.endswith("is plain HTTP")


def test_a_named_affinity_cookie_is_the_one_looked_for() -> None:
    """With ``affinity_cookie`` set, only that cookie counts (here: absent)."""
    cfg = config(public_url="https://integrify.example.com", affinity_cookie="SERVERID")
    lines = judge(gathered(cfg, facts(cfg), public=public()))
    line = only(lines, "sticky sessions", "balancer")
    assert line.verdict == "FAIL"
    assert "ASP.NET_SessionId, BIGipServer~pool" in line.evidence


def test_without_a_public_url_the_balancer_is_cannot_check() -> None:
    """Nothing is asked of a balancer the config does not name."""
    cfg = config()
    lines = judge(gathered(cfg, facts(cfg)))
    assert only(lines, "balancer", "balancer").verdict == "CANNOT CHECK"
    assert not [line for line in lines if line.item in ("certificate", "sticky sessions")]


def test_with_the_services_on_two_nodes_a_hosts_file_unlike_the_others_still_fails() -> None:
    """No one node to point at, yet n3 pointing elsewhere than n1 and n2 is a fact."""
    cfg = config()
    both = {"IntegrifyScheduler": (True, "CORP\\svc")}
    nodes = facts(cfg, n2={"services": both}, n3={"hosts": b"10.0.0.2 svc.example.com\r\n"})
    lines = judge(gathered(cfg, nodes))
    assert only(lines, "services", "fleet").verdict == "FAIL"
    assert only(lines, "services name", "n1").verdict == "CANNOT CHECK"
    odd = only(lines, "services name", "n3")
    assert odd.verdict == "FAIL"
    assert "points svc.example.com at 10.0.0.2 (n2), unlike most nodes" in odd.evidence


def test_the_write_probe_as_the_services_account_proves_their_rights() -> None:
    """The probe's logon is the services' account, written the other way: said so."""
    from jobsync.fleet_facts import ShareProbe

    cfg = config(shared_folders=("settings.config:appSettings/SmtpServer",))
    probe = ShareProbe("\\\\nas\\files", "svc@corp.example.com", free_bytes=10**9)
    lines = judge(gathered(cfg, facts(cfg), shares={"x": probe}))
    (line,) = [x for x in lines if x.item == "shared folders" and x.node == "fleet"]
    assert line.verdict == "PASS"
    assert "as svc@corp.example.com; 1.0 GB free; the services' account" in line.evidence
