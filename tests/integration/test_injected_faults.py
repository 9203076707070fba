"""Faults injected against real smbd peers.

Cut and stalled connections, restarts, a full disk, kill -9 at random moments. After each: no
partial job on any peer, and the next run converges.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cluster import Cluster, jobs_on, leftover_temps
from support.polling import wait_for
from support.smbd import DEFAULT_PASSWORD, PASSWORD_ENV
from support.tcp_proxy import Proxy

pytestmark = pytest.mark.smb

KILL_ROUNDS = 25


@pytest.fixture
def proxy_for_node2(smb_cluster: Cluster) -> Iterator[Proxy]:
    """node2 reached through a proxy that can cut or stall the connection."""
    proxy = Proxy(smb_cluster.smb["node2"].port)
    smb_cluster.ports["node2"] = proxy.port
    yield proxy
    proxy.close()


def _complete_only(folder: Path, versions: dict[str, set[bytes]]) -> list[str]:
    """Job files in ``folder`` whose content is not a version the source really had."""
    return [name for name, data in jobs_on(folder).items() if data not in versions.get(name, set())]


def _tmp_empty(folder: Path) -> bool:
    return not leftover_temps(folder)


def _big_jobs(cluster: Cluster, count: int, size: int, tag: str) -> dict[str, set[bytes]]:
    versions: dict[str, set[bytes]] = {}
    for i in range(count):
        data = f"{tag}-{i}|".encode() + os.urandom(size)
        cluster.write_job(f"big{i:02d}.jobs", data)
        versions[f"big{i:02d}.jobs"] = {data}
    return versions


def test_connection_cut_mid_transfer(smb_cluster: Cluster, proxy_for_node2: Proxy) -> None:
    """A TCP connection dropped mid-transfer fails that peer alone, leaving nothing partial.

    Exit 3 naming the peer; the next push converges with no temp file left.
    """
    versions = _big_jobs(smb_cluster, 30, 150_000, "v1")
    proxy_for_node2.cut_after(1_500_000)

    run = smb_cluster.run("push", "--json")

    assert run.code == 3, run
    peers = {p["name"]: p for p in run.json()["peers"]}
    assert "node2" in peers["node2"]["error"]
    assert peers["node3"]["status"] == "ok"
    assert _complete_only(smb_cluster.disk("node2"), versions) == []

    assert smb_cluster.run("push").code == 0
    assert jobs_on(smb_cluster.disk("node2")) == {n: next(iter(v)) for n, v in versions.items()}
    assert _tmp_empty(smb_cluster.disk("node2"))


def test_connection_stalled_mid_transfer(smb_cluster: Cluster, proxy_for_node2: Proxy) -> None:
    """Bytes that stop moving mid-transfer: the push gives up on that peer within a few timeouts."""
    versions = _big_jobs(smb_cluster, 30, 150_000, "v1")
    smb_cluster.timeout = 2.0
    stall = threading.Thread(
        target=lambda: (
            wait_for(lambda: proxy_for_node2.forwarded > 1_000_000, what="transfer under way"),
            proxy_for_node2.stall(),
        )
    )
    stall.start()
    started = time.monotonic()
    run = smb_cluster.run("push", "--json")
    elapsed = time.monotonic() - started
    stall.join()

    assert run.code == 3, run
    assert elapsed < 4 * smb_cluster.timeout + 10, elapsed
    assert "no answer within 2 s" in run.json()["peers"][0]["error"]
    assert _complete_only(smb_cluster.disk("node2"), versions) == []
    proxy_for_node2.resume()
    proxy_for_node2.cut()
    smb_cluster.timeout = 5.0
    assert smb_cluster.run("push").code == 0
    assert _tmp_empty(smb_cluster.disk("node2"))


def test_peer_restarted_mid_push(smb_cluster: Cluster) -> None:
    """A peer restarting mid-push: that peer fails, nothing partial, then it converges."""
    versions = _big_jobs(smb_cluster, 40, 100_000, "v1")
    samba = smb_cluster.smb["node2"]
    folder = smb_cluster.disk("node2")

    def restart_when_busy() -> None:
        wait_for(lambda: leftover_temps(folder), timeout=30, what="copy under way")
        samba.restart()

    restarter = threading.Thread(target=restart_when_busy)
    restarter.start()
    run = smb_cluster.run("push")
    restarter.join()

    assert run.code in (0, 3), run  # 0 only if every copy had landed before the restart
    assert _complete_only(smb_cluster.disk("node2"), versions) == []
    assert smb_cluster.run("push").code == 0
    assert _complete_only(smb_cluster.disk("node2"), versions) == []
    assert len(jobs_on(smb_cluster.disk("node2"))) == 40
    assert _tmp_empty(smb_cluster.disk("node2"))


@pytest.fixture
def tiny_disk_peer(smb_cluster: Cluster) -> Iterator[Path]:
    """node2's jobs folder on a 1 MiB file system (tmpfs), so that it fills up."""
    samba = smb_cluster.smb["node2"]
    mount_point = samba.mkdir(f"tiny-{os.getpid()}-{time.monotonic_ns()}")
    uid, gid = mount_point.stat().st_uid, mount_point.stat().st_gid
    done = subprocess.run(
        [
            "mount",
            "-t",
            "tmpfs",
            "-o",
            f"size=1m,mode=0755,uid={uid},gid={gid}",
            "tmpfs",
            str(mount_point),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a small tmpfs for the disk-full test: {done.stderr.strip()}")
    jobs = mount_point / "jobs"
    jobs.mkdir()
    shutil.chown(jobs, uid, gid)
    name = "node2"
    smb_cluster.peers = [(name, samba.unc(mount_point.name, "jobs"), jobs), smb_cluster.peers[1]]
    yield jobs
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_full_disk_fails_clearly_without_partial_files(
    smb_cluster: Cluster, tiny_disk_peer: Path
) -> None:
    """A peer whose disk fills up: a clear error naming it, no partial file, temp files cleaned."""
    versions = _big_jobs(smb_cluster, 5, 300_000, "v1")

    run = smb_cluster.run("push", "--json")

    assert run.code == 3, run
    node2 = next(p for p in run.json()["peers"] if p["name"] == "node2")
    reasons = [f["reason"] for f in node2["failed"]] + [node2["error"] or ""]
    assert any("node2" in r and "disk full" in r for r in reasons), reasons
    assert _complete_only(tiny_disk_peer, versions) == []
    assert _tmp_empty(tiny_disk_peer)
    node3 = next(p for p in run.json()["peers"] if p["name"] == "node3")
    assert len(node3["copied"]) == 5


def test_kill_9_at_random_moments_never_leaves_a_partial_job(smb_cluster: Cluster) -> None:
    """Kill -9 at random moments, many rounds, while the source keeps changing.

    Every job on every peer is always a version the source really had, and the last run
    converges.
    """
    seed = int(os.environ.get("JOBSYNC_FAULT_SEED", time.time_ns()))
    rng = random.Random(seed)  # noqa: S311 - fault timing, not cryptography
    versions: dict[str, set[bytes]] = {}

    def save(round_: int) -> None:
        for i in rng.sample(range(60), 20):
            data = f"round {round_} job {i} ".encode() * rng.randint(20, 4000)
            smb_cluster.write_job(f"job{i:02d}.jobs", data)
            versions.setdefault(f"job{i:02d}.jobs", set()).add(data)

    env = {**os.environ, PASSWORD_ENV: DEFAULT_PASSWORD}
    checked = 0
    for round_ in range(KILL_ROUNDS):
        save(round_)
        push = subprocess.Popen(
            [sys.executable, "-m", "jobsync", "push", "-c", str(smb_cluster.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        kill_at = time.monotonic() + rng.uniform(0.05, 0.8)
        wait_for(lambda p=push, t=kill_at: time.monotonic() >= t or p.poll() is not None)
        push.kill()
        push.wait()
        for _, _, folder in smb_cluster.peers:
            bad = _complete_only(folder, versions)
            assert bad == [], f"seed {seed}, round {round_}: partial or unknown {bad}"
            checked += len(jobs_on(folder))
    assert smb_cluster.run("push").code == 0
    final = {p.name: p.read_bytes() for p in smb_cluster.source.glob("*.jobs")}
    for _, _, folder in smb_cluster.peers:
        assert jobs_on(folder) == final
        assert _tmp_empty(folder)
    print(f"kill -9 rounds: {KILL_ROUNDS}, peer files checked: {checked}, seed {seed}")  # noqa: T201
