"""The fleet check's part of the benchmark: every item on 3 and 8 nodes, and one node's cost.

The site of the fleet check's tests (tests/support/fleet_bed.py): real smbd nodes with Integrify's
files on ``C$``, Samba's Spooler over MS-SCMR, a hosts file, an HTTP healthcheck each, one more
smbd as the NAS, and a local HTTPS balancer. Each run is ``jobsync check --fleet --json`` from
the services node, timed as an administrator sees it (interpreter start included).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.failover_bed import stop_fleet
from support.fleet_bed import make_site
from support.smbd import DEFAULT_PASSWORD, PASSWORD_ENV, SambaPeer, start_peer

Record = Callable[..., None]
TARGET_SECONDS = 3.0  # issue 24: 8 nodes, every item


def _time_check(site_dir: Path, nodes: int, runs: int) -> tuple[float, float]:
    """Median and slowest wall time of ``check --fleet`` on a site of ``nodes`` nodes."""
    peers: list[SambaPeer] = []

    def make_samba(**settings: Any) -> SambaPeer:  # noqa: ANN401
        peer = start_peer(site_dir, **settings)
        peers.append(peer)
        return peer

    site_dir.mkdir()
    site = make_site(site_dir, make_samba, names=tuple(f"n{i}" for i in range(1, nodes + 1)))
    try:
        n1 = site.nodes["n1"]
        walls = []
        for _ in range(runs):
            started = time.perf_counter()
            done = n1.run("check", "--fleet", "--json")
            walls.append(time.perf_counter() - started)
            document = json.loads(done.stdout)
            if done.returncode != 0 or document["fail"]:
                raise SystemExit(f"the fleet check failed on a passing site:\n{done.stdout}")
        return statistics.median(walls), max(walls)
    finally:
        stop_fleet(site.nodes)
        site.balancer.stop()
        for peer in peers:
            peer.stop()


def run_fleet_part(base: Path, record: Record, *, runs: int) -> None:
    """``check --fleet`` on 3 and 8 nodes: the time, and what each node beyond 3 adds."""
    os.environ[PASSWORD_ENV] = DEFAULT_PASSWORD
    three, _slowest = _time_check(base / "fleet3", 3, runs)
    eight, eight_slowest = _time_check(base / "fleet8", 8, runs)
    record(
        f"jobsync check --fleet, every item, 3 and 8 nodes (median of {runs})",
        three_nodes_s=round(three, 2),
        eight_nodes_s=round(eight, 2),
        slowest_eight_s=round(eight_slowest, 2),
        per_extra_node_ms=round((eight - three) / 5 * 1000),
        within_target=eight_slowest < TARGET_SECONDS,
    )


if __name__ == "__main__":  # pragma: no cover - run through bench.py
    sys.exit("run scripts/bench.sh --parts fleet")
