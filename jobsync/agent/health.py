"""``GET /healthz``, ``GET /metrics`` and the status page ``GET /``, served by the agent."""

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

Health = Callable[[], tuple[bool, dict[str, object]]]

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
        health: Health,
        metrics: Callable[[], bytes],
        page: Callable[[], bytes] | None = None,
    ) -> None:
        """Listen on ``(host, port)``; raises OSError when the address is taken."""
        host, port = listen
        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] == "/healthz":
                    healthy, body = health()
                    payload = json.dumps(body).encode()
                    self._answer(200 if healthy else 503, "application/json", payload)
                elif self.path.split("?", 1)[0] == "/metrics":
                    self._answer(200, CONTENT_TYPE_LATEST, metrics())
                elif self.path.split("?", 1)[0] == "/" and page is not None:
                    self._answer(200, "text/html; charset=utf-8", page(), PAGE_HEADERS)
                else:
                    self._answer(404, "text/plain", b"not found: try /, /healthz or /metrics\n")

            def _answer(
                self,
                code: int,
                content_type: str,
                payload: bytes,
                headers: dict[str, str] | None = None,
            ) -> None:
                self.send_response(code)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
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


def health_server(
    config: Config, *, health: Health, metrics: Callable[[], bytes], page: Callable[[], bytes]
) -> HealthServer | None:
    """The server ``[health] listen`` asks for (``None`` without one); ConfigError if it can't."""
    if not config.health.listen:
        return None
    host, port = config.health.listen
    try:
        return HealthServer(config.health.listen, health=health, metrics=metrics, page=page)
    except OSError as exc:
        raise ConfigError(
            f"{config.path}: [health] listen: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
