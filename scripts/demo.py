"""The demo behind scripts/demo.sh: two Samba peers on loopback and a few pushes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.smbd import SambaPeer, SambaUnavailableError, start_peer

JOBSYNC = [sys.executable, "-m", "jobsync"]
PASSWORD_ENV = "JOBSYNC_DEMO_PASSWORD"  # noqa: S105 - the name of a variable, not a secret


def say(text: str) -> None:
    """Print a heading."""
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def run(*args: str, config: Path, env: dict[str, str]) -> None:
    """Show and run one jobsync command."""
    print(f"$ jobsync {' '.join(args)}", flush=True)
    done = subprocess.run([*JOBSYNC, *args, "-c", str(config)], env=env, check=False)
    print(f"(exit code {done.returncode})", flush=True)


def show(peer: str, folder: Path) -> None:
    """List a peer's jobs folder as it is on disk, .jobsync included."""
    print(f"{peer}: {folder}")
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            print(f"  {path.relative_to(folder)}  ({path.stat().st_size} bytes)")


def wait_until(check: Callable[[], bool], timeout: float = 20) -> float:
    """Poll ``check``; returns the seconds it took (fails the demo on timeout)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise SystemExit("demo: timed out waiting for the agent")
        time.sleep(0.01)
    return time.monotonic() - started


def watch_demo(source: Path, folders: list[Path], *, config: Path, env: dict[str, str]) -> None:
    """Start the agent, save and delete jobs, show them arrive on both peers, stop it."""
    print("$ jobsync watch   (in the background)", flush=True)
    agent = subprocess.Popen([*JOBSYNC, "watch", "-c", str(config)], env=env)
    try:
        time.sleep(1)  # let it finish its start-up push
        for name, text in [
            ("Month End.jobs", "new job"),
            ("Nightly Cleanup.jobs", "changed again"),
        ]:
            (source / name).write_text(text + "\n")
            took = wait_until(
                lambda n=name, t=text: all(
                    (f / n).exists() and (f / n).read_text() == t + "\n" for f in folders
                )
            )
            print(f"saved {name!r}: on both peers {took:.2f} s later", flush=True)
        (source / "Month End.jobs").unlink()
        took = wait_until(lambda: not any((f / "Month End.jobs").exists() for f in folders))
        print(f"deleted 'Month End.jobs': gone from both peers (kept in trash) {took:.2f} s later")
        run("status", config=config, env=env)
    finally:
        agent.send_signal(signal.SIGTERM)
        print(f"agent stopped with exit code {agent.wait(timeout=30)}", flush=True)


def main() -> int:
    """Run the demo; returns the exit code."""
    base = Path(tempfile.mkdtemp(prefix="jobsync-demo-"))
    base.chmod(0o755)
    peers: list[SambaPeer] = []
    try:
        try:
            peers = [start_peer(base), start_peer(base)]
        except SambaUnavailableError as exc:
            print(f"demo: cannot start Samba: {exc}", file=sys.stderr)
            return 1
        source = base / "node1-jobs"
        source.mkdir()
        for i, name in enumerate(["Weekly Sales Report", "Nightly Cleanup", "Invoice Reminders"]):
            (source / f"{name}.jobs").write_text(f'{{"job": "{name}", "cron": "0 {i} * * *"}}\n')
        config = base / "jobsync.toml"
        lines = [
            'node = "node1"',
            "node_differs_from_host = true",
            f"source = '{source}'",
            "timeout_seconds = 5",
        ]
        folders = []
        for index, peer in enumerate(peers, start=2):
            folders.append(peer.mkdir("integrify", "jobs"))
            lines += [
                "",
                *peer.peer_toml(f"node{index}", "integrify", "jobs", password_env=PASSWORD_ENV),
            ]
        config.write_text("\n".join(lines) + "\n")
        env = {**os.environ, PASSWORD_ENV: peers[0].password}

        say("The config (the password comes from an environment variable)")
        print(config.read_text())
        say("jobsync check: can we log on, create, rename and remove on each peer?")
        run("check", config=config, env=env)
        say("First push: every job goes to both peers over SMB3, encrypted and verified")
        run("push", config=config, env=env)
        show("node2", folders[0])

        say("Change one job, delete one, and hand-edit a job on node2")
        time.sleep(0.01)
        changed = '{"job": "Nightly Cleanup", "cron": "30 2 * * *"}\n'
        (source / "Nightly Cleanup.jobs").write_text(changed)
        (source / "Invoice Reminders.jobs").unlink()
        (folders[0] / "Weekly Sales Report.jobs").write_text("edited by hand on node2\n")
        run("push", "--dry-run", config=config, env=env)
        run("push", config=config, env=env)
        show("node2", folders[0])
        print("\nThe deleted job is in .jobsync/trash, the hand edit in .jobsync/backup.")

        say("Nothing changed: nothing is rewritten")
        run("push", config=config, env=env)

        say("The agent: jobsync watch pushes each change as it is saved")
        watch_demo(source, folders, config=config, env=env)
        return 0
    finally:
        for peer in peers:
            peer.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
