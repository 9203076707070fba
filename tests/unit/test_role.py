"""The [active] modes: what validate() refuses at start-up, what probe() answers during a run."""

from __future__ import annotations

import sys

import pytest

from jobsync.config.model import ActiveConfig
from jobsync.errors import ConfigError, ExitCode
from jobsync.role import (
    PLATFORM_SERVICES,
    InstalledService,
    RoleDetector,
    dns_problem,
)

HOST = "integrify-services.example.com"
ANY = "0.0.0.0"  # noqa: S104 - an answer a resolver gives, never bound to
INSTALLED = [
    InstalledService("IntegrifyScheduler", "Integrify Scheduler"),
    InstalledService("IntegrifyAPI", "Integrify API Service"),
    InstalledService("W3SVC", "World Wide Web Publishing Service"),
    InstalledService("Spooler", "Print Spooler"),
]


def _dns(
    resolved: set[str] | Exception, *, here: set[str] | Exception = frozenset()
) -> RoleDetector:
    """A dns-mode detector whose resolver and address list answer (or fail) as given."""

    def resolver(_host: str) -> set[str]:
        if isinstance(resolved, Exception):
            raise resolved
        return resolved

    def addresses() -> set[str]:
        if isinstance(here, Exception):
            raise here
        return set(here)

    return RoleDetector(
        ActiveConfig(mode="dns", services_host=HOST), resolver=resolver, addresses=addresses
    )


def _services(names: tuple[str, ...], installed: list[InstalledService] | None) -> RoleDetector:
    """A services-mode detector that lists ``installed`` (None: not Windows)."""
    return RoleDetector(
        ActiveConfig(mode="services", services=names),
        installed=None if installed is None else (lambda: installed),
    )


FLEET = {"node1": {"10.0.0.11", "127.0.0.1"}, "node2": {"10.0.0.12"}, "node3": {"10.0.0.13"}}
NLB = {name: {*addresses, "10.0.0.50"} for name, addresses in FLEET.items()}


@pytest.mark.parametrize(
    ("targets", "holders", "expected"),
    [
        pytest.param({"10.0.0.12"}, FLEET, None, id="one node carries it"),
        pytest.param({"10.0.0.12", "10.0.0.77"}, FLEET, None, id="one node carries one of them"),
        pytest.param({"fe80::1"}, {"a": {"fe80::1"}, "b": {"fe80::2"}}, None, id="ipv6"),
        pytest.param(
            {"FE80:0:0::1"}, {"a": {"fe80::1%eth0"}, "b": {"fe80::2"}}, None, id="ipv6 spellings"
        ),
        pytest.param({"10.0.0.99"}, {"node1": {"10.0.0.11"}}, None, id="one node known"),
        pytest.param({"10.0.0.99"}, {}, None, id="no node known"),
        pytest.param(set(), FLEET, None, id="no target"),
        pytest.param(
            {"10.0.0.50"},
            NLB,
            f"{HOST} resolves to 10.0.0.50, which every node carries (an NLB cluster address?): "
            'mode = "dns" cannot tell the services node; use mode = "services"',
            id="NLB cluster address",
        ),
        pytest.param(
            {"10.0.0.50"},
            {"node1": {"10.0.0.50"}, "node2": {"10.0.0.50"}},
            "which every node carries",
            id="two nodes both carry it",
        ),
        pytest.param(
            {"10.0.0.99"},
            FLEET,
            f"{HOST} resolves to 10.0.0.99, which no node carries (a load balancer's address?): "
            'mode = "dns" cannot tell the services node',
            id="load balancer address",
        ),
        pytest.param(
            {"10.0.0.11", "10.0.0.12"},
            FLEET,
            "which 2 nodes carry (node1, node2)",
            id="round robin over two of three",
        ),
        pytest.param(
            {"10.0.0.11", "10.0.0.12", "10.0.0.13"},
            FLEET,
            "which every node carries",
            id="round robin over all",
        ),
        pytest.param(
            {"127.0.0.1"}, FLEET, "a loopback or unspecified address", id="loopback, fleet known"
        ),
        pytest.param({"::1"}, {}, "a loopback or unspecified address", id="loopback, none known"),
        pytest.param({ANY}, FLEET, "a loopback or unspecified address", id="unspecified"),
    ],
)
def test_dns_problem_says_when_the_name_cannot_pick_one_node(
    targets: set[str], holders: dict[str, set[str]], expected: str | None
) -> None:
    """Exactly one known node must carry the services address; anything else is one line why.

    Every node (an NLB cluster address), no node (a load balancer's), several nodes, or a
    loopback address are problems; fewer than two nodes known is nothing to judge.
    """
    problem = dns_problem(targets, holders=holders, host=HOST)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None
        assert expected in problem
        assert "\n" not in problem


