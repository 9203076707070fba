"""The pure parts of the signed DNS update: names, addresses, the GSS-TSIG adapter, the words.

No network and no Kerberos: the Kerberos context is a stand-in that signs with a hash, and the
DNS server is a function that answers a message.
"""

from __future__ import annotations

import hashlib
import time

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TKEY
import dns.tsig
import dns.update
import pytest

from jobsync.errors import ExitCode
from jobsync.failover import dns_update
from jobsync.failover.dns_update import (
    DnsNotAppliedError,
    DnsRefusedError,
    DnsRequestError,
    DnsServer,
    DnsUpdateError,
    Lookup,
    ipv4,
    record_name,
)
from jobsync.failover.gss_tsig import (
    KEY_PREFIX,
    NegotiationError,
    TsigContext,
    negotiate,
    new_key_name,
)

ZONE = "example.com"


@pytest.mark.parametrize(
    ("name", "zone", "expected"),
    [
        ("integrify-services.example.com", ZONE, "integrify-services.example.com."),
        ("integrify-services.example.com.", ZONE, "integrify-services.example.com."),
        ("Integrify-Services.EXAMPLE.com", "example.com.", "Integrify-Services.EXAMPLE.com."),
        ("a.b.example.com", "EXAMPLE.COM", "a.b.example.com."),
    ],
)
def test_names_inside_the_zone_become_absolute(name: str, zone: str, expected: str) -> None:
    """A trailing dot and letter case do not matter; the name comes back absolute."""
    assert record_name(name, zone) == dns.name.from_text(expected)
    assert record_name(name, zone).is_absolute()


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("integrify-services.example.org", "is not inside the zone example.com"),
        ("integrify-services.notexample.com", "is not inside the zone example.com"),
        ("example.com", "is the zone's own name"),
        ("example.com.", "is the zone's own name"),
        ("a..example.com", "is not a DNS name"),
        ("x" * 64 + ".example.com", "is not a DNS name"),
    ],
)
def test_names_the_zone_does_not_hold_are_refused(name: str, words: str) -> None:
    """Outside the zone (a mere suffix match is not inside), its apex, or not a name at all."""
    with pytest.raises(DnsRequestError, match=words) as refused:
        record_name(name, ZONE)
    assert refused.value.exit_code == ExitCode.USAGE


def test_an_a_record_takes_ipv4_addresses_only() -> None:
    """The address is checked before anything is sent; an A record holds IPv4 only."""
    assert ipv4("192.0.2.10") == "192.0.2.10"
    for bad in ("192.0.2.300", "::1", "services.example.com", ""):
        with pytest.raises(DnsRequestError, match="is not an IPv4 address"):
            ipv4(bad)


def test_a_key_name_lies_outside_every_zone() -> None:
    """One label under the root (Samba fails keys named inside the zone), fresh every time."""
    names = {new_key_name() for _ in range(100)}

    assert len(names) == 100
    for key_name in names:
        assert key_name.is_absolute()
        assert len(key_name.labels) == 2  # the label and the root
        assert key_name.labels[0].decode().startswith(KEY_PREFIX)
        assert not key_name.is_subdomain(dns.name.from_text(ZONE))
    assert new_key_name("ab12") == dns.name.from_text("jobsync-ab12.")


class FakeKerberos:
    """A stand-in for pyspnego's context: two steps, then it signs with a keyed hash."""

    def __init__(self) -> None:
        """Not started: the first step gives the client's token."""
        self.steps: list[bytes | None] = []
        self._complete = False

    @property
    def complete(self) -> bool:
        """Whether the server's token has been taken."""
        return self._complete

    def step(self, in_token: bytes | None = None) -> bytes | None:
        """The client's token first; complete once given the server's."""
        self.steps.append(in_token)
        if in_token is None:
            return b"client-token"
        self._complete = True
        return None

    def sign(self, data: bytes) -> bytes:
        """A keyed hash of ``data``."""
        return hashlib.sha256(b"session-key" + data).digest()

    def verify(self, data: bytes, mic: bytes) -> int:
        """Raise unless ``mic`` is this context's hash of ``data``."""
        if mic != self.sign(data):
            raise ValueError("bad mic")
        return 0


def _signed_update(key: dns.tsig.Key) -> bytes:
    update = dns.update.UpdateMessage(ZONE, keyring=key)
    update.replace(f"services.{ZONE}", 300, dns.rdatatype.A, "192.0.2.10")
    return update.to_wire()


