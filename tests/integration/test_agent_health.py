"""``/livez`` and ``/healthz`` over real HTTP, served by agents running in this process.

The agents here run in this process against local folders; a peer is made unreachable by
removing its folder. ``[health] max_lag_seconds`` is 2 s (``support.agent.agent_config``).
The verdict they give, from plain views, is tested in tests/unit/test_health_verdict.py.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from jobsync import __version__
from jobsync.agent.runner import Agent
from jobsync.config.load import load_config
from jobsync.role import RoleDetector
from jobsync.versions import Claim

from support.agent import agent_config
from support.cluster import Cluster
from support.polling import wait_for
from support.ports import free_port

Reply = tuple[int, dict[str, str], bytes]


def _exchange(port: int, method: str, path: str) -> Reply:
    """One raw HTTP/1.1 request; the status, the headers and every byte after them."""
    request = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status.split()[1]), headers, rest


def _get_json(port: int, path: str) -> tuple[int, dict[str, object]]:
    code, _, body = _exchange(port, "GET", path)
    return code, json.loads(body)


def _up(port: int) -> bool:
    try:
        return _exchange(port, "GET", "/livez")[0] == 200
    except OSError:
        return False


@contextmanager
def _serving(
    cluster: Cluster, *, detector: RoleDetector | None = None, **settings: object
) -> Iterator[tuple[Agent, int]]:
    """An agent with ``[health] listen`` running in a thread; its port once it answers."""
    port = free_port()
    cluster.extra = agent_config(health=port, **settings)  # type: ignore[arg-type]
    agent = Agent(load_config(cluster.config), detector=detector)
    thread = threading.Thread(target=agent.run, name="agent-under-test")
    thread.start()
    try:
        wait_for(lambda: _up(port), what="the health server")
        yield agent, port
    finally:
        agent.stop()
        thread.join(timeout=20)
    assert not thread.is_alive()


def _lagging(port: int) -> list[dict[str, object]]:
    return _get_json(port, "/healthz")[1]["peers_lagging"]  # type: ignore[return-value]


def test_livez_is_200_while_running_then_503_once_stopping(
    local_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/livez answers 200 while the agent runs, a failing peer notwithstanding, then 503.

    The 503 holds from the stop request until the server closes (here held open while the
    workers stop), so a load balancer sees the agent leave before its port does.
    """
    shutil.rmtree(local_cluster.disk("node3"))
    with _serving(local_cluster) as (agent, port):
        wait_for(lambda: _lagging(port), what="node3 to fail")
        code, body = _get_json(port, "/livez")
        assert (code, body) == (200, {"status": "alive", "node": "node1", "version": __version__})

        release = threading.Event()
        real_stop = agent._crew.stop

        def held_stop() -> None:
            release.wait(timeout=20)
            real_stop()

        monkeypatch.setattr(agent._crew, "stop", held_stop)
        agent.stop()
        try:
            code, body = wait_for(
                lambda: (r := _get_json(port, "/livez"))[0] == 503 and r, what="503 from /livez"
            )
            assert body["status"] == "stopping"
            assert _exchange(port, "HEAD", "/livez")[0] == 503
            assert _get_json(port, "/healthz")[1]["reasons"] == ["the agent is stopping"]
        finally:
            release.set()


def test_healthz_on_standby_is_200_whatever_the_peers_do(local_cluster: Cluster) -> None:
    """A standby node is healthy though a peer it failed while active is still unreachable.

    The peer's error is still shown under ``peers``, but nothing is lagging: a standby node
    pushes nothing, so its peers are not its duty.
    """
    shutil.rmtree(local_cluster.disk("node3"))
    local_cluster.write_job("a.jobs", b"a")  # what node3 lacks
    here = threading.Event()
    here.set()
    dns = '[active]\nmode = "dns"\nservices_host = "services"\ncheck_seconds = 0.1\n'
    dns += "confirmations = 1\n"
    local_cluster.extra = agent_config(extra=dns)
    detector = RoleDetector(
        load_config(local_cluster.config).active,
        resolver=lambda _host: {"10.0.0.1" if here.is_set() else "10.0.0.2"},
        addresses=lambda: {"10.0.0.1"},
    )
    with _serving(local_cluster, detector=detector, extra=dns) as (agent, port):
        wait_for(
            lambda: "no successful pass" in str(_lagging(port)),
            what="node3 past max_lag_seconds while active",
        )
        here.clear()
        wait_for(lambda: not agent.active, what="the move to standby")
        code, body = _get_json(port, "/healthz")
        page = _exchange(port, "GET", "/")[2].decode()
    assert code == 200
    assert body["status"] == "ok"
    assert body["role"] == "standby"
    assert body["reasons"] == []
    assert body["peers_lagging"] == []
    assert body["next_step"] == "Nothing to do here: the services node pushes."
    node3 = body["peers"]["node3"]  # type: ignore[index]
    assert "does not exist" in node3["last_error"]
    assert node3["state"] == "failing"
    assert '<span class="badge standby">STANDBY</span>' in page


