"""``jobsync failover`` with ``repoint = "dns"``: a signed (GSS-TSIG) update to a real AD DC.

The nodes are the failover bed's (tests/support/failover_bed.py); the services name lives in the
DC's secure zone, and the proof asks the DC where the name points before it asks the healthcheck
through the name at that address.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jobsync.failover.dns_update import DnsServer, lookup, repoint

from support.domain_controller import HOST, ZONE, DomainController
from support.failover_bed import SERVICES_NAME, Fleet, make_fleet, set_spooler, spooler, stop_fleet
from support.smbd import DEFAULT_PASSWORD, PASSWORD_ENV, SambaPeer

pytestmark = pytest.mark.smb

MakeFleet = Callable[[dict[str, str]], Fleet]


@pytest.fixture
def server(domain_controller: DomainController, monkeypatch: pytest.MonkeyPatch) -> DnsServer:
    """The DC's DNS server; this process holds the domain Administrator's ticket."""
    monkeypatch.setenv(PASSWORD_ENV, DEFAULT_PASSWORD)
    for key, value in domain_controller.env.items():
        monkeypatch.setenv(key, value)
    domain_controller.kinit()
    return DnsServer(HOST, port=domain_controller.dns_port, zone=ZONE)


@pytest.fixture
def dns_fleet(
    tmp_path: Path,
    smb_peer_factory: Callable[..., SambaPeer],
    server: DnsServer,
) -> Iterator[MakeFleet]:
    """``make(env)``: n1 and n2, n1 running the services and named by the record."""
    fleets: list[Fleet] = []
    table = f'[failover.dns]\nserver = "{HOST}"\nport = {server.port}\nzone = "{ZONE}"\n'

    def make(env: dict[str, str]) -> Fleet:
        fleet = make_fleet(tmp_path, smb_peer_factory, names=("n1", "n2"), dns=table, env=env)
        fleets.append(fleet)
        for node in fleet.values():
            set_spooler(node, running=node.name == "n1")
        repoint(server, SERVICES_NAME, fleet["n1"].address, ttl=300, timeout=5.0)
        return fleet

    yield make
    for fleet in fleets:
        stop_fleet(fleet)


def test_failover_repoints_the_services_name_with_a_signed_dns_update(
    dns_fleet: MakeFleet, server: DnsServer, domain_controller: DomainController
) -> None:
    """The record moves from n1 to n2, the DC says so, and the healthcheck answers through it."""
    fleet = dns_fleet(domain_controller.env)
    n1, n2 = fleet["n1"], fleet["n2"]
    done = n2.run("failover", "--json")
    document = json.loads(done.stdout)
    assert done.returncode == 0, json.dumps(document, indent=1)
    step = next(s for s in document["steps"] if s["step"] == "repoint")
    assert step["status"] == "done"
    assert step["summary"] == f"{SERVICES_NAME} -> {n2.address} on {HOST} (was {n1.address})"
    assert "clients may keep the old address up to 300 s (its TTL)" in step["details"]
    assert lookup(server, SERVICES_NAME, timeout=5.0).addresses == (n2.address,)
    assert spooler(n2) == "running"
    assert spooler(n1, of=n2) == "stopped"

    again = n2.run("failover", "--json")
    assert again.returncode == 0, again.stdout
    steps = {s["step"]: s["status"] for s in json.loads(again.stdout)["steps"]}
    assert steps["repoint"] == "already"


def test_failover_without_a_kerberos_ticket_stops_at_the_repoint_step(
    dns_fleet: MakeFleet, server: DnsServer, domain_controller: DomainController, tmp_path: Path
) -> None:
    """No ticket: exit 13, the words say so, and the services and jobs have moved."""
    no_ticket = {  # the failover's own process: no ticket, and no keytab to get one from
        "KRB5_CONFIG": domain_controller.env["KRB5_CONFIG"],
        "KRB5CCNAME": f"FILE:{tmp_path / 'no-such-cache'}",
        "KRB5_CLIENT_KTNAME": str(tmp_path / "no-such-keytab"),
    }
    fleet = dns_fleet(no_ticket)
    n1, n2 = fleet["n1"], fleet["n2"]
    done = n2.run("failover", "--json")
    document = json.loads(done.stdout)
    assert done.returncode == 13, json.dumps(document, indent=1)
    assert "no Kerberos ticket" in document["steps"][-1]["summary"]
    assert spooler(n2) == "running"
    assert lookup(server, SERVICES_NAME, timeout=5.0).addresses == (n1.address,)
