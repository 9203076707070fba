"""The signed DNS update against servers that do not answer: every wait bounded, said in words.

The servers here are sockets of the test's own on loopback, silent or closed: no DNS server,
no Kerberos.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import dns.message
import pytest

from jobsync.failover import dns_update
from jobsync.failover.dns_update import (
    DnsRequestError,
    DnsServer,
    DnsUnreachableError,
    lookup,
    repoint,
)

HOST = "127.0.0.1"
ZONE = "test.lan"
TIMEOUT = 5.0
ADDRESS_A = "192.0.2.10"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port where a UDP socket and a TCP listener take everything and answer nothing."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
    ):
        tcp.bind((HOST, 0))
        port: int = tcp.getsockname()[1]
        udp.bind((HOST, port))
        tcp.listen()
        yield port


def test_a_silent_server_fails_within_the_timeout(silent_port: int) -> None:
    """No answer: the error names the server and the wait, and comes when the wait is over."""
    silent = DnsServer(HOST, port=silent_port, zone=ZONE)
    started = time.monotonic()

    with pytest.raises(DnsUnreachableError) as unreachable:
        repoint(silent, f"services.{ZONE}", ADDRESS_A, ttl=120, timeout=0.5)

    assert 0.5 <= time.monotonic() - started < 1.5
    assert (
        str(unreachable.value) == f"the DNS server {HOST}:{silent_port} did not answer within 0.5 s"
    )


def test_a_tcp_exchange_with_a_silent_server_ends_at_the_timeout(silent_port: int) -> None:
    """The signed messages go over TCP: an accepted connection that never answers is bounded."""
    silent = DnsServer(HOST, port=silent_port, zone=ZONE)
    started = time.monotonic()

    with pytest.raises(DnsUnreachableError, match=re.escape("did not answer within 0.5 s")):
        dns_update._exchange(silent, HOST, dns.message.make_query(ZONE, "SOA"), 0.5)

    assert time.monotonic() - started < 1.5


def test_a_closed_port_is_said_in_words() -> None:
    """Nothing listens: the connection is refused at once, and the error says so."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]  # bound, never listening: connections are refused
        closed = DnsServer(HOST, port=port, zone=ZONE)
        with pytest.raises(DnsUnreachableError, match=f"cannot reach the DNS server {HOST}:{port}"):
            dns_update._exchange(closed, HOST, dns.message.make_query(ZONE, "SOA"), TIMEOUT)


def test_a_name_outside_the_zone_is_refused_before_anything_is_sent(silent_port: int) -> None:
    """Refused at once: asking the silent server anything would have waited the whole timeout."""
    silent = DnsServer(HOST, port=silent_port, zone=ZONE)
    started = time.monotonic()

    with pytest.raises(DnsRequestError, match=re.escape("is not inside the zone test.lan")):
        repoint(silent, "integrify-services.example.com", ADDRESS_A, ttl=120, timeout=TIMEOUT)

    assert time.monotonic() - started < 1.0


def test_lookup_is_bounded_too(silent_port: int) -> None:
    """The proof step's plain question waits no longer than asked either."""
    silent = DnsServer(HOST, port=silent_port, zone=ZONE)
    started = time.monotonic()

    with pytest.raises(DnsUnreachableError, match=re.escape("did not answer within 0.3 s")):
        lookup(silent, f"services.{ZONE}", timeout=0.3)

    assert time.monotonic() - started < 1.3