def test_dnspython_signs_and_checks_through_the_adapter() -> None:
    """GSSTSig's three calls reach pyspnego's; a signature that fails becomes BadSignature."""
    key = dns.tsig.Key(new_key_name(), TsigContext(FakeKerberos()), dns.tsig.GSS_TSIG)  # type: ignore[arg-type]
    wire = _signed_update(key)

    assert dns.message.from_wire(wire, keyring=key).had_tsig  # the signature checks

    tampered = wire.replace(b"\xc0\x00\x02\x0a", b"\xc0\x00\x02\x0b")  # 192.0.2.10 -> .11
    assert tampered != wire
    with pytest.raises(dns.tsig.BadSignature):
        dns.message.from_wire(tampered, keyring=key)


def _tkey_answer(
    query: dns.message.Message, *, token: bytes, error: int = 0, rcode: int = 0
) -> dns.message.Message:
    answer = dns.message.make_response(query)
    answer.set_rcode(dns.rcode.Rcode(rcode))
    now = int(time.time())
    record = dns.rdtypes.ANY.TKEY.TKEY(  # type: ignore[no-untyped-call]
        dns.rdataclass.ANY, dns.rdatatype.TKEY, dns.tsig.GSS_TSIG, now, now, 3, error, token
    )
    name = query.question[0].name
    answer.find_rrset(answer.answer, name, dns.rdataclass.ANY, dns.rdatatype.TKEY, create=True).add(
        record
    )
    return answer


def test_negotiation_sends_the_token_as_rfc_3645_asks_and_completes() -> None:
    """The TKEY query: the key's name, mode 3 (GSS-API), gss-tsig, the token in ADDITIONAL."""
    kerberos = FakeKerberos()
    context = TsigContext(kerberos)
    key_name = new_key_name("cafe")
    sent: list[dns.message.Message] = []

    def server(query: dns.message.Message) -> dns.message.Message:
        sent.append(query)
        return _tkey_answer(query, token=b"server-token")

    key = negotiate(context, context.step() or b"", key_name, server)

    (query,) = sent
    assert query.question[0].name == key_name
    assert query.question[0].rdtype == dns.rdatatype.TKEY
    (tkey,) = query.find_rrset(query.additional, key_name, dns.rdataclass.ANY, dns.rdatatype.TKEY)
    assert isinstance(tkey, dns.rdtypes.ANY.TKEY.TKEY)
    assert (tkey.mode, tkey.algorithm, tkey.key) == (3, dns.tsig.GSS_TSIG, b"client-token")
    assert kerberos.steps == [None, b"server-token"]
    assert (key.name, key.algorithm, key.secret) == (key_name, dns.tsig.GSS_TSIG, context)


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ({"rcode": dns.rcode.REFUSED}, "it answered the key negotiation with REFUSED"),
        ({"error": 17}, r"it refused the Kerberos ticket \(BADKEY\)"),
    ],
)
def test_a_refused_negotiation_is_said_in_words(answer: dict[str, int], words: str) -> None:
    """The server's refusal, in its own code, before any update is signed."""
    context = TsigContext(FakeKerberos())

    def server(query: dns.message.Message) -> dns.message.Message:
        return _tkey_answer(query, token=b"", **answer)

    with pytest.raises(NegotiationError, match=words):
        negotiate(context, context.step() or b"", new_key_name(), server)


SERVER = DnsServer("192.0.2.53", zone=ZONE)
NAME = f"services.{ZONE}"
OWNERSHIP = (
    "may not change services.example.com in example.com: in a secure zone the record belongs "
    "to the account that created it; give every node's account (or a group of them) write "
    "access to the record"
)


@pytest.mark.parametrize(
    ("rcode", "user", "kind", "words"),
    [
        (dns.rcode.REFUSED, None, DnsRefusedError, f"the account jobsync runs as {OWNERSHIP}"),
        (dns.rcode.NOTAUTH, "node2@TEST.LAN", DnsRefusedError, f"node2@TEST.LAN {OWNERSHIP}"),
        (dns.rcode.SERVFAIL, None, DnsRefusedError, "failed the update (SERVFAIL)"),
        (dns.rcode.NOERROR, None, DnsNotAppliedError, "now holds 192.0.2.99, not 192.0.2.10"),
        (dns.rcode.FORMERR, None, DnsUpdateError, "answered the update with FORMERR"),
    ],
)
def test_an_update_that_did_not_take_is_said_in_words(
    rcode: dns.rcode.Rcode, user: str | None, kind: type[DnsUpdateError], words: str
) -> None:
    """Each answer the server may give, with what the name holds now, becomes words."""
    after = Lookup(NAME, ("192.0.2.99",), 300)

    error = dns_update._not_applied(SERVER, after, "192.0.2.10", rcode=rcode, user=user)

    assert type(error) is kind
    assert words in str(error)
    assert error.exit_code == ExitCode.PEER_FAILED


def test_a_server_is_named_by_address_and_port() -> None:
    """The port defaults to 53; every field after the host is given by keyword."""
    assert SERVER.where == "192.0.2.53:53"
    assert DnsServer("dc1.example.com", port=5353, zone=ZONE).where == "dc1.example.com:5353"