def test_dns_problem_names_the_key_when_not_told_the_host() -> None:
    """Without ``host`` the message names the setting, so it still reads as a sentence."""
    problem = dns_problem({"10.0.0.50"}, holders=NLB)
    assert problem is not None
    assert problem.startswith("services_host resolves to 10.0.0.50, which every node carries")


@pytest.mark.parametrize(
    ("resolved", "expected"),
    [
        pytest.param({"10.0.0.5"}, None, id="a node's own address"),
        pytest.param({"10.0.0.99"}, None, id="another machine: the fleet decides, not validate"),
        pytest.param({"2001:db8::5"}, None, id="ipv6"),
        pytest.param({"127.0.0.1"}, "resolves to 127.0.0.1, a loopback", id="loopback"),
        pytest.param({"127.0.1.1"}, "resolves to 127.0.1.1, a loopback", id="debian hosts entry"),
        pytest.param({"::1"}, "resolves to ::1, a loopback", id="ipv6 loopback"),
        pytest.param({ANY}, "resolves to 0.0.0.0, a loopback or unspecified", id="any"),
        pytest.param({"::"}, "a loopback or unspecified", id="ipv6 unspecified"),
        pytest.param({"::ffff:127.0.0.1"}, "a loopback", id="ipv4-mapped loopback"),
        pytest.param({"10.0.0.5", "127.0.0.1"}, "a loopback", id="loopback among others"),
        pytest.param(
            OSError("Name or service not known"),
            f"[active] services_host: {HOST} does not resolve: Name or service not known",
            id="does not resolve",
        ),
        pytest.param(UnicodeError("label too long"), "does not resolve", id="bad name"),
        pytest.param(set(), "resolves to no address", id="no address"),
    ],
)
def test_validate_refuses_a_services_host_every_node_holds_or_none_resolves(
    resolved: set[str] | Exception, expected: str | None
) -> None:
    """``dns`` needs a name that resolves, and not to loopback or 0.0.0.0, which every node holds.

    The refusal is a ConfigError (exit 2) in one line naming the table and the key.
    """
    detector = _dns(resolved, here={"10.0.0.5", "127.0.0.1"})
    if expected is None:
        detector.validate()
        return
    with pytest.raises(ConfigError) as caught:
        detector.validate()
    message = str(caught.value)
    assert expected in message
    assert message.startswith("[active] services_host: ")
    assert "\n" not in message
    assert caught.value.exit_code == ExitCode.USAGE == 2


