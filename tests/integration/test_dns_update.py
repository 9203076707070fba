"""Repointing the services name with signed dynamic updates, against a real AD domain's DNS.

The suite's Samba AD DC (tests/support/domain_controller.py) serves its zone, test.lan, with Samba's
internal DNS server, a secure zone as Active Directory's: only updates signed with GSS-TSIG by a
Kerberos identity are taken, and a record belongs to the account that created it. Samba's answer to
a signed update fails dnspython's signature check although the change is made, so every test reads
the outcome with a plain query of its own too.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.update
import pytest

from jobsync.failover import dns_update
from jobsync.failover.dns_update import (
    DnsAuthError,
    DnsRefusedError,
    DnsServer,
    lookup,
    repoint,
)

from support.domain_controller import DC_HOST_NAME, HOST, ZONE, DomainController

pytestmark = pytest.mark.smb

TIMEOUT = 5.0
ADDRESS_A = "192.0.2.10"
ADDRESS_B = "192.0.2.20"
_USER_PASSWORD = "Us3r!Passw0rd"  # noqa: S105 - a throwaway domain on loopback


@pytest.fixture
def server(domain_controller: DomainController) -> DnsServer:
    """The DC's DNS server; the Kerberos host comes from the zone's SOA, as in production."""
    return DnsServer(HOST, port=domain_controller.dns_port, zone=ZONE)


@pytest.fixture
def as_administrator(domain_controller: DomainController, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as the domain's Administrator: a fresh ticket in its ticket cache."""
    for key, value in domain_controller.env.items():
        monkeypatch.setenv(key, value)
    domain_controller.kinit()


@pytest.fixture
def name() -> str:
    """A services name of the test's own, with no record yet."""
    return f"services-{uuid.uuid4().hex[:8]}.{ZONE}"


def plain_query(server: DnsServer, name: str) -> list[str]:
    """The addresses the server gives for ``name``, asked without jobsync's code."""
    answer = dns.query.udp(
        dns.message.make_query(name, dns.rdatatype.A), server.host, port=server.port, timeout=5
    )
    return sorted(rdata.address for rrset in answer.answer for rdata in rrset)


def test_the_dc_refuses_an_unsigned_update(server: DnsServer, name: str) -> None:
    """The test bed is a secure zone: an update without a signature is REFUSED, nothing made."""
    update = dns.update.UpdateMessage(ZONE)
    update.replace(name, 300, dns.rdatatype.A, ADDRESS_A)

    answer = dns.query.tcp(update, server.host, port=server.port, timeout=TIMEOUT)

    assert answer.rcode() == dns.rcode.REFUSED
    assert plain_query(server, name) == []


@pytest.mark.usefixtures("as_administrator")
def test_repoint_creates_the_record_then_moves_it(server: DnsServer, name: str) -> None:
    """A -> B: each change is signed, reported as the server answers afterwards, with the TTL."""
    created = repoint(server, name, ADDRESS_A, ttl=120, timeout=TIMEOUT)
    moved = repoint(server, name, ADDRESS_B, ttl=60, timeout=TIMEOUT)

    assert created == dns_update.DnsChange(
        name=name, before=(), after=(ADDRESS_A,), old_ttl=None, changed=True
    )
    assert moved == dns_update.DnsChange(
        name=name, before=(ADDRESS_A,), after=(ADDRESS_B,), old_ttl=120, changed=True
    )
    assert plain_query(server, name) == [ADDRESS_B]
    assert lookup(server, name, timeout=TIMEOUT) == dns_update.Lookup(name, (ADDRESS_B,), 60)


