"""How long from saving a job to its arrival on every peer, with the agent running.

Starts throwaway Samba peers on loopback (as the tests do), runs ``jobsync watch`` against
them, saves one job at a time, and times until every peer holds the new content (the agent
renames a file into place only after reading it back, so arrival means verified arrival).

    .venv/bin/python benchmarks/agent_latency.py [--edits 60] [--peers 2] [--jobs 1000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from samba import SambaPeer, start_peer

EDIT_DEADLINE_SECONDS = 60


def arrived(folders: list[Path], name: str, content: bytes) -> bool:
    """Whether every peer folder holds ``content`` under ``name``."""
    for folder in folders:
        try:
            if (folder / name).read_bytes() != content:
                return False
        except FileNotFoundError:
            return False
    return True


def main() -> int:
    """Run the measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=60)
    parser.add_argument("--peers", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=1000, help="jobs already in the folder")
    parser.add_argument("--debounce-ms", type=int, default=500)
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="jobsync-bench-"))
    base.chmod(0o755)
    peers: list[SambaPeer] = []
    agent = None
    try:
        peers = [start_peer(base) for _ in range(args.peers)]
        source = base / "source"
        source.mkdir()
        for i in range(args.jobs):
            (source / f"job{i:05d}.jobs").write_bytes(os.urandom(1500))
        folders, lines = [], ['node = "node1"', f"source = '{source}'"]
        lines += [f"[watch]\ndebounce_ms = {args.debounce_ms}"]
        for i, peer in enumerate(peers):
            folders.append(peer.mkdir("jobs"))
            lines += [
                "[[peers]]",
                f'name = "peer{i}"',
                f"path = '{peer.unc('jobs')}'",
                f"port = {peer.port}",
                f'username = "{peer.user}"',
                'password_env = "BENCH_PW"',
            ]
        config = base / "jobsync.toml"
        config.write_text("\n".join(lines) + "\n")
        env = {**os.environ, "BENCH_PW": peers[0].password}
        agent = subprocess.Popen(
            [sys.executable, "-m", "jobsync", "watch", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + 300
        while not all(len(list(f.glob("*.jobs"))) == args.jobs for f in folders):
            if time.monotonic() > deadline:
                raise SystemExit("the initial push did not finish")
            time.sleep(0.05)

        delays = []
        for edit in range(args.edits):
            name = f"job{edit % args.jobs:05d}.jobs"
            content = f"edit {edit} ".encode() * 150
            saved = time.monotonic()
            (source / name).write_bytes(content)
            while not arrived(folders, name, content):
                if time.monotonic() - saved > EDIT_DEADLINE_SECONDS:
                    raise SystemExit(f"edit {edit} never arrived")
                time.sleep(0.002)
            delays.append(time.monotonic() - saved)
            time.sleep(0.05)  # the next save is a separate edit, not part of a burst
        delays.sort()
        p99 = delays[min(len(delays) - 1, round(0.99 * (len(delays) - 1)))]
        print(
            f"{args.edits} edits, {args.peers} peers, {args.jobs} jobs, "
            f"debounce {args.debounce_ms} ms: "
            f"median {statistics.median(delays) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
            f"worst {delays[-1] * 1000:.0f} ms, "
            f"median beyond the debounce window "
            f"{statistics.median(delays) * 1000 - args.debounce_ms:.0f} ms"
        )
        return 0
    finally:
        if agent is not None:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=30)
        for peer in peers:
            peer.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
