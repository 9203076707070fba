"""jobsync against Samba's own client, on throwaway Samba peers on loopback; one run, side by side.

Measures: a full push of N jobs to K peers against `smbclient mput` to the same peers one
after another (the script an administrator would write); a push when nothing changed; reconcile
and reconcile --deep on an in-sync cluster; the agent's delay from saving a job to its arrival
on every peer, also with one peer frozen; the idle agent's CPU and memory; what serving the
status page costs the agent; a failover of 3 nodes, from the command to a passing
healthcheck. Prints a table and writes the figures as JSON. Run it with scripts/bench.sh.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from failover_part import run_failover_part
from fleet_part import run_fleet_part

from support.ports import free_port
from support.smbd import SambaPeer, start_peer

PASSWORD_ENV = "JOBSYNC_BENCH_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
EDIT_DEADLINE_SECONDS = 60
# push: full, no-op, reconcile; agent: save-to-arrival delay, idle; page: the status page's
# cost; failover: jobsync failover from the command to a passing healthcheck; fleet: jobsync
# check --fleet on 3 and 8 nodes
PARTS = ("push", "agent", "page", "failover", "fleet")
FLEET_RUNS = 5
FAILOVER_RUNS = 5
NOOP_RUNS = 7
LARGE_EVERY_HUNDREDTH = 7  # job 7, 107, 207, ... is a larger one


@dataclass
class Bench:
    """The peers, the source folder and the config of one benchmark run."""

    base: Path
    peers: list[SambaPeer]
    source: Path
    config: Path
    rng: random.Random
    rows: list[dict[str, Any]] = field(default_factory=list)
    health_port: int = 0

    @property
    def env(self) -> dict[str, str]:
        """The environment jobsync runs with."""
        return {**os.environ, PASSWORD_ENV: self.peers[0].password}

    def folders(self) -> list[Path]:
        """Each peer's jobs folder on disk."""
        return [peer.share_path / "jobs" for peer in self.peers]

    def jobsync(self, *args: str) -> float:
        """Seconds one `python -m jobsync ...` takes, interpreter start-up included."""
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "jobsync", *args, "-c", str(self.config)],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"jobsync {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return seconds

    def add_jobs(self, count: int, start: int) -> None:
        """Create jobs of 0.5-3.5 KB, one in a hundred of 50-200 KB."""
        for i in range(start, start + count):
            large = i % 100 == LARGE_EVERY_HUNDREDTH
            size = self.rng.randint(50_000, 200_000) if large else self.rng.randint(500, 3500)
            (self.source / f"job{i:05d}.jobs").write_bytes(os.urandom(size))

    def record(self, what: str, **figures: Any) -> None:  # noqa: ANN401
        """Keep one result and show it at once."""
        row = {"measure": what, **figures}
        self.rows.append(row)
        shown = ", ".join(f"{k} {v}" for k, v in figures.items())
        print(f"{what}: {shown}", flush=True)


def smbclient(bench: Bench, peer: SambaPeer, commands: str) -> str:
    """Run Samba's own client on one peer's share, encrypted as jobsync is; its output."""
    auth = bench.base / "smbclient.auth"
    if not auth.exists():
        peer0 = bench.peers[0]
        auth.write_text(f"username = {peer0.user}\npassword = {peer0.password}\n")
        auth.chmod(0o600)
    done = subprocess.run(
        [
            "smbclient",
            "//127.0.0.1/jobs",
            "-p",
            str(peer.port),
            "-A",
            str(auth),
            "--client-protection=encrypt",
            "-c",
            commands,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"smbclient failed: {done.stderr[-500:]}")
    return done.stdout


def mput(bench: Bench, files: int, source: Path | None = None) -> float:
    """Seconds `smbclient -c 'mput *.jobs'` from ``source`` takes to every peer, in turn.

    ``files`` is how many jobs the peers' `mput` folder must hold afterwards.
    """
    started = time.perf_counter()
    for peer in bench.peers:
        peer.mkdir("mput")
        smbclient(bench, peer, f"prompt OFF; lcd {source or bench.source}; cd mput; mput *.jobs")
    seconds = time.perf_counter() - started
    landed = len(list((bench.peers[-1].share_path / "mput").glob("*.jobs")))
    if landed != files:
        raise SystemExit(f"smbclient put {landed} of {files} files")
    return seconds


def agent_delays(bench: Bench, edits: int, folders: list[Path]) -> list[float]:
    """Seconds from saving a job to its arrival in every one of ``folders``, per edit."""
    names = sorted(p.name for p in bench.source.glob("*.jobs"))
    delays = []
    for edit in range(edits):
        name = bench.rng.choice(names)
        content = f"edit {edit} {time.time_ns()} ".encode() * 60
        saved = time.monotonic()
        (bench.source / name).write_bytes(content)
        while not all(_holds(f / name, content) for f in folders):
            if time.monotonic() - saved > EDIT_DEADLINE_SECONDS:
                raise SystemExit(f"edit {edit} of {name} never arrived")
            time.sleep(0.002)
        delays.append(time.monotonic() - saved)
        time.sleep(0.05)  # the next save is a separate edit, not part of a burst
    return delays


def _holds(path: Path, content: bytes) -> bool:
    try:
        return path.read_bytes() == content
    except FileNotFoundError:
        return False


def _summary(delays: list[float]) -> dict[str, float]:
    ordered = sorted(delays)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(ordered) * 1000), "p99_ms": round(p99 * 1000)}


