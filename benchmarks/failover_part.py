"""The failover's part of the benchmark: from the command to a passing healthcheck.

Three nodes as in the failover tests (tests/support/failover_bed.py: real smbd with Samba's Spooler
standing in for Integrify's services, a C$ share with the hosts file, a real HTTP healthcheck
per node), 2,000 jobs on the services node. The services node moves back and forth between
the standbys; each run is timed as an administrator sees it (interpreter start included) and
by the command's own account of each step.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobsync.failover.repoint import point_name

from support.failover_bed import SERVICES_NAME, make_fleet, set_spooler, stop_fleet
from support.smbd import DEFAULT_PASSWORD, PASSWORD_ENV, SambaPeer, start_peer

Record = Callable[..., None]


def _check(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        raise SystemExit(f"{what} exited {done.returncode}: {done.stdout}{done.stderr}")


def run_failover_part(base: Path, record: Record, *, files: int, runs: int) -> None:
    """Fail over ``runs`` times between two standbys of a 3-node fleet holding ``files`` jobs."""
    os.environ[PASSWORD_ENV] = DEFAULT_PASSWORD
    peers: list[SambaPeer] = []

    def make_samba(**settings: Any) -> SambaPeer:  # noqa: ANN401
        peer = start_peer(base, **settings)
        peers.append(peer)
        return peer

    home = base / "failover"
    home.mkdir()
    fleet = make_fleet(home, make_samba, health_wait=30.0)
    try:
        n1 = fleet["n1"]
        for i in range(files):
            (n1.folder / f"job{i:05d}.jobs").write_bytes(os.urandom(500 + i % 3000))
        _check(n1.run("takeover"), "takeover")
        _check(n1.run("push", "--as-services-node"), "push")
        for node in fleet.values():
            node.hosts.write_bytes(
                point_name(node.hosts.read_bytes(), SERVICES_NAME, n1.address).data
            )
            set_spooler(node, running=node is n1)
        walls: list[float] = []
        steps: dict[str, list[float]] = {}
        for run in range(runs):
            node = fleet["n2" if run % 2 == 0 else "n3"]
            started = time.perf_counter()
            done = node.run("failover", "--json")
            walls.append(time.perf_counter() - started)
            _check(done, "failover")
            for step in json.loads(done.stdout)["steps"]:
                steps.setdefault(step["step"], []).append(step["seconds"])
        record(
            f"failover, {files:,} jobs, 3 nodes, command to passing healthcheck (median of {runs})",
            seconds=round(statistics.median(walls), 2),
            slowest=round(max(walls), 2),
            **{f"{step}_s": round(statistics.median(times), 3) for step, times in steps.items()},
        )
    finally:
        stop_fleet(fleet)
        for peer in peers:
            peer.stop()


if __name__ == "__main__":  # pragma: no cover - run through bench.py
    sys.exit("run scripts/bench.sh --parts failover")
