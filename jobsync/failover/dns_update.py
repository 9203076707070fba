"""Point a name's A record at one address with a signed dynamic update, and check that it took.

Active Directory's DNS takes changes to a secure zone only when signed by a Kerberos identity
(RFC 2136 updates signed with GSS-TSIG, RFC 3645): the running account's, as a gMSA or the
computer account runs, or a user's. :func:`repoint` reads the record, negotiates a key
(:mod:`.gss_tsig`), sends one signed update over TCP, then asks the server again and reports
what the name holds now. It never counts the update's answer as success: Samba signs that
answer so that dnspython and BIND's ``nsupdate`` both reject it although the change was made.
:func:`lookup` is the plain question, for the check and the proof.

The Kerberos principal is ``DNS/<host>``, the host being the zone's SOA MNAME as the server
itself answers it, as Windows' own DNS client finds it (every AD domain controller names itself
there), unless :attr:`DnsServer.kerberos_host` names it.

Every network wait (each question, each exchange) is bounded by ``timeout``, except two that
are bounded by the system's own settings: the Kerberos library's request for the service ticket
(krb5.conf on Linux, SSPI on Windows), and the resolver's when the server is given by name. The
errors
of dnspython, the sockets and pyspnego become :class:`DnsUpdateError` here, once::

    DnsUpdateError                3
    ├── DnsUnreachableError          no answer: refused, unreachable, or not within the timeout
    ├── DnsAuthError                 no Kerberos ticket, or the server did not take it
    ├── DnsRefusedError              the account may not change the record
    ├── DnsNotAppliedError           the server took the update; the name holds something else
    └── DnsRequestError           2  the name or address cannot be asked for; nothing was sent
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import KW_ONLY, dataclass

import dns.exception
import dns.flags
import dns.inet
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.tsig
import dns.update

from jobsync.config.model import DnsConfig
from jobsync.errors import ExitCode, JobsyncError
from jobsync.failover.gss_tsig import (
    KerberosError,
    NegotiationError,
    negotiate,
    new_key_name,
    open_context,
)
from jobsync.logs import get_logger

log = get_logger(__name__)

_LEAST_WAIT = 0.001  # seconds: a socket timeout of 0 would mean "do not wait at all"
_REFUSALS = (dns.rcode.REFUSED, dns.rcode.NOTAUTH)
# dnspython's words for an answer whose signature does not check (Samba's to every update).
_SIGNATURE_ERRORS = (dns.tsig.BadSignature, dns.tsig.BadTime, dns.tsig.BadKey, dns.tsig.PeerError)


class DnsUpdateError(JobsyncError):
    """The services name could not be read or repointed; the message says why in words."""

    exit_code = ExitCode.PEER_FAILED


class DnsUnreachableError(DnsUpdateError):
    """The DNS server refused the connection, could not be reached, or did not answer in time."""


class DnsAuthError(DnsUpdateError):
    """Kerberos gave no ticket for the DNS server, or the server did not take it."""


class DnsRefusedError(DnsUpdateError):
    """The server refused the change: the account may not change the record."""


class DnsNotAppliedError(DnsUpdateError):
    """The server took the update, but asked again it gives other addresses for the name."""


class DnsRequestError(DnsUpdateError):
    """The name or address cannot be asked for (outside the zone, not IPv4); nothing was sent."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class DnsServer:
    """A DNS server that holds ``zone`` and takes signed updates to it (an AD domain controller).

    ``host`` is an address or a host name (looked up with the system's resolver);
    ``kerberos_host`` is the host name in the server's Kerberos principal ``DNS/<host>``, by
    default the zone's SOA MNAME as this server answers it.
    """

    host: str
    _: KW_ONLY
    port: int = 53
    zone: str
    kerberos_host: str | None = None

    @classmethod
    def of(cls, dns: DnsConfig) -> DnsServer:
        """The server ``[failover.dns]`` names."""
        return cls(dns.server, port=dns.port, zone=dns.zone, kerberos_host=dns.kerberos_host)

    @property
    def where(self) -> str:
        """The server as the messages name it."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Lookup:
    """What the server answers for a name's A records."""

    name: str
    addresses: tuple[str, ...]  # sorted; empty when the name has none
    ttl: int | None  # how long clients may cache them, in seconds; None without records
    alias: str | None = None  # the CNAME's target when the name is an alias


