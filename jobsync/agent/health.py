"""``/livez``, ``/healthz``, ``/metrics`` and the status page ``/``, served by the agent.

``/livez`` passes while the agent runs (its main loop not stopping), whatever else happens;
``/healthz`` while this node does its duty (:mod:`~jobsync.agent.verdict`). Both answer 503
otherwise, and ``HEAD`` answers as ``GET`` does, without the body, for load balancers.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from jobsync.config import Config
from jobsync.errors import ConfigError
from jobsync.logs import get_logger

log = get_logger(__name__)

Probe = Callable[[], tuple[bool, dict[str, object]]]  # (passes, the JSON document saying why)
Answer = tuple[int, str, bytes, dict[str, str]]  # status, content type, body, other headers

NO_STORE = {"Cache-Control": "no-store"}  # a probe's answer is stale at once
NOT_FOUND = b"not found: try /, /livez, /healthz or /metrics\n"

# The page needs nothing from elsewhere, and the browser is told so.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class HealthServer:
    """Serves the agent's health and metrics until stopped."""

    def __init__(
        self,
        listen: tuple[str, int],
        *,
        live: Probe,
        health: Probe,
        metrics: Callable[[], bytes],
        page: Callable[[], bytes] | None = None,
    ) -> None:
        """Listen on ``(host, port)``; raises OSError when the address is taken."""
        host, port = listen

        routes: dict[str, Callable[[], Answer]] = {
            "/livez": lambda: _json(*live()),
            "/healthz": lambda: _json(*health()),
            "/metrics": lambda: (200, CONTENT_TYPE_LATEST, metrics(), {}),
        }
        if page is not None:
            routes["/"] = lambda: (200, "text/html; charset=utf-8", page(), PAGE_HEADERS)

        def route(path: str) -> Answer:
            answer = routes.get(path.split("?", 1)[0])
            return answer() if answer else (404, "text/plain", NOT_FOUND, {})

        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(*route(self.path))

            def do_HEAD(self) -> None:
                """What GET answers, status and headers alike, without the body."""
                self._answer(*route(self.path), body=False)

            def _answer(
                self,
                code: int,
                content_type: str,
                payload: bytes,
                headers: dict[str, str] | None = None,
                *,
                body: bool = True,
            ) -> None:
                self.send_response(code)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if body:
                    self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002, ANN401
                log.debug("health_request", request=format % args)

        self._server = Server((host, port), Handler)
        self.host = host
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.5}, name="health"
        )

    def start(self) -> None:
        """Start answering."""
        self._thread.start()
        log.info("health_listening", address=f"{self.host}:{self.port}")

    def stop(self) -> None:
        """Stop answering and release the port."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


def _json(passes: bool, document: dict[str, object]) -> Answer:
    """A probe's answer: 200 when it passes, else 503, with its document."""
    return 200 if passes else 503, "application/json", json.dumps(document).encode(), NO_STORE


def health_server(
    config: Config,
    *,
    live: Probe,
    health: Probe,
    metrics: Callable[[], bytes],
    page: Callable[[], bytes],
) -> HealthServer | None:
    """The server ``[health] listen`` asks for (``None`` without one); ConfigError if it can't."""
    if not config.health.listen:
        return None
    host, port = config.health.listen
    try:
        return HealthServer(
            config.health.listen, live=live, health=health, metrics=metrics, page=page
        )
    except OSError as exc:
        raise ConfigError(
            f"{config.path}: [health] listen: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
