"""Security promises against real smbd peers: secrets never printed, files not world-writable."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from support.agent import AgentProcess, agent_config
from support.cluster import Cluster
from support.polling import wait_for
from support.smbd import DEFAULT_PASSWORD, PASSWORD_ENV

pytestmark = pytest.mark.smb

WRONG = "Wr0ng-but-secret-pw"


@pytest.mark.parametrize(
    "flags",
    [(), ("-v",), ("--log-json",), ("-v", "--log-json")],
    ids=["default", "verbose", "json", "verbose-json"],
)
def test_password_never_printed_or_logged(smb_cluster: Cluster, flags: tuple[str, ...]) -> None:
    """Neither password appears on stdout, stderr or in the log file, at any verbosity.

    The SMB library fails on purpose: a wrong password on node2, node3 stopped.
    """
    smb_cluster.write_job("a.jobs", b"a")
    config = smb_cluster.variant(
        "wrong.toml", f'password_env = "{PASSWORD_ENV}"', 'password_env = "JOBSYNC_WRONG_PW"'
    )
    smb_cluster.smb["node3"].stop()
    log = smb_cluster.root / "jobsync.log"

    for command in (("push",), ("check",), ("reconcile", "--deep")):
        done = smb_cluster.run_process(
            *command,
            *flags,
            "--log-file",
            str(log),
            config=config,
            env={"JOBSYNC_WRONG_PW": WRONG},
        )
        assert done.code == 3, (command, done)
        everything = done.out + done.err + log.read_text(encoding="utf-8")
        assert WRONG not in everything, command
        assert DEFAULT_PASSWORD not in everything, command
        assert "Traceback" not in done.out + done.err
    assert log.read_text(encoding="utf-8").strip()  # the log file really was written


def _not_world_writable(path: Path) -> bool:
    return not path.stat().st_mode & stat.S_IWOTH


def test_logs_and_state_files_are_not_world_writable(smb_cluster: Cluster) -> None:
    """The log file is its owner's only; the agent's state and lock files are not world-writable."""
    smb_cluster.write_job("a.jobs", b"a")
    log = smb_cluster.root / "push.log"
    assert smb_cluster.run("push", "--log-file", str(log)).code == 0
    assert stat.S_IMODE(log.stat().st_mode) == 0o600

    agent = AgentProcess(smb_cluster)
    smb_cluster.extra = agent_config()
    agent.start()
    try:
        wait_for(lambda: agent.state() is not None)
        state_dir = smb_cluster.root / "state"
        files = [p for p in state_dir.iterdir() if p.is_file()]
        assert files
        for path in files:
            assert _not_world_writable(path), path
    finally:
        agent.terminate()
        agent.close()
