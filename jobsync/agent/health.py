"""What the agent serves (health, metrics, the page) and what its view means.

``/livez``, ``/healthz``, ``/metrics`` and the status page ``/``, served by the agent.
``/livez`` passes while the agent runs (its main loop not stopping), whatever else happens;
``/healthz`` while this node does its duty (:mod:`~jobsync.agent.health`). Both answer 503
otherwise, and ``HEAD`` answers as ``GET`` does, without the body, for load balancers.

What the agent's view means: this node's own failures, the peers it leaves behind, what to do.
One pure function of an :class:`~jobsync.agent.view.AgentView` (no clock, no I/O), read by
``/healthz`` and by the status page's header, so both always say the same thing. A node's own
failure (its source folder unreadable, fenced by a newer owner, a worker thread stopped, the
agent stopping) makes ``/healthz`` answer 503. Peers the active node leaves behind are listed
apart and only make it ``degraded`` (still 200): a standby peer that is down must not take the
services node out of a load balancer's rotation. Their lag is alerted on from the
``jobsync_peer_lag_seconds`` metric instead. Integrify's services found on no node or on
several (:mod:`~jobsync.agent.fleet_watch`) degrade every node alike: it is the fleet's
problem, seen from each node, not this node's own failure.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from prometheus_client import CONTENT_TYPE_LATEST

from jobsync import __version__
from jobsync.agent.view import AgentView, PeerView
from jobsync.config.model import Config
from jobsync.errors import ConfigError
from jobsync.failover.steps import ServicesNodes
from jobsync.logs import get_logger
from jobsync.result import iso

Status = Literal["ok", "degraded", "failing"]


@dataclass(frozen=True)
class Problem:
    """A failure of this node itself: the healthz reason, a few words and what to do."""

    short: str  # for the page's header: "source folder unreadable"
    reason: str  # for /healthz "reasons"
    step: str  # the next thing to do, in one sentence


@dataclass(frozen=True)
class Behind:
    """A peer the active node has not kept in line: failing, or no success for too long."""

    peer: str
    reason: str  # "no successful pass for 12 min" or "its last pass failed"
    lag: float  # seconds since its last successful pass (since the start when none)
    last_error: str | None


@dataclass(frozen=True)
class Verdict:
    """The agent at one moment, judged."""

    status: Status  # failing: its own problem (503); degraded: peers behind, services wrong (200)
    problems: tuple[Problem, ...]
    behind: tuple[Behind, ...]
    headline: str  # "ACTIVE - 1 peer failing"
    next_step: str

    @property
    def healthy(self) -> bool:
        """Whether ``/healthz`` answers 200: the node itself does its duty."""
        return self.status != "failing"


def verdict_of(
    view: AgentView, *, max_lag: float, services: ServicesNodes | None = None
) -> Verdict:
    """Judge ``view``; a peer counts as behind after ``max_lag`` s without success.

    ``services``: the last check of where Integrify's services run, when ``[failover]`` is set.
    """
    problems = _problems(view)
    behind: tuple[Behind, ...] = ()
    if view.role == "active":  # a standby node pushes nothing: its peers are not its duty
        behind = tuple(b for p in view.peers if (b := _behind(p, view, max_lag)))
    wrong = services if services is not None and services.wrong else None
    status: Status = "failing" if problems else "degraded" if behind or wrong else "ok"
    return Verdict(
        status=status,
        problems=problems,
        behind=behind,
        headline=_headline(view.role, problems, behind, wrong),
        next_step=(
            wrong.next_step()  # services twice (or nowhere) come before any peer's lag
            if wrong is not None and not problems
            else _next_step(view, problems, behind)
        ),
    )


def health_of(
    view: AgentView,
    *,
    max_lag: float,
    hide: Callable[[str], str] = str,
    services: ServicesNodes | None = None,
) -> tuple[bool, dict[str, object]]:
    """``/healthz``: whether this node does its duty, and the document that says why.

    ``hide`` replaces secrets in any text taken from errors; ``services_nodes`` is ``null``
    without ``[failover]``.
    """
    verdict = verdict_of(view, max_lag=max_lag, services=services)
    peers: dict[str, object] = {}
    for peer in view.peers:
        peers[peer.name] = {
            "state": peer.state(standby=view.role != "active"),
            "last_success": iso(peer.last_success),
            "seconds_since_success": (
                None if peer.last_success is None else round(view.at - peer.last_success, 1)
            ),
            "pending": peer.pending,
            "last_error": _hidden(peer.last_error, hide),
        }
    body: dict[str, object] = {
        "status": verdict.status,
        "node": view.node,
        "role": view.role,
        "version": __version__,
        "reasons": [hide(p.reason) for p in verdict.problems],
        "peers_lagging": [
            {
                "peer": b.peer,
                "reason": b.reason,
                "seconds_since_success": round(b.lag, 1),
                "last_error": _hidden(b.last_error, hide),
            }
            for b in verdict.behind
        ],
        "next_step": hide(verdict.next_step),
        "peers": peers,
        "services_nodes": None if services is None else services.document(hide),
    }
    return verdict.healthy, body


def duration(seconds: float) -> str:
    """A span of time as people say it: ``45 s``, ``12 min``, ``3 h 5 min``, ``4 days``."""
    seconds = max(0, int(seconds))
    if seconds < 60:  # noqa: PLR2004 - seconds in a minute
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:  # noqa: PLR2004
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:  # noqa: PLR2004 - two days still read best in hours
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days"


def _problems(view: AgentView) -> tuple[Problem, ...]:
    found: list[Problem] = []
    if not view.running:
        found.append(
            Problem(
                "stopping",
                "the agent is stopping",
                "The agent is stopping: if it does not start again, start the jobsync service.",
            )
        )
    if view.source_error:
        found.append(
            Problem(
                "source folder unreadable",
                view.source_error,
                "Make the source folder readable again; nothing is deleted on any peer until "
                "it is back.",
            )
        )
    if view.role == "active" and view.fenced:
        found.append(
            Problem(
                "fenced by a newer owner",
                view.fenced,
                "Another node owns the jobs, so this one pushes nothing: make sure the "
                "Integrify services run on that node, or run jobsync takeover here.",
            )
        )
    found += [
        Problem(
            "a worker stopped",
            f"peer {name}: its worker is not running",
            f"The worker for {name} stopped; the agent starts it again within seconds: if "
            "it keeps stopping, look for worker_restarted in the log.",
        )
        for name in view.stalled
    ]
    return tuple(found)


def _behind(peer: PeerView, view: AgentView, max_lag: float) -> Behind | None:
    """The peer, if behind: its last pass failed, or changes wait too long for it.

    Too long: no success for ``max_lag`` s. An idle peer's age alone says nothing: quiet
    rescans check each peer only every fifth time (:mod:`~jobsync.agent.workers`).
    """
    lag = view.at - (peer.last_success or view.started)
    if lag > max_lag and peer.pending:
        reason = f"no successful pass for {duration(lag)}"
    elif peer.last_error:
        reason = "its last pass failed"
    else:
        return None
    return Behind(peer.name, reason, lag, peer.last_error)


def _headline(
    role: str,
    problems: tuple[Problem, ...],
    behind: tuple[Behind, ...],
    wrong: ServicesNodes | None,
) -> str:
    word = role.upper()
    if problems:
        return f"{word} - {problems[0].short if len(problems) == 1 else 'failing'}"
    if wrong is not None:
        where = f"{len(wrong.running_on)} nodes" if wrong.running_on else "no node"
        return f"{word} - services on {where}"
    if behind:
        state = "failing" if all(b.last_error for b in behind) else "behind"
        return f"{word} - {_count(len(behind), 'peer')} {state}"
    return word


def _next_step(view: AgentView, problems: tuple[Problem, ...], behind: tuple[Behind, ...]) -> str:
    if problems:
        return problems[0].step
    if view.role != "active":
        return _IDLE_STEPS.get(view.role, _IDLE_STEPS["standby"])
    if behind:
        return _catch_up_step(behind)
    if not view.peers:
        return "Nothing to do: there is no peer to push to."
    if any(p.pending for p in view.peers):
        return "Nothing to do: the peers are catching up."
    return "Nothing to do: every peer is up to date."


_IDLE_STEPS = {
    "starting": "Nothing to do yet: the agent is starting.",
    "standby": "Nothing to do here: the services node pushes.",
}


def _catch_up_step(behind: tuple[Behind, ...]) -> str:
    """What to do about the peer longest without success (and how many more there are)."""
    worst = max(behind, key=lambda b: b.lag)
    others = len(behind) - 1
    more = f"; {_count(others, 'more peer')} {'is' if others == 1 else 'are'} behind too"
    more = more if others else ""
    if not worst.last_error:
        hint = "but none failed: look in the log for a pass that hangs"
        return f"{worst.peer} has had {worst.reason} {hint}{more}."
    if worst.reason.startswith("no successful pass"):
        return f"{worst.peer} has had {worst.reason}: see its last error below{more}."
    return f"{worst.peer}'s last pass failed (the agent retries): see its last error below{more}."


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _hidden(text: str | None, hide: Callable[[str], str]) -> str | None:
    return None if text is None else hide(text)


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