@contextmanager
def running_agent(bench: Bench) -> Iterator[subprocess.Popen[bytes]]:
    """`jobsync watch`, once its start-up pass reached every peer; stopped afterwards."""
    state = bench.base / "state" / "agent.json"
    state.unlink(missing_ok=True)  # an earlier agent's state would pass for this one's
    agent = subprocess.Popen(
        [sys.executable, "-m", "jobsync", "watch", "-c", str(bench.config)],
        env=bench.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not _synced(state, len(bench.peers)):
            if time.monotonic() > deadline:
                raise SystemExit("the agent's start-up push did not finish")
            time.sleep(0.1)
        yield agent
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)


def run_page_part(bench: Bench, *, requests: int) -> None:
    """CPU and memory the agent spends serving its status page (and /healthz to compare)."""
    with running_agent(bench) as agent:
        process = psutil.Process(agent.pid)
        for path in ("/", "/healthz"):
            url = f"http://127.0.0.1:{bench.health_port}{path}"
            for _ in range(20):  # warm up: first requests load modules and fill caches
                size = len(_get(url))
            rss_before = process.memory_info().rss
            cpu_before = process.cpu_times()
            started = time.perf_counter()
            for _ in range(requests):
                _get(url)
            seconds = time.perf_counter() - started
            cpu_after = process.cpu_times()
            cpu = cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system
            bench.record(
                f"{path} served {requests} times by the agent",
                cpu_ms_per_request=round(cpu / requests * 1000, 2),
                wall_ms_per_request=round(seconds / requests * 1000, 2),
                rss_before_mb=round(rss_before / 2**20, 1),
                rss_after_mb=round(process.memory_info().rss / 2**20, 1),
                bytes=size,
            )


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback, our own
        return answer.read()  # type: ignore[no-any-return]


def run_agent_part(bench: Bench, *, edits: int, idle_seconds: float, debounce_ms: int) -> None:
    """Delays with all peers healthy, then with one frozen; then the idle agent's cost."""
    with running_agent(bench) as agent:
        state = bench.base / "state" / "agent.json"
        healthy = _summary(agent_delays(bench, edits, bench.folders()))
        bench.record(
            f"agent delay, {edits} edits, all peers healthy", debounce_ms=debounce_ms, **healthy
        )
        bench.peers[0].freeze()
        try:
            frozen = _summary(agent_delays(bench, edits, bench.folders()[1:]))
        finally:
            bench.peers[0].thaw()
        bench.record(f"agent delay, {edits} edits, one peer frozen (healthy peers)", **frozen)
        deadline = time.monotonic() + 120
        while not _synced(state, len(bench.peers), pending_zero=True):
            if time.monotonic() > deadline:
                raise SystemExit("the frozen peer did not catch up")
            time.sleep(0.1)
        process = psutil.Process(agent.pid)
        before = process.cpu_times()
        time.sleep(idle_seconds)
        after = process.cpu_times()
        cpu = (after.user + after.system - before.user - before.system) / idle_seconds * 100
        rss = process.memory_info().rss / 2**20
        bench.record(
            f"idle agent over {idle_seconds:g} s", cpu_percent=round(cpu, 2), rss_mb=round(rss, 1)
        )


def _synced(state: Path, peers: int, *, pending_zero: bool = False) -> bool:
    try:
        doc = json.loads(state.read_text())
    except (OSError, ValueError):
        return False
    entries = doc.get("peers", [])
    if len(entries) != peers:
        return False
    return all(
        p.get("last_success") and (p.get("pending") == 0 or not pending_zero) for p in entries
    )


def write_config(bench: Bench, debounce_ms: int) -> None:
    """A config pushing the source to every peer's `jobs` folder."""
    lines = [
        'node = "bench"',
        "node_differs_from_host = true",
        f"source = '{bench.source}'",
        f"[watch]\ndebounce_ms = {debounce_ms}",
        f'[health]\nlisten = "127.0.0.1:{bench.health_port}"',
    ]
    for i, peer in enumerate(bench.peers):
        peer.mkdir("jobs")
        lines += peer.peer_toml(f"peer{i}", "jobs", password_env=PASSWORD_ENV)
    bench.config.write_text("\n".join(lines) + "\n")