@dataclass(frozen=True)
class DnsChange:
    """What :func:`repoint` did: the name's addresses before and after, as the server answered.

    ``old_ttl`` is how long clients may still use an old address they looked up before.
    ``changed`` is false when the name already held exactly the address: nothing was sent. In a
    dry run nothing is sent either: ``changed`` then says whether it would be, and ``after`` is
    ``before``.
    """

    name: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    old_ttl: int | None
    changed: bool
    dry_run: bool = False


def record_name(name: str, zone: str) -> dns.name.Name:
    """``name`` as an absolute DNS name inside ``zone``; DnsRequestError otherwise.

    Both may end with a dot or not, in any case. The zone's own name is refused: in Active
    Directory its A records are the domain controllers' addresses.
    """
    try:
        fqdn = dns.name.from_text(name)
        apex = dns.name.from_text(zone)
    except dns.exception.DNSException as exc:
        raise DnsRequestError(f"{name!r} in zone {zone!r} is not a DNS name: {exc}") from exc
    if fqdn == apex:
        raise DnsRequestError(
            f"{name} is the zone's own name, whose A records are the domain controllers': "
            f"name a host inside {zone}"
        )
    if not fqdn.is_subdomain(apex):
        raise DnsRequestError(
            f"{name} is not inside the zone {zone}, the only one jobsync updates: "
            f"name the zone that holds {name}"
        )
    return fqdn


def ipv4(address: str) -> str:
    """``address`` as a canonical IPv4 address; DnsRequestError if it is not one."""
    try:
        return str(ipaddress.IPv4Address(address))
    except ValueError as exc:
        raise DnsRequestError(f"{address!r} is not an IPv4 address (an A record)") from exc


def lookup(server: DnsServer, name: str, *, timeout: float) -> Lookup:
    """The A records of ``name`` as ``server`` answers them, with their TTL.

    The answer must be authoritative: a server that does not hold the zone would answer from
    a cache, or not at all.
    """
    qname = record_name(name, server.zone)
    return _lookup(server, _address(server), qname, timeout)


def repoint(
    server: DnsServer,
    name: str,
    address: str,
    *,
    ttl: int,
    timeout: float,
    credentials: tuple[str, str] | None = None,
    dry_run: bool = False,
) -> DnsChange:
    """Replace the A records of ``name`` with one, ``address`` (TTL ``ttl``), and check it.

    Signed with GSS-TSIG as the running account (``credentials=None``: its ticket cache, or
    SSPI on Windows) or as ``(user@REALM, password)``. Sends nothing when the name already
    holds exactly ``address``, or in a dry run. Success is what the server answers when asked
    again afterwards, never the update's own answer.
    """
    qname = record_name(name, server.zone)
    wanted = ipv4(address)
    started = time.monotonic()
    where = _address(server)
    before = _lookup(server, where, qname, timeout)
    if before.alias is not None:
        raise DnsRequestError(
            f"{before.name} is an alias (CNAME) of {before.alias}: repoint {before.alias}, "
            "or replace the alias with an A record"
        )
    if before.addresses == (wanted,):
        log.info("dns_record_already", server=server.where, name=before.name, address=wanted)
        return _change(before, before, changed=False, dry_run=dry_run)
    if dry_run:
        return _change(before, before, changed=True, dry_run=True)
    rcode = _send_update(
        server, where, qname, wanted, ttl=ttl, timeout=timeout, credentials=credentials
    )
    after = _lookup(server, where, qname, timeout)
    if after.addresses != (wanted,):
        user = None if credentials is None else credentials[0]
        raise _not_applied(server, after, wanted, rcode=rcode, user=user)
    log.warning(
        "dns_record_repointed",
        server=server.where,
        name=after.name,
        address=wanted,
        before=list(before.addresses),
        old_ttl=before.ttl,
        seconds=round(time.monotonic() - started, 3),
    )
    return _change(before, after, changed=True, dry_run=False)


def _change(before: Lookup, after: Lookup, *, changed: bool, dry_run: bool) -> DnsChange:
    return DnsChange(
        name=before.name,
        before=before.addresses,
        after=after.addresses,
        old_ttl=before.ttl,
        changed=changed,
        dry_run=dry_run,
    )