def test_healthz_on_the_active_node_lists_an_unreachable_peer_apart(local_cluster: Cluster) -> None:
    """An unreachable peer leaves the active node healthy: 200, ``degraded``.

    The peer is listed under ``peers_lagging`` with its reason, and ``reasons`` (the node's
    own failures) stays empty; after ``max_lag_seconds`` the reason says for how long. /livez
    is not touched.
    """
    shutil.rmtree(local_cluster.disk("node3"))
    local_cluster.write_job("a.jobs", b"a")
    # Quiet rescans re-check each peer every fifth one: node2 within max_lag_seconds (2 s).
    with _serving(local_cluster, rescan_seconds=0.2) as (_agent, port):
        wait_for((local_cluster.disk("node2") / "a.jobs").exists, what="node2's copy")

        def long_behind() -> list[dict[str, object]]:
            lagging = _lagging(port)
            return lagging if "no successful pass" in str(lagging) else []

        lagging = wait_for(long_behind, what="node3 past max_lag_seconds")
        code, body = _get_json(port, "/healthz")
        live = _exchange(port, "GET", "/livez")[0]
    assert code == 200
    assert body["status"] == "degraded"
    assert body["reasons"] == []
    assert [entry["peer"] for entry in lagging] == ["node3"]
    entry = lagging[0]
    assert str(entry["reason"]).startswith("no successful pass for ")
    assert float(entry["seconds_since_success"]) >= 2  # type: ignore[arg-type]
    assert "peer node3: folder" in str(entry["last_error"])
    assert str(body["next_step"]).startswith("node3 has had no successful pass for ")
    assert body["peers"]["node2"]["state"] == "up to date"  # type: ignore[index]
    assert live == 200


def test_healthz_on_the_active_node_without_its_source_is_503(local_cluster: Cluster) -> None:
    """The active node's own failure, its source folder gone, answers 503 with the reason.

    HEAD answers 503 too; /livez stays 200 (the agent is alive, waiting for the folder).
    """
    local_cluster.write_job("a.jobs", b"a")
    with _serving(local_cluster, rescan_seconds=0.3) as (_agent, port):
        wait_for(lambda: _get_json(port, "/healthz")[1]["status"] == "ok", what="all in line")
        shutil.rmtree(local_cluster.source)
        _, body = wait_for(
            lambda: (r := _get_json(port, "/healthz"))[0] == 503 and r, what="503 from /healthz"
        )
        head = _exchange(port, "HEAD", "/healthz")
        live = _exchange(port, "GET", "/livez")[0]
        page = _exchange(port, "GET", "/")[2].decode()
    assert body["status"] == "failing"
    assert any("does not exist" in str(r) or "disappeared" in str(r) for r in body["reasons"])  # type: ignore[attr-defined]
    assert str(body["next_step"]).startswith("Make the source folder readable again")
    assert head[0] == 503
    assert head[2] == b""
    assert live == 200
    assert '<span class="badge bad">ACTIVE - source folder unreadable</span>' in page


def test_head_answers_like_get_without_a_body(local_cluster: Cluster) -> None:
    """HEAD on /livez, /healthz, / and /metrics: GET's status and headers, and no body."""
    with _serving(local_cluster) as (_agent, port):
        for path in ("/livez", "/healthz", "/", "/metrics", "/nope"):
            got = _exchange(port, "GET", path)
            head = _exchange(port, "HEAD", path)
            assert head[0] == got[0], path
            assert head[2] == b"", path
            assert int(head[1]["Content-Length"]) > 0, path
            same = {k: v for k, v in got[1].items() if k not in ("Date", "Content-Length")}
            assert {k: v for k, v in head[1].items() if k not in ("Date", "Content-Length")} == same
        assert _exchange(port, "HEAD", "/livez")[1]["Content-Length"] == str(
            len(_exchange(port, "GET", "/livez")[2])
        )
        assert _exchange(port, "GET", "/livez")[1]["Cache-Control"] == "no-store"
        assert _exchange(port, "HEAD", "/nope")[0] == 404


def test_the_version_is_in_healthz_livez_the_page_and_the_metrics(local_cluster: Cluster) -> None:
    """The jobsync version is in /healthz, /livez, the page header and jobsync_build_info."""
    with _serving(local_cluster) as (_agent, port):
        health = _get_json(port, "/healthz")[1]
        live = _get_json(port, "/livez")[1]
        page = _exchange(port, "GET", "/")[2].decode()
        metrics = _exchange(port, "GET", "/metrics")[2].decode()
    assert health["version"] == live["version"] == __version__
    assert f'<span class="version">jobsync {__version__}</span></header>' in page
    assert f'jobsync_build_info{{version="{__version__}"}} 1.0' in metrics.splitlines()


def test_healthz_on_an_active_node_fenced_by_a_newer_owner_is_503(local_cluster: Cluster) -> None:
    """An active node that a newer owner fences answers 503: it cannot do its duty.

    The fence (here node2's claim to epoch 1, as a pass records one found on a peer) is the
    node's own failure, in ``reasons``; its peers are not blamed for the passes it refuses.
    """
    local_cluster.write_job("a.jobs", b"a")
    with _serving(local_cluster) as (agent, port):
        wait_for(lambda: _get_json(port, "/healthz")[1]["status"] == "ok", what="all in line")
        agent.fence.saw(Claim(node="node2", epoch=1))
        code, body = _get_json(port, "/healthz")
        page = _exchange(port, "GET", "/")[2].decode()
    assert code == 503
    assert body["status"] == "failing"
    assert any("node2 took over at epoch 1" in str(r) for r in body["reasons"])  # type: ignore[attr-defined]
    assert '<span class="badge bad">ACTIVE - fenced by a newer owner</span>' in page
