"""Faults inside the agent stay inside one pass: no dead worker, no silent peer, no lost job."""

from __future__ import annotations

import struct
import subprocess

import pytest

from jobsync.agent.runner import Agent
from jobsync.config.load import load_config
from jobsync.errors import InstallationError
from jobsync.transport.smb import logon, wire

from support.agent import agent_starter, running_agent
from support.cluster import Cluster, jobs_on
from support.polling import wait_for
from support.smbd import SambaPeer


def _last_error(agent: Agent, name: str) -> str | None:
    return next(p for p in agent.view().peers if p.name == name).last_error


@pytest.mark.smb
def test_a_malformed_reply_fails_one_pass_and_the_worker_carries_on(
    smb_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception jobsync did not foresee (here a parser's struct.error) is a failed pass.

    The cause is reported in the peer's state, the worker lives on and retries, and the next
    pass replicates the job.
    """
    real = wire.directory_entries
    calls = {"n": 0}

    def broken_once(body: bytes) -> list[wire.DirEntry]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise struct.error("unpack_from requires a buffer of at least 64 bytes")
        return real(body)

    monkeypatch.setattr(wire, "directory_entries", broken_once)
    smb_cluster.extra = "[watch]\ndebounce_ms = 50\nretry_max_seconds = 1\n"
    smb_cluster.write_job("a.jobs", b"a")
    errors: list[str] = []
    with running_agent(smb_cluster) as agent:

        def replicated() -> bool:
            for name, _, _ in smb_cluster.peers:
                error = _last_error(agent, name)
                if error:
                    errors.append(error)
            return all(jobs_on(disk) == {"a.jobs": b"a"} for _, _, disk in smb_cluster.peers)

        wait_for(replicated, what="replication after the fault")
        assert all(w.alive for w in agent._crew._workers)
    assert any("jobsync failed internally (error: unpack_from requires" in e for e in errors)


@pytest.mark.smb
def test_a_closed_share_is_connected_again_without_a_failed_pass(smb_cluster: Cluster) -> None:
    """The server ends the share connection (0xC00000C9) between passes: the agent logs on again.

    The pass after it succeeds at once; the new logon is logged at info with the status in
    words and counted, and no failed pass is, as with a Kerberos session that expired (tested
    against a domain controller in test_kerberos_smb.py).
    """
    smb_cluster.write_job("a.jobs", b"a")
    with agent_starter(smb_cluster) as make:
        agent = make(health=True, debounce_ms=50)
        wait_for(
            lambda: all(jobs_on(d) == {"a.jobs": b"a"} for _, _, d in smb_cluster.peers),
            what="the first push",
        )
        _close_share(smb_cluster.smb["node2"])
        smb_cluster.write_job("b.jobs", b"b")
        expected = {"a.jobs": b"a", "b.jobs": b"b"}
        wait_for(
            lambda: all(jobs_on(d) == expected for _, _, d in smb_cluster.peers),
            what="the next change, on a new session",
        )
        wait_for(
            lambda: agent.metric("jobsync_peer_logons_renewed_total", peer="node2") == 1,
            what="the new logon counted",
        )
        assert agent.metric("jobsync_peer_passes_total", peer="node2", status="failed") == 0
        assert agent.peer_state("node2")["last_error"] is None
    renewed = [
        line for line in agent.log.read_text().splitlines() if "peer_session_renewed" in line
    ]
    assert len(renewed) == 1
    assert "[info" in renewed[0]
    assert "the server closed the share connection (0xC00000C9)" in renewed[0]


def _close_share(samba: SambaPeer) -> None:
    done = subprocess.run(
        ["smbcontrol", "-s", str(samba.conf_path), "smbd", "close-share", "jobs"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.smb
def test_an_unsupported_smb_library_stops_the_command_instead_of_being_retried(
    smb_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another smbprotocol than the 1.17 whose internals jobsync relies on is exit 2, in words.

    The agent refuses to start (a broken installation is not a peer to retry for ever), and a
    push says what to do instead of calling the peers unreachable.
    """
    monkeypatch.setattr(logon, "library_version", lambda: "1.18.0")
    smb_cluster.write_job("a.jobs", b"a")

    with pytest.raises(InstallationError, match=r"needs smbprotocol 1\.17\.x, but 1\.18\.0"):
        Agent(load_config(smb_cluster.config))
    pushed = smb_cluster.run("push")

    assert pushed.code == 2
    assert "needs smbprotocol 1.17.x, but 1.18.0 is installed" in pushed.err
    assert "Traceback" not in pushed.err