def _send_update(
    server: DnsServer,
    where: str,
    qname: dns.name.Name,
    address: str,
    *,
    ttl: int,
    timeout: float,
    credentials: tuple[str, str] | None,
) -> dns.rcode.Rcode:
    """Negotiate a key, send the signed update; the server's rcode, checked or not."""
    host = server.kerberos_host or _kerberos_host(server, where, timeout)
    try:
        context, token = open_context(host, credentials)
    except KerberosError as exc:
        if exc.no_ticket:
            raise DnsAuthError(
                f"no Kerberos ticket for the account jobsync runs as: {exc}. Run jobsync as the "
                "service account (a gMSA or the computer account), or log on (kinit) first"
            ) from exc
        raise DnsAuthError(str(exc)) from exc

    def exchange(message: dns.message.Message) -> dns.message.Message:
        answer, checked = _answer(server, message, _exchange(server, where, message, timeout))
        if not checked:
            raise NegotiationError("its signature on the key did not check")
        return answer

    try:
        key = negotiate(context, token, new_key_name(), exchange)
    except NegotiationError as exc:
        raise DnsAuthError(
            f"the DNS server {server.where} did not take jobsync's Kerberos ticket for "
            f"DNS/{host}: {exc}"
        ) from exc
    update = dns.update.UpdateMessage(dns.name.from_text(server.zone), keyring=key)
    update.replace(qname, ttl, dns.rdatatype.A, address)
    log.info("dns_update_sent", server=server.where, name=_text(qname), address=address, ttl=ttl)
    answer, checked = _answer(server, update, _exchange(server, where, update, timeout))
    if not checked:  # Samba's answer to every signed update: the lookup after it decides
        log.info("dns_answer_unchecked", server=server.where, rcode=_rcode(answer.rcode()))
    return answer.rcode()


def _not_applied(
    server: DnsServer, after: Lookup, wanted: str, *, rcode: dns.rcode.Rcode, user: str | None
) -> DnsUpdateError:
    """The error for an update after which the name does not hold ``wanted``."""
    holds = ", ".join(after.addresses) or "no address"
    who = "the account jobsync runs as" if user is None else user
    ownership = (
        f"{who} may not change {after.name} in {server.zone}: in a secure zone the record "
        "belongs to the account that created it; give every node's account (or a group of "
        "them) write access to the record"
    )
    if rcode in _REFUSALS:
        return DnsRefusedError(f"{ownership} (the server answered {_rcode(rcode)})")
    if rcode == dns.rcode.SERVFAIL:  # Samba's answer when the directory denies the change
        return DnsRefusedError(
            f"the DNS server failed the update (SERVFAIL) and {after.name} still holds {holds}; "
            f"Samba answers so when {ownership}"
        )
    if rcode == dns.rcode.NOERROR:
        return DnsNotAppliedError(
            f"the DNS server took the update, but {after.name} now holds {holds}, not {wanted}: "
            "another node or tool may have changed it since; run the command again"
        )
    return DnsUpdateError(
        f"the DNS server answered the update with {_rcode(rcode)}; {after.name} holds {holds}"
    )


def _lookup(server: DnsServer, where: str, qname: dns.name.Name, timeout: float) -> Lookup:
    answer = _query(server, where, qname, dns.rdatatype.A, timeout)
    name = _text(qname)
    if answer.rcode() == dns.rcode.NXDOMAIN:
        return Lookup(name, (), None)
    alias = answer.get_rrset(answer.answer, qname, dns.rdataclass.IN, dns.rdatatype.CNAME)
    if alias:
        return Lookup(name, (), None, alias=_text(alias[0].target))
    records = answer.get_rrset(answer.answer, qname, dns.rdataclass.IN, dns.rdatatype.A)
    if not records:
        return Lookup(name, (), None)
    addresses = sorted({rdata.address for rdata in records}, key=ipaddress.IPv4Address)
    return Lookup(name, tuple(addresses), records.ttl)


