"""GSS-TSIG (RFC 3645) for dnspython, over pyspnego: MIT Kerberos on Linux, SSPI on Windows.

dnspython signs and checks GSS-TSIG messages through any object with ``step``,
``get_signature`` and ``verify_signature``; pyspnego's client context has the same three under
other names. This module is that adapter, the choice of the TKEY key's name, and the TKEY
negotiation (RFC 2930) that turns a Kerberos ticket for ``DNS/<server>`` into a signing key. It
is jobsync's only importer of pyspnego (smbprotocol uses it on its own); the network is the
caller's, given as one function that sends a message and returns the answer.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol

import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TKEY
import dns.tsig
import spnego
from spnego.exceptions import NoCredentialError, SpnegoError

try:  # MIT Kerberos on Linux lets its own errors through pyspnego when it logs on with a password
    from krb5 import Krb5Error

    _KERBEROS_ERRORS: tuple[type[Exception], ...] = (SpnegoError, Krb5Error)
except ImportError:  # Windows (SSPI), or Linux without the kerberos extra
    _KERBEROS_ERRORS = (SpnegoError,)

KEY_PREFIX = "jobsync-"
_TKEY_GSSAPI_MODE = 3  # RFC 2930: "GSS-API negotiation"
_TKEY_LIFETIME_SECONDS = 3600  # a request; the server keeps the key as long as the ticket lasts
# What RFC 3645 asks of the context: both sides proven, messages signed, none replayed.
_CONTEXT_REQ = (
    spnego.ContextReq.mutual_auth
    | spnego.ContextReq.replay_detect
    | spnego.ContextReq.sequence_detect
    | spnego.ContextReq.integrity
)

Exchange = Callable[[dns.message.Message], dns.message.Message]


class KerberosError(Exception):
    """No ticket for ``DNS/<host>`` could be had; the message says why, without any secret."""

    def __init__(self, message: str, *, no_ticket: bool) -> None:
        """``no_ticket``: the account has no credentials at all, rather than refused ones."""
        super().__init__(message)
        self.no_ticket = no_ticket


class NegotiationError(Exception):
    """The DNS server did not complete the TKEY negotiation; the message says what it answered."""


class SpnegoContext(Protocol):
    """The part of pyspnego's client context that GSS-TSIG needs."""

    @property
    def complete(self) -> bool:
        """Whether both sides are authenticated."""

    def step(self, in_token: bytes | None = None) -> bytes | None:
        """The next token for the server, given the server's last one."""

    def sign(self, data: bytes) -> bytes:
        """A MIC over ``data``."""

    def verify(self, data: bytes, mic: bytes) -> Any:  # noqa: ANN401 - pyspnego returns the QoP
        """Raise unless ``mic`` is the server's MIC over ``data``."""


class TsigContext:
    """pyspnego's client context under the names dnspython's ``GSSTSig`` calls."""

    def __init__(self, context: SpnegoContext) -> None:
        """Wrap an unstarted (or started) pyspnego client context."""
        self._context = context

    @property
    def complete(self) -> bool:
        """Whether the negotiation has finished: the key can sign."""
        return self._context.complete

    def step(self, token: bytes | None = None) -> bytes | None:
        """Feed the server's token (none at first); the token to send back, if any."""
        return self._context.step(token)

    def get_signature(self, data: bytes) -> bytes:
        """Sign an outgoing message (dnspython passes the TSIG digest input)."""
        return self._context.sign(data)

    def verify_signature(self, data: bytes, signature: bytes) -> None:
        """Raise unless ``signature`` signs ``data``; dnspython turns that into BadSignature."""
        self._context.verify(data, signature)


def new_key_name(suffix: str | None = None) -> dns.name.Name:
    """A fresh TKEY key name outside every zone: ``jobsync-<hex>.``.

    Samba fails to check a request signed with a key name inside the zone
    (``gssapi_check_packet failed``): dnspython compresses the TSIG owner name against the
    zone and Samba digests it re-encoded. A one-label name outside any zone works on Samba and
    Windows alike. ``suffix`` is for tests; by default 16 random hex digits.
    """
    return dns.name.from_text(f"{KEY_PREFIX}{suffix or secrets.token_hex(8)}.")


def open_context(
    kerberos_host: str, credentials: tuple[str, str] | None
) -> tuple[TsigContext, bytes]:
    """A Kerberos client context for ``DNS/<kerberos_host>`` and the first token to send.

    ``credentials=None``: the running account's own (the ticket cache, KRB5CCNAME; SSPI on
    Windows), as a gMSA or the computer account runs. Otherwise ``(user, password)``, the user
    as ``name@REALM``. The first step asks the KDC for the service ticket, so an account without
    a ticket fails here, before anything is sent to the DNS server.
    """
    user, password = credentials if credentials is not None else (None, None)
    try:
        context = TsigContext(
            spnego.client(
                user,
                password,
                hostname=kerberos_host,
                service="DNS",
                protocol="kerberos",
                context_req=_CONTEXT_REQ,
            )
        )
        token = context.step()
    except ImportError as exc:  # pyspnego found no Kerberos library (gssapi and krb5 on Linux)
        raise KerberosError(f"Kerberos is not available here: {exc}", no_ticket=False) from exc
    except _KERBEROS_ERRORS as exc:
        raise _logon_error(exc, kerberos_host=kerberos_host, user=user) from exc
    if not token:
        raise KerberosError("Kerberos gave no token to start with", no_ticket=False)
    return context, token