def main() -> int:
    """Run every measurement; print the table; write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--large", type=int, default=10_000, help="the larger folder size")
    parser.add_argument("--peers", type=int, default=3)
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--debounce-ms", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--page-requests", type=int, default=1000)
    parser.add_argument("--json-out", type=Path, default=Path("benchmarks/results/latest.json"))
    parser.add_argument(
        "--parts",
        choices=PARTS,
        nargs="+",
        default=list(PARTS),
        help="which measurements to run (default: all); without 'push' the larger folder is "
        "still filled and pushed once so the agent starts in sync",
    )
    args = parser.parse_args()

    # jobsync as installed: pip compiles a package's modules when it installs it, and an
    # editable checkout run with PYTHONDONTWRITEBYTECODE would compile them at every start.
    compileall.compile_dir(Path(__file__).resolve().parent.parent / "jobsync", quiet=1)
    base = Path(tempfile.mkdtemp(prefix="jobsync-bench-"))
    base.chmod(0o755)
    peers: list[SambaPeer] = []
    try:
        peers = [start_peer(base) for _ in range(args.peers)]
        rng = random.Random(args.seed)  # noqa: S311 - test data, not secrets
        bench = Bench(
            base, peers, base / "source", base / "jobsync.toml", rng, health_port=free_port()
        )
        bench.source.mkdir()
        write_config(bench, args.debounce_ms)
        n = args.files
        if "push" in args.parts:
            run_push_part(bench, files=n, large=args.large)
        elif set(args.parts) <= {"failover", "fleet"}:
            pass  # these parts have their own nodes
        else:
            bench.add_jobs(max(n, args.large), 0)
            bench.jobsync("push")  # the agent part starts from peers already in sync
        if "agent" in args.parts:
            run_agent_part(
                bench,
                edits=args.edits,
                idle_seconds=args.idle_seconds,
                debounce_ms=args.debounce_ms,
            )
        if "page" in args.parts:
            run_page_part(bench, requests=args.page_requests)
        if "failover" in args.parts:
            run_failover_part(base, bench.record, files=n, runs=FAILOVER_RUNS)
        if "fleet" in args.parts:
            run_fleet_part(base, bench.record, runs=FLEET_RUNS)

        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        machine = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
        args.json_out.write_text(json.dumps({"machine": machine, "results": bench.rows}, indent=1))
        print(f"\nwrote {args.json_out}")
        return 0
    finally:
        for peer in peers:
            peer.stop()
        shutil.rmtree(base, ignore_errors=True)


def list_every_peer(bench: Bench, files: int) -> float:
    """Seconds `smbclient -c 'ls'` of every peer's jobs takes, one after another.

    The least a scheduled script could do to see that nothing changed: log on and list.
    """
    started = time.perf_counter()
    for peer in bench.peers:
        listing = smbclient(bench, peer, "cd jobs; ls *.jobs")
        if listing.count(".jobs") < files:
            raise SystemExit(f"smbclient listed fewer than {files} jobs")
    return time.perf_counter() - started


def noop_against_ls(bench: Bench, files: int) -> tuple[float, float]:
    """Median seconds of a no-op push and of `smbclient ls` of every peer, runs interleaved.

    Both take a fraction of a second, where the noise of one run (another process waking, a
    cold cache) moves a ratio by a fifth.
    """
    pushes, listings = [], []
    for _ in range(NOOP_RUNS):
        pushes.append(bench.jobsync("push"))
        listings.append(list_every_peer(bench, files))
    return statistics.median(pushes), statistics.median(listings)


def run_push_part(bench: Bench, *, files: int, large: int) -> None:
    """Full push against mput, then no-op push and reconcile at both folder sizes."""
    n, k = files, len(bench.peers)
    bench.add_jobs(n, 0)
    baseline = mput(bench, n)
    full = bench.jobsync("push")
    bench.record(
        f"full push, {n} jobs to {k} peers",
        jobsync_s=round(full, 2),
        jobsync_files_per_s=round(n * k / full),
        mput_s=round(baseline, 2),
        mput_files_per_s=round(n * k / baseline),
        ratio_jobsync_over_mput=round(full / baseline, 2),
    )
    for size in (n, large):
        if size > n:
            bench.add_jobs(size - n, n)
            added = bench.base / "added"  # the new jobs alone, for mput
            added.mkdir()
            for i in range(n, size):
                name = f"job{i:05d}.jobs"
                (added / name).hardlink_to(bench.source / name)
            baseline = mput(bench, size, added)
            seconds = bench.jobsync("push")
            # Samba looks a new name up case-insensitively in the whole folder, so creating
            # files in a large folder costs both clients more per file than in an empty one.
            bench.record(
                f"full push of {size - n} added jobs to {n} already there",
                jobsync_s=round(seconds, 2),
                mput_s=round(baseline, 2),
                ratio_jobsync_over_mput=round(seconds / baseline, 2),
            )
        noop, ls = noop_against_ls(bench, size)
        bench.record(
            f"no-op push, {size} jobs, {k} peers (median of {NOOP_RUNS} runs)",
            seconds=round(noop, 2),
            smbclient_ls_s=round(ls, 2),
            ratio_jobsync_over_ls=round(noop / ls, 2),
        )
        bench.record(
            f"reconcile, {size} jobs, {k} peers", seconds=round(bench.jobsync("reconcile"), 2)
        )
        bench.record(
            f"reconcile --deep, {size} jobs, {k} peers",
            seconds=round(bench.jobsync("reconcile", "--deep"), 2),
        )


if __name__ == "__main__":
    sys.exit(main())
