"""The agent in tests: ``jobsync watch`` as a real process, or an :class:`Agent` in a thread."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jobsync.agent.runner import Agent
from jobsync.config.load import load_config

from support.cluster import Cluster
from support.polling import wait_for
from support.ports import free_port
from support.smbd import DEFAULT_PASSWORD, PASSWORD_ENV


def agent_config(
    *,
    debounce_ms: int = 100,
    rescan_seconds: float = 30,
    retry_max: float = 1,
    health: int = 0,
    extra: str = "",
) -> str:
    """The ``[watch]`` (and ``[health]``) sections for a test agent."""
    text = (
        f"[watch]\ndebounce_ms = {debounce_ms}\nrescan_seconds = {rescan_seconds}\n"
        f"retry_max_seconds = {retry_max}\n"
    )
    if health:
        text += f'[health]\nlisten = "127.0.0.1:{health}"\nmax_lag_seconds = 2\n'
    return text + extra


class AgentProcess:
    """``python -m jobsync watch`` for one test; always stopped at the end."""

    def __init__(self, cluster: Cluster, *, health: bool = False) -> None:
        """Prepare (not start) an agent for ``cluster``'s config."""
        self.cluster = cluster
        self.port = free_port() if health else 0
        self.log = cluster.root / "agent.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        """Start the agent and wait until it has written its first state."""
        state = self.state_file
        if state.exists():
            state.unlink()
        env = {**os.environ, PASSWORD_ENV: DEFAULT_PASSWORD, "NO_COLOR": "1"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jobsync", "watch", "-v", "-c", str(self.cluster.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        wait_for(
            lambda: self.state() is not None or self.process.poll() is not None,  # type: ignore[union-attr]
            what="the agent's first state",
        )
        if self.process.poll() is not None:
            raise AssertionError(f"agent exited at start:\n{self.log.read_text()}")
        return self

    @property
    def state_file(self) -> Path:
        """Where the agent writes its state."""
        return self.cluster.root / "state" / "agent.json"

    def state(self) -> dict[str, Any] | None:
        """The agent's last state, if written."""
        try:
            return json.loads(self.state_file.read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    def peer_state(self, name: str) -> dict[str, Any]:
        """One peer's entry in the state."""
        state = self.state() or {}
        return next(p for p in state.get("peers", []) if p["name"] == name)

    def get(self, path: str) -> tuple[int, bytes]:
        """GET a path from the agent's health server."""
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:  # loopback only
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def metric(self, name: str, **labels: str) -> float:
        """One sample from /metrics (0 when absent)."""
        _, body = self.get("/metrics")
        want = name + (
            "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""
        )
        for line in body.decode().splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return 0.0

    def terminate(self) -> tuple[int, float]:
        """SIGTERM; returns the exit code and how long the agent took to stop."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        return code, time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut would."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=30)

    def close(self) -> None:
        """Make sure nothing is left running."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


@contextmanager
def agent_starter(cluster: Cluster) -> Iterator[Callable[..., AgentProcess]]:
    """``make(health=, **watch settings)`` starts an agent; each is killed at the end."""
    agents: list[AgentProcess] = []

    def make(*, health: bool = False, **settings: object) -> AgentProcess:
        agent = AgentProcess(cluster, health=health)
        cluster.extra = agent_config(health=agent.port, **settings)  # type: ignore[arg-type]
        agents.append(agent)
        return agent.start()

    try:
        yield make
    finally:
        for agent in agents:
            agent.close()


@contextmanager
def running_agent(cluster: Cluster) -> Iterator[Agent]:
    """An :class:`Agent` for ``cluster``'s config, running in a thread of this process."""
    agent = Agent(load_config(cluster.config))
    thread = threading.Thread(target=agent.run, name="agent-under-test")
    thread.start()
    try:
        yield agent
    finally:
        agent.stop()
        thread.join(timeout=20)
    assert not thread.is_alive()
