"""Integrify's ``/healthcheck``, asked over HTTP(S): 200 is healthy, anything else is not.

No public description of the answer's body exists, so only the status counts. A probe through
the services name connects to the address the name's authority gives (the DNS server or the
hosts files), not to whatever this machine's resolver cache still holds, and sends the name as
the ``Host`` (and TLS server name), so it asks the same site a client would.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

HEALTHY = 200
_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Probe:
    """One answer (or none) from a healthcheck URL."""

    url: str
    status: int | None = None
    error: str | None = None
    via: str | None = None  # the address connected to, when not the URL's own host

    @property
    def healthy(self) -> bool:
        """Whether it answered 200."""
        return self.status == HEALTHY

    def describe(self) -> str:
        """E.g. "http://10.0.0.12/healthcheck answered 200"."""
        where = self.url if self.via is None else f"{self.url} (at {self.via})"
        if self.status is not None:
            return f"{where} answered {self.status}"
        return f"{where}: {self.error}"


class _Pinned(http.client.HTTPSConnection):
    """HTTPS to a chosen address, verifying the certificate for the URL's host name."""

    def __init__(self, host: str, port: int | None, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def probe(url: str, *, timeout: float, address: str | None = None) -> Probe:
    """GET ``url`` once, within ``timeout``; ``address`` overrides where it connects."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = (
            _Pinned(host, parts.port, address=address, timeout=timeout)
            if address is not None
            else http.client.HTTPSConnection(host, parts.port, timeout=timeout)
        )
    else:
        connection = http.client.HTTPConnection(address or host, parts.port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": parts.netloc, "User-Agent": "jobsync"})
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return Probe(url, error=_reason(exc), via=address)
    finally:
        connection.close()
    return Probe(url, status=status, via=address)


def wait_healthy(
    url: str,
    *,
    within: float,
    timeout: float,
    address: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Probe:
    """Probe until it answers 200 or ``within`` seconds have passed; the last answer."""
    deadline = clock() + within
    while True:
        answer = probe(url, timeout=min(timeout, max(deadline - clock(), 0.1)), address=address)
        if answer.healthy or clock() >= deadline:
            return answer
        sleep(_POLL_SECONDS)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"its certificate is not trusted ({exc.verify_message})"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    return str(exc) or type(exc).__name__