def _logon_error(exc: Exception, *, kerberos_host: str, user: str | None) -> KerberosError:
    detail = _detail(exc)
    if user is not None:
        return KerberosError(
            f"Kerberos refused {user}, or has no ticket for DNS/{kerberos_host}: {detail}",
            no_ticket=False,
        )
    if isinstance(exc, NoCredentialError):
        return KerberosError(detail, no_ticket=True)
    return KerberosError(
        f"no Kerberos ticket for DNS/{kerberos_host} (is that the DNS server's host name?): "
        f"{detail}",
        no_ticket=False,
    )


def negotiate(
    context: TsigContext, token: bytes, key_name: dns.name.Name, exchange: Exchange
) -> dns.tsig.Key:
    """Run TKEY until the context completes; the GSS-TSIG key that signs with it.

    ``exchange`` sends a message over TCP (Kerberos tokens do not fit UDP) and returns the
    checked answer: dnspython's ``GSSTSigAdapter`` feeds the server's last token to the context
    and checks the answer's signature with it, so a completed context is a proven server.
    """
    # A GSS-TSIG key holds its context where others hold a secret (dnspython's own design).
    key = dns.tsig.Key(key_name, context, dns.tsig.GSS_TSIG)  # type: ignore[arg-type]
    keyring = dns.tsig.GSSTSigAdapter({key_name: key})  # type: ignore[no-untyped-call]  # untyped
    next_token: bytes | None = token
    while next_token:
        try:
            reply = _tkey_reply(exchange(_tkey_query(next_token, key_name, keyring)), key_name)
            if context.complete:  # the adapter took the server's token as it read the answer
                return key
            next_token = context.step(reply.key)
        except _KERBEROS_ERRORS as exc:
            raise NegotiationError(f"Kerberos refused the server's answer: {_detail(exc)}") from exc
    if not context.complete:
        raise NegotiationError("the negotiation ended before both sides were authenticated")
    return key


def _tkey_query(
    token: bytes, key_name: dns.name.Name, keyring: dns.tsig.GSSTSigAdapter
) -> dns.message.QueryMessage:
    """A TKEY query carrying ``token`` (RFC 3645 4.1.1: the TKEY record in ADDITIONAL)."""
    now = int(time.time())
    record = dns.rdtypes.ANY.TKEY.TKEY(  # type: ignore[no-untyped-call]  # dnspython: untyped
        dns.rdataclass.ANY,
        dns.rdatatype.TKEY,
        dns.tsig.GSS_TSIG,
        now,
        now + _TKEY_LIFETIME_SECONDS,
        _TKEY_GSSAPI_MODE,
        dns.rcode.NOERROR,
        token,
    )
    query = dns.message.make_query(key_name, dns.rdatatype.TKEY, dns.rdataclass.ANY)
    query.keyring = keyring  # so that the answer's token reaches the context as it is read
    query.find_rrset(
        query.additional, key_name, dns.rdataclass.ANY, dns.rdatatype.TKEY, create=True
    ).add(record)
    return query


def _tkey_reply(answer: dns.message.Message, key_name: dns.name.Name) -> dns.rdtypes.ANY.TKEY.TKEY:
    """The server's TKEY record; NegotiationError in words if it refused."""
    if answer.rcode() != dns.rcode.NOERROR:
        raise NegotiationError(f"it answered the key negotiation with {_rcode(answer.rcode())}")
    try:
        rrset = answer.find_rrset(answer.answer, key_name, dns.rdataclass.ANY, dns.rdatatype.TKEY)
    except KeyError:
        raise NegotiationError("it answered the key negotiation without a key") from None
    reply = rrset[0]
    if not isinstance(reply, dns.rdtypes.ANY.TKEY.TKEY):  # find_rrset matched the type
        raise NegotiationError("it answered the key negotiation without a key")
    if reply.error != dns.rcode.NOERROR:
        raise NegotiationError(f"it refused the Kerberos ticket ({_rcode(reply.error)})")
    return reply


def _rcode(value: int) -> str:
    try:
        return dns.rcode.to_text(dns.rcode.Rcode(value))
    except ValueError:
        return f"code {value}"


def _detail(exc: Exception) -> str:
    """The Kerberos library's message in one line (it names the cache, never a password)."""
    return " ".join(str(exc).split())