def _kerberos_host(server: DnsServer, where: str, timeout: float) -> str:
    """The zone's SOA MNAME, as this server answers it: its own host name on an AD DC."""
    apex = dns.name.from_text(server.zone)
    answer = _query(server, where, apex, dns.rdatatype.SOA, timeout)
    soa = answer.get_rrset(answer.answer, apex, dns.rdataclass.IN, dns.rdatatype.SOA)
    if not soa:
        raise DnsUpdateError(
            f"the DNS server {server.where} gives no SOA record for {server.zone}: "
            "is that the zone's name?"
        )
    return _text(soa[0].mname)


def _query(
    server: DnsServer,
    where: str,
    qname: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    timeout: float,
) -> dns.message.Message:
    """A plain question, over UDP (TCP if the answer is truncated); an authoritative answer."""
    query = dns.message.make_query(qname, rdtype)
    try:
        answer, _ = dns.query.udp_with_fallback(query, where, timeout=timeout, port=server.port)
    except dns.exception.Timeout as exc:
        raise _timed_out(server, timeout) from exc
    except OSError as exc:
        raise _unreachable(server, exc) from exc
    except dns.exception.DNSException as exc:
        raise _unreadable(server, exc) from exc
    rcode = answer.rcode()
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        raise DnsUpdateError(
            f"the DNS server {server.where} answered {_rcode(rcode)} when asked for "
            f"{_text(qname)}: does it hold the zone {server.zone}?"
        )
    if not answer.flags & dns.flags.AA:
        raise DnsUpdateError(
            f"the DNS server {server.where} does not hold the zone {server.zone} (its answer is "
            "not authoritative): name a domain controller that holds it"
        )
    return answer


def _exchange(server: DnsServer, where: str, message: dns.message.Message, timeout: float) -> bytes:
    """Send ``message`` over TCP and return the answer's wire form, unread.

    Unread because the answer to a signed update may fail its signature check (Samba's does)
    and still carry the server's rcode, which :func:`_answer` reads either way.
    """
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((where, server.port), timeout=timeout) as sock:
            sock.settimeout(max(deadline - time.monotonic(), _LEAST_WAIT))
            sock.sendall(message.to_wire(prepend_length=True))
            length = int.from_bytes(_receive(sock, 2, deadline), "big")
            return _receive(sock, length, deadline)
    except TimeoutError as exc:
        raise _timed_out(server, timeout) from exc
    except OSError as exc:
        raise _unreachable(server, exc) from exc


def _receive(sock: socket.socket, count: int, deadline: float) -> bytes:
    data = b""
    while len(data) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("it closed the connection without an answer")
        data += chunk
    return data


def _answer(
    server: DnsServer, message: dns.message.Message, wire: bytes
) -> tuple[dns.message.Message, bool]:
    """The answer to ``message`` and whether its signature checked out."""
    try:
        try:
            answer = dns.message.from_wire(wire, keyring=message.keyring, request_mac=message.mac)
            checked = True
        except _SIGNATURE_ERRORS:
            answer = dns.message.from_wire(wire, keyring=False)  # read it, signature aside
            checked = False
    except dns.exception.DNSException as exc:
        raise _unreadable(server, exc) from exc
    if not message.is_response(answer):
        raise DnsUpdateError(f"the DNS server {server.where} answered another question")
    return answer, checked


def _address(server: DnsServer) -> str:
    """The server's address: ``host`` itself, or what the system's resolver gives for it."""
    if dns.inet.is_address(server.host):
        return server.host
    try:
        infos = socket.getaddrinfo(server.host, server.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DnsUnreachableError(
            f"cannot find the DNS server {server.host}: {exc.strerror or exc}"
        ) from exc
    return str(infos[0][4][0])


def _timed_out(server: DnsServer, timeout: float) -> DnsUnreachableError:
    return DnsUnreachableError(f"the DNS server {server.where} did not answer within {timeout:g} s")


def _unreachable(server: DnsServer, exc: OSError) -> DnsUnreachableError:
    return DnsUnreachableError(f"cannot reach the DNS server {server.where}: {exc.strerror or exc}")


def _unreadable(server: DnsServer, exc: Exception) -> DnsUpdateError:
    return DnsUpdateError(
        f"the DNS server {server.where} sent an answer jobsync cannot read: {exc}"
    )


def _rcode(value: int) -> str:
    return dns.rcode.to_text(dns.rcode.Rcode(value))


def _text(name: dns.name.Name) -> str:
    return name.to_text(omit_final_dot=True)