@pytest.mark.usefixtures("as_administrator")
def test_repointing_to_the_address_it_holds_sends_nothing(
    server: DnsServer, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Idempotent: the name already holds exactly the address, so no update goes out."""
    repoint(server, name, ADDRESS_A, ttl=120, timeout=TIMEOUT)

    def no_update(*_args: object) -> bytes:
        pytest.fail("an update was sent")

    monkeypatch.setattr(dns_update, "_exchange", no_update)  # the one way updates go out
    again = repoint(server, name, ADDRESS_A, ttl=120, timeout=TIMEOUT)

    assert again == dns_update.DnsChange(
        name=name, before=(ADDRESS_A,), after=(ADDRESS_A,), old_ttl=120, changed=False
    )


@pytest.mark.usefixtures("as_administrator")
def test_a_dry_run_reads_the_record_and_sends_nothing(
    server: DnsServer, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dry run says what would change; the record stays as it was."""
    repoint(server, name, ADDRESS_A, ttl=120, timeout=TIMEOUT)
    monkeypatch.setattr(dns_update, "_exchange", lambda *_: pytest.fail("an update was sent"))

    planned = repoint(server, name, ADDRESS_B, ttl=120, timeout=TIMEOUT, dry_run=True)

    assert planned.changed
    assert planned.dry_run
    assert planned.before == planned.after == (ADDRESS_A,)
    assert plain_query(server, name) == [ADDRESS_A]


@pytest.mark.usefixtures("as_administrator")
def test_another_account_cannot_repoint_a_record_it_does_not_own(
    server: DnsServer, name: str, domain_controller: DomainController
) -> None:
    """A record made by Administrator belongs to it: a plain user's signed update is refused.

    Samba answers SERVFAIL where Windows answers REFUSED; both come out as the words about
    record ownership, and the record keeps its address.
    """
    repoint(server, name, ADDRESS_A, ttl=120, timeout=TIMEOUT)
    user = domain_controller.add_user(f"node-{uuid.uuid4().hex[:6]}", _USER_PASSWORD)

    with pytest.raises(DnsRefusedError) as refused:
        repoint(
            server, name, ADDRESS_B, ttl=120, timeout=TIMEOUT, credentials=(user, _USER_PASSWORD)
        )

    message = str(refused.value)
    assert f"{user} may not change {name} in {ZONE}" in message
    assert "in a secure zone the record belongs to the account that created it" in message
    assert "give every node's account (or a group of them) write access" in message
    assert _USER_PASSWORD not in message
    assert plain_query(server, name) == [ADDRESS_A]


@pytest.mark.usefixtures("as_administrator")
def test_a_plain_user_may_create_a_name_of_its_own(
    server: DnsServer, name: str, domain_controller: DomainController
) -> None:
    """Creating is allowed to any domain user: the refusal above is about ownership."""
    user = domain_controller.add_user(f"node-{uuid.uuid4().hex[:6]}", _USER_PASSWORD)

    made = repoint(
        server, name, ADDRESS_B, ttl=120, timeout=TIMEOUT, credentials=(user, _USER_PASSWORD)
    )

    assert made.after == (ADDRESS_B,)
    assert plain_query(server, name) == [ADDRESS_B]


def test_no_kerberos_ticket_is_said_in_words(
    server: DnsServer,
    name: str,
    domain_controller: DomainController,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An account with no ticket (an empty cache, no keytab) fails before any update is sent."""
    monkeypatch.setenv("KRB5_CONFIG", domain_controller.env["KRB5_CONFIG"])
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'missing'}")
    monkeypatch.delenv("KRB5_CLIENT_KTNAME", raising=False)

    with pytest.raises(DnsAuthError, match="no Kerberos ticket for the account jobsync runs as"):
        repoint(server, name, ADDRESS_A, ttl=120, timeout=TIMEOUT)

    assert plain_query(server, name) == []


@pytest.mark.usefixtures("as_administrator")
def test_a_wrong_kerberos_host_is_said_in_words(domain_controller: DomainController) -> None:
    """A Kerberos host the domain does not know names the principal it looked for."""
    wrong = DnsServer(
        HOST, port=domain_controller.dns_port, zone=ZONE, kerberos_host=f"nohost.{ZONE}"
    )

    with pytest.raises(DnsAuthError, match=f"no Kerberos ticket for DNS/nohost.{ZONE}"):
        repoint(wrong, f"services.{ZONE}", ADDRESS_A, ttl=120, timeout=TIMEOUT)


@pytest.mark.usefixtures("as_administrator")
def test_the_kerberos_host_is_the_zones_soa_mname(server: DnsServer) -> None:
    """Found as a Windows client finds it: the DC names itself in the zone's SOA."""
    assert dns_update._kerberos_host(server, HOST, TIMEOUT) == DC_HOST_NAME
