"""`jobsync watch` as a real process, a real watchdog on a real folder, real smbd peers."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from jobsync.role import local_addresses

from support.agent import AgentProcess, agent_starter
from support.cluster import Cluster, jobs_on, leftover_temps
from support.polling import wait_for

pytestmark = pytest.mark.smb

MakeAgent = Callable[..., AgentProcess]


@pytest.fixture
def make_agent(smb_cluster: Cluster) -> Iterator[MakeAgent]:
    """Start agents for the SMB cluster; each is killed at the end if still running."""
    with agent_starter(smb_cluster) as make:
        yield make


def _all_peers_have(cluster: Cluster, expected: dict[str, bytes]) -> Callable[[], bool]:
    return lambda: all(jobs_on(disk) == expected for _, _, disk in cluster.peers)


def test_create_modify_delete_and_rename_are_replicated(
    smb_cluster: Cluster, make_agent: MakeAgent
) -> None:
    """Each kind of change in the source folder reaches every peer, deletions into trash."""
    smb_cluster.write_job("start.jobs", b"there before the agent")
    make_agent()
    wait_for(
        _all_peers_have(smb_cluster, {"start.jobs": b"there before the agent"}), what="start push"
    )

    smb_cluster.write_job("new.jobs", b"created")
    expected = {"start.jobs": b"there before the agent", "new.jobs": b"created"}
    wait_for(_all_peers_have(smb_cluster, expected), what="create")

    smb_cluster.write_job("new.jobs", b"modified")
    expected["new.jobs"] = b"modified"
    wait_for(_all_peers_have(smb_cluster, expected), what="modify")

    (smb_cluster.source / "new.jobs").rename(smb_cluster.source / "renamed.jobs")
    expected = {"start.jobs": b"there before the agent", "renamed.jobs": b"modified"}
    wait_for(_all_peers_have(smb_cluster, expected), what="rename")

    (smb_cluster.source / "renamed.jobs").unlink()
    wait_for(_all_peers_have(smb_cluster, {"start.jobs": b"there before the agent"}), what="delete")
    for _, _, disk in smb_cluster.peers:
        trashed = sorted(p.name.split(".jobs.")[0] for p in (disk / ".jobsync" / "trash").iterdir())
        assert trashed == ["new", "renamed"]


def _passes(agent: AgentProcess, scope: str, did: str = "copied=1") -> int:
    """How many passes that did ``did`` looked at ``scope`` ("names" or "all")."""
    lines = agent.log.read_text().splitlines()
    return sum(
        1 for line in lines if "peer_pushed" in line and f"scope={scope}" in line and did in line
    )


def test_an_edit_passes_over_its_name_only_and_hand_edits_are_still_kept(
    smb_cluster: Cluster, make_agent: MakeAgent
) -> None:
    """A saved, created or deleted job reaches each peer by a pass over its name alone.

    A hand edit on a peer of the job being saved sends that peer's pass to the full plan,
    which keeps the edit in backup before replacing it.
    """
    smb_cluster.write_job("a.jobs", b"a1")
    smb_cluster.write_job("b.jobs", b"b1")
    agent = make_agent()
    wait_for(_all_peers_have(smb_cluster, {"a.jobs": b"a1", "b.jobs": b"b1"}), what="start push")

    smb_cluster.write_job("a.jobs", b"a2")
    wait_for(_all_peers_have(smb_cluster, {"a.jobs": b"a2", "b.jobs": b"b1"}), what="the edit")
    peers = len(smb_cluster.peers)
    wait_for(lambda: _passes(agent, "names") == peers, what="one pass over a name per peer")
    smb_cluster.write_job("c.jobs", b"created")
    wait_for(lambda: _passes(agent, "names") == 2 * peers, what="a created job by name")
    (smb_cluster.source / "c.jobs").unlink()
    wait_for(lambda: _passes(agent, "names", "deleted=1") == peers, what="a deletion by name")
    assert not any((disk / "c.jobs").exists() for _, _, disk in smb_cluster.peers)

    edited = smb_cluster.disk("node2") / "b.jobs"
    edited.write_bytes(b"edited by hand on node2")
    smb_cluster.write_job("b.jobs", b"b2")
    wait_for(_all_peers_have(smb_cluster, {"a.jobs": b"a2", "b.jobs": b"b2"}), what="b2")
    backup = smb_cluster.disk("node2") / ".jobsync" / "backup"
    assert [p.read_bytes() for p in backup.iterdir()] == [b"edited by hand on node2"]
    wait_for(lambda: _passes(agent, "all") >= 1, what="node2's pass falling back to a full one")


def test_burst_of_writes_ends_with_final_content_and_few_copies(
    smb_cluster: Cluster, make_agent: MakeAgent
) -> None:
    """Hundreds of writes to one job: the final content on every peer, and only a few copies."""
    agent = make_agent(debounce_ms=300)
    for i in range(400):
        smb_cluster.write_job("busy.jobs", f"version {i:04d} ".encode() * 50)
    final = b"version 0399 " * 50
    wait_for(_all_peers_have(smb_cluster, {"busy.jobs": final}), what="final content")
    wait_for(lambda: all(agent.peer_state(n)["pending"] == 0 for n, _, _ in smb_cluster.peers))
    for name, _, _ in smb_cluster.peers:
        assert agent.peer_state(name)["pushed"] <= 3, agent.peer_state(name)


def test_sigterm_stops_cleanly(smb_cluster: Cluster, make_agent: MakeAgent) -> None:
    """SIGTERM: exit 0 within 10 s, no temp file left, state says not running."""
    for i in range(50):
        smb_cluster.write_job(f"j{i}.jobs", b"x" * 2000)
    agent = make_agent()
    wait_for(lambda: all(len(jobs_on(d)) == 50 for _, _, d in smb_cluster.peers), what="push")

    code, seconds = agent.terminate()

    assert code == 0
    assert seconds < 10
    for _, _, disk in smb_cluster.peers:
        assert leftover_temps(disk) == []
    assert agent.state() is not None
    assert agent.state()["running"] is False  # type: ignore[index]
    assert "Traceback" not in agent.log.read_text()


def test_frozen_peer_does_not_delay_the_other_and_catches_up(
    smb_cluster: Cluster, make_agent: MakeAgent
) -> None:
    """With node2 frozen (SIGSTOP), node3 still gets every change at once; node2 after SIGCONT."""
    smb_cluster.timeout = 2.0
    make_agent()
    frozen = smb_cluster.smb["node2"]
    frozen.freeze()

    smb_cluster.write_job("during-freeze.jobs", b"made while node2 hung")
    wait_for(
        lambda: (
            jobs_on(smb_cluster.disk("node3")) == {"during-freeze.jobs": b"made while node2 hung"}
        ),
        timeout=3,
        what="node3 while node2 is frozen",
    )
    assert jobs_on(smb_cluster.disk("node2")) == {}

    frozen.thaw()
    wait_for(
        lambda: (
            jobs_on(smb_cluster.disk("node2")) == {"during-freeze.jobs": b"made while node2 hung"}
        ),
        what="node2 catching up",
    )


def test_stopped_peer_catches_up_including_deletions(
    smb_cluster: Cluster, make_agent: MakeAgent
) -> None:
    """Changes made while a peer was down, deletions included, reach it when it returns."""
    smb_cluster.write_job("keep.jobs", b"keep")
    smb_cluster.write_job("drop.jobs", b"drop")
    smb_cluster.timeout = 2.0
    make_agent()
    wait_for(_all_peers_have(smb_cluster, {"keep.jobs": b"keep", "drop.jobs": b"drop"}))
    down = smb_cluster.smb["node2"]
    down.stop()

    (smb_cluster.source / "drop.jobs").unlink()
    smb_cluster.write_job("added.jobs", b"added while node2 was down")
    expected = {"keep.jobs": b"keep", "added.jobs": b"added while node2 was down"}
    wait_for(lambda: jobs_on(smb_cluster.disk("node3")) == expected, what="node3")

    down.start()
    wait_for(lambda: jobs_on(smb_cluster.disk("node2")) == expected, what="node2 after restart")
    trash = smb_cluster.disk("node2") / ".jobsync" / "trash"
    assert [p.read_bytes() for p in trash.iterdir()] == [b"drop"]


def test_kill_9_mid_work_leaves_only_complete_files_and_restart_converges(
    smb_cluster: Cluster, make_agent: MakeAgent
) -> None:
    """A kill -9 while copying leaves peers with complete files only; the next start converges."""
    contents = {f"job{i:03d}.jobs": os.urandom(20_000) for i in range(300)}
    for name, data in contents.items():
        smb_cluster.write_job(name, data)
    agent = make_agent()
    disk = smb_cluster.disk("node2")
    wait_for(lambda: len(jobs_on(disk)) >= 20, what="the copy to be under way")
    agent.kill()

    for _, _, folder in smb_cluster.peers:
        for name, data in jobs_on(folder).items():
            assert data == contents[name], f"partial {name}"

    make_agent()
    wait_for(_all_peers_have(smb_cluster, contents), what="convergence after restart")
    for _, _, folder in smb_cluster.peers:
        wait_for(lambda f=folder: not leftover_temps(f), what="temps cleared")


def test_health_and_metrics_answer(smb_cluster: Cluster, make_agent: MakeAgent) -> None:
    """/healthz is 200 ``ok`` while peers keep up; a peer that falls behind makes it ``degraded``.

    Still 200 (the node itself does its duty), with the peer and why under ``peers_lagging``,
    not under ``reasons``. /metrics serves the jobsync_ metrics.
    """
    smb_cluster.write_job("a.jobs", b"a")
    smb_cluster.timeout = 2.0
    agent = make_agent(health=True)
    wait_for(_all_peers_have(smb_cluster, {"a.jobs": b"a"}))

    code, body = agent.get("/healthz")
    assert code == 200
    assert json.loads(body)["status"] == "ok"
    wait_for(lambda: agent.metric("jobsync_files_pushed_total", peer="node3") == 1)
    _, metrics = agent.get("/metrics")
    for name in (
        "jobsync_peer_last_success_timestamp_seconds",
        "jobsync_peer_pending_changes",
        "jobsync_active 1.0",
        "jobsync_rescans_total",
        "jobsync_watcher_restarts_total",
        "jobsync_build_info{version=",
    ):
        assert name in metrics.decode()

    smb_cluster.smb["node2"].stop()
    smb_cluster.write_job("b.jobs", b"b")

    def degraded() -> dict[str, Any] | None:
        code, body = agent.get("/healthz")
        report = json.loads(body)
        lagging = code == 200 and "no successful pass" in str(report["peers_lagging"])
        return report if lagging else None

    report = wait_for(degraded, what="node2 lagging in /healthz")
    assert report["status"] == "degraded"
    assert report["reasons"] == []
    assert [p["peer"] for p in report["peers_lagging"]] == ["node2"]
    assert "node2" in report["peers_lagging"][0]["last_error"]
    assert agent.get("/nope")[0] == 404


def test_standby_node_pushes_nothing(smb_cluster: Cluster, make_agent: MakeAgent) -> None:
    """A standby node (dns mode, services_host elsewhere) watches but pushes nothing."""
    smb_cluster.write_job("a.jobs", b"a")
    agent = make_agent(
        health=True,
        rescan_seconds=0.2,
        extra='[active]\nmode = "dns"\nservices_host = "192.0.2.10"\ncheck_seconds = 0.2\n',
    )
    assert agent.state()["role"] == "standby"  # type: ignore[index]
    wait_for(lambda: agent.metric("jobsync_rescans_total") >= 3, what="rescans while standby")
    for _, _, disk in smb_cluster.peers:
        assert list(disk.iterdir()) == []
    assert agent.metric("jobsync_active") == 0


def _own_address() -> str:
    """An address of this machine that is not loopback (every node holds those: refused)."""
    found = sorted(
        a for a in local_addresses() if not ipaddress.ip_address(a).is_loopback and ":" not in a
    )
    if not found:
        pytest.fail("this machine has no IPv4 address but loopback: dns mode cannot be tested")
    return found[0]


def test_active_node_by_dns_pushes(smb_cluster: Cluster, make_agent: MakeAgent) -> None:
    """An active node (dns mode, services_host resolving to an address of this machine) pushes."""
    smb_cluster.write_job("a.jobs", b"a")
    agent = make_agent(extra=f'[active]\nmode = "dns"\nservices_host = "{_own_address()}"\n')
    assert agent.state()["role"] == "active"  # type: ignore[index]
    wait_for(_all_peers_have(smb_cluster, {"a.jobs": b"a"}), what="push from the active node")


def test_status_reports_no_agent_then_the_running_agent(
    smb_cluster: Cluster, make_agent: MakeAgent
) -> None:
    """`jobsync status` says plainly when no agent runs (exit 5), and shows the running agent."""
    smb_cluster.write_job("a.jobs", b"a")
    before = smb_cluster.run("status")
    assert before.code == 5
    assert "no agent has run" in before.out

    agent = make_agent()
    wait_for(lambda: all(agent.peer_state(n)["last_success"] for n, _, _ in smb_cluster.peers))
    running = smb_cluster.run("status", "--json")
    assert running.code == 0
    doc = running.json()
    assert doc["agent_running"] is True
    assert doc["agent"]["role"] == "active"
    assert [p["pending"] for p in doc["agent"]["peers"]] == [0, 0]
    assert "running" in smb_cluster.run("status").out
    assert agent.terminate()[0] == 0
    stopped = smb_cluster.run("status")
    assert stopped.code == 5
    assert "NOT RUNNING" in stopped.out


def test_agent_deletes_nothing_when_the_source_folder_disappears(
    smb_cluster: Cluster, make_agent: MakeAgent
) -> None:
    """The source folder vanishing under a running agent deletes nothing, and the agent says why."""
    for name in ("a.jobs", "b.jobs", "c.jobs"):
        smb_cluster.write_job(name, name.encode())
    agent = make_agent(health=True, rescan_seconds=0.3)
    wait_for(lambda: all(len(jobs_on(d)) == 3 for _, _, d in smb_cluster.peers))

    shutil.rmtree(smb_cluster.source)

    def reported() -> bool:
        code, body = agent.get("/healthz")
        text = body.decode()
        return code == 503 and ("disappeared" in text or "does not exist" in text)

    wait_for(reported, what="the agent reporting the missing source")
    wait_for(lambda: agent.metric("jobsync_rescans_total") >= 3, what="rescans without a source")
    for _, _, disk in smb_cluster.peers:
        assert len(jobs_on(disk)) == 3
    assert "source_unavailable" in agent.log.read_text()


def test_rescans_repair_a_hand_edit_on_a_peer(smb_cluster: Cluster, make_agent: MakeAgent) -> None:
    """A peer file edited by hand while the agent runs is restored at a rescan, edit kept."""
    smb_cluster.write_job("a.jobs", b"the source's version")
    agent = make_agent(health=True, rescan_seconds=0.3)
    wait_for(_all_peers_have(smb_cluster, {"a.jobs": b"the source's version"}))
    # Let a few rescans find nothing to do, so the edit lands while the agent is quiet.
    wait_for(lambda: agent.metric("jobsync_rescans_total") >= 3, what="quiet rescans")
    edited = smb_cluster.disk("node2") / "a.jobs"
    edited.write_bytes(b"edited by hand on node2")

    wait_for(lambda: edited.read_bytes() == b"the source's version", what="repair at a rescan")
    backup = smb_cluster.disk("node2") / ".jobsync" / "backup"
    assert [p.read_bytes() for p in backup.iterdir()] == [b"edited by hand on node2"]


def test_quiet_rescans_check_every_peer_in_turn(
    smb_cluster: Cluster, make_agent: MakeAgent
) -> None:
    """While the source does not change, rescans still re-check each peer in its turn."""
    smb_cluster.write_job("a.jobs", b"the source's version")
    agent = make_agent(health=True, rescan_seconds=0.2)
    wait_for(_all_peers_have(smb_cluster, {"a.jobs": b"the source's version"}))
    wait_for(lambda: agent.metric("jobsync_rescans_total") >= 3, what="quiet rescans")
    for _, _, disk in smb_cluster.peers:
        (disk / "a.jobs").write_bytes(b"edited by hand")

    wait_for(_all_peers_have(smb_cluster, {"a.jobs": b"the source's version"}), what="repairs")
    for _, _, disk in smb_cluster.peers:
        kept = [p.read_bytes() for p in (disk / ".jobsync" / "backup").iterdir()]
        assert kept == [b"edited by hand"]
