"""A failover, end to end, on three throwaway Samba nodes: what an operator sees at each step.

Run as root after scripts/demo.sh has installed everything:
    .venv/bin/python scripts/failover_demo.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import jobsync.__main__  # noqa: F401 - only to stop early, and clearly, without jobsync's libraries
except ImportError as missing:
    raise SystemExit(
        f"failover_demo: {missing.name} is not installed for this Python; run scripts/demo.sh "
        "once, then: .venv/bin/python scripts/failover_demo.py"
    ) from None

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.smbd import SambaPeer, start_peer

PASSWORD_ENV = "JOBSYNC_DEMO_PASSWORD"  # noqa: S105 - the name of a variable, not a secret


def write_config(base: Path, name: str, nodes: dict[str, SambaPeer], folder: Path) -> Path:
    """The config of one node: its own folder as source, the other nodes as peers."""
    lines = [
        f'node = "{name}"',
        "node_differs_from_host = true",
        f"source = '{folder}'",
        "timeout_seconds = 3",
    ]
    for other, samba in nodes.items():
        if other != name:
            lines += samba.peer_toml(other, "integrify", "jobs", password_env=PASSWORD_ENV)
    config = base / f"{name}.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def main() -> int:
    """Run the scenario; returns 0 when every step gave the expected exit code."""
    base = Path(tempfile.mkdtemp(prefix="jobsync-failover-"))
    base.chmod(0o755)
    nodes: dict[str, SambaPeer] = {}
    try:
        nodes = {name: start_peer(base) for name in ("node1", "node2", "node3")}
        folders = {name: samba.mkdir("integrify", "jobs") for name, samba in nodes.items()}
        configs = {name: write_config(base, name, nodes, folders[name]) for name in nodes}
        env = {**os.environ, PASSWORD_ENV: nodes["node1"].password, "NO_COLOR": "1"}
        ok = True

        def run(node: str, *args: str, expect: int) -> None:
            nonlocal ok
            print(f"\n[{node}] $ jobsync {' '.join(args)}", flush=True)
            done = subprocess.run(
                [sys.executable, "-m", "jobsync", *args, "-c", str(configs[node])],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            print((done.stdout + done.stderr).rstrip())
            print(f"(exit code {done.returncode})", flush=True)
            ok = ok and done.returncode == expect

        def note(text: str) -> None:
            print(f"\n# {text}", flush=True)

        a = folders["node1"]
        note("node1 is the services node; it pushes its jobs to node2 and node3")
        (a / "Weekly Report.jobs").write_text("v1\n")
        (a / "Nightly Cleanup.jobs").write_text("cleanup\n")
        (a / "Old Export.jobs").write_text("retired soon\n")
        run("node1", "push", expect=0)
        note("node1 changes a job and deletes one; only node3 gets the push, then node1 dies")
        (a / "Weekly Report.jobs").write_text("v2: saved just before the crash\n")
        (a / "Old Export.jobs").unlink()
        run("node1", "push", "--peer", "node3", expect=0)
        nodes["node1"].stop()
        note("on node2, before starting the Integrify services: what does it lack?")
        run("node2", "reconcile", expect=3)
        run("node2", "takeover", "--dry-run", expect=3)
        run("node2", "takeover", expect=3)
        note("node1 comes back, still configured as if it were the services node")
        nodes["node1"].start()
        (a / "Weekly Report.jobs").write_text("v3: the old node's stale edit\n")
        run("node1", "push", expect=4)
        note("node2, the new services node, brings everyone in line")
        run("node2", "push", expect=0)
        run("node2", "reconcile", expect=0)
        run("node1", "push", expect=4)
        print("\nfailover demo: " + ("every step as expected" if ok else "UNEXPECTED exit codes"))
        return 0 if ok else 1
    finally:
        for samba in nodes.values():
            samba.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