@pytest.mark.parametrize(
    ("names", "installed", "expected"),
    [
        pytest.param(("IntegrifyScheduler",), INSTALLED, None, id="short name"),
        pytest.param(("integrifyscheduler",), INSTALLED, None, id="short name in another case"),
        pytest.param(("IntegrifyScheduler", "IntegrifyAPI"), INSTALLED, None, id="two names"),
        pytest.param(
            ("Integrify Scheduler",),
            INSTALLED,
            '[active] services: "Integrify Scheduler" is a display name; '
            "use the service name IntegrifyScheduler",
            id="display name",
        ),
        pytest.param(
            ("IntegrifyScheduler", "integrify api service"),
            INSTALLED,
            '"integrify api service" is a display name; use the service name IntegrifyAPI',
            id="second name a display name, in another case",
        ),
        pytest.param(
            ("IntegrifyWorker",),
            INSTALLED,
            '[active] services: no service named "IntegrifyWorker" here; installed services '
            'that mention Integrify: IntegrifyAPI ("Integrify API Service"), '
            'IntegrifyScheduler ("Integrify Scheduler")',
            id="missing: lists the Integrify ones",
        ),
        pytest.param(
            ("IntegrifyScheduler",),
            [InstalledService("Spooler", "Print Spooler")],
            'no service named "IntegrifyScheduler" here; no installed service mentions Integrify',
            id="missing: none found",
        ),
        pytest.param(
            ("Scheduler",),
            [InstalledService("Sched2", "The INTEGRIFY jobs"), *INSTALLED[2:]],
            'Sched2 ("The INTEGRIFY jobs")',
            id="found by display name, case-insensitively",
        ),
        pytest.param(
            ("IntegrifyScheduler",),
            None,
            '[active] mode = "services" needs Windows',
            id="not Windows",
        ),
    ],
)
def test_validate_refuses_a_service_name_that_is_not_an_installed_short_name(
    names: tuple[str, ...], installed: list[InstalledService] | None, expected: str | None
) -> None:
    """``services`` takes short names: a display name or a missing service is refused in one line.

    A missing one lists the installed services whose short or display name mentions Integrify,
    so the fix is in the message; off Windows the mode is refused outright.
    """
    detector = _services(names, installed)
    if expected is None:
        detector.validate()
        return
    with pytest.raises(ConfigError) as caught:
        detector.validate()
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2


def test_validate_accepts_always_without_asking_anything() -> None:
    """``always`` needs no name and no service: validate() asks no probe."""

    def fail(*_args: object) -> set[str]:
        raise AssertionError("asked")

    RoleDetector(ActiveConfig(), resolver=fail, addresses=fail, installed=fail).validate()


def test_the_service_list_is_windows_only() -> None:
    """The default lister is psutil's on Windows; elsewhere there is none, so validate refuses."""
    assert (PLATFORM_SERVICES is None) == (sys.platform != "win32")


@pytest.mark.skipif(sys.platform == "win32", reason="the refusal of a system without services")
def test_off_windows_validate_refuses_services_mode_but_a_running_probe_is_standby() -> None:
    """Start-up refuses ``services`` off Windows; a probe during a run still only says standby."""
    detector = RoleDetector(ActiveConfig(mode="services", services=("IntegrifyScheduler",)))
    with pytest.raises(ConfigError, match="needs Windows"):
        detector.validate()
    probe = detector.probe()
    assert probe.active is False
    assert "treating this node as standby" in probe.reason


@pytest.mark.parametrize(
    ("detector", "reason"),
    [
        pytest.param(_dns({"10.0.0.5"}, here={"10.0.0.5"}), None, id="dns: here"),
        pytest.param(
            _dns(OSError("timed out")), "does not resolve: timed out", id="dns: no answer"
        ),
        pytest.param(_dns(UnicodeError("label empty")), "does not resolve", id="dns: bad name"),
        pytest.param(
            _dns({"10.0.0.5"}, here=OSError("interfaces")), "does not resolve", id="no interfaces"
        ),
        pytest.param(
            _dns({"127.0.0.1"}, here={"127.0.0.1", "10.0.0.5"}),
            f"{HOST} resolves to 127.0.0.1, which every node holds",
            id="dns: loopback is never here",
        ),
        pytest.param(
            RoleDetector(
                ActiveConfig(mode="services", services=("IntegrifyScheduler",)),
                services=lambda _n: (False, "service IntegrifyScheduler: no such service"),
            ),
            "no such service",
            id="services: removed since start-up",
        ),
    ],
)
def test_probe_never_raises_during_a_run(detector: RoleDetector, reason: str | None) -> None:
    """What went wrong since start-up is standby with the reason; validate() alone refuses."""
    probe = detector.probe()
    assert probe.active is (reason is None)
    if reason is not None:
        assert reason in probe.reason
