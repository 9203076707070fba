"""The agent's parts, and the agent in this process on local folders.

Debouncing, role detection and hysteresis, the source index; a dead watcher or worker thread
started again.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path

import pytest

from jobsync.agent import runner as agent_runner
from jobsync.agent.runner import Agent
from jobsync.agent.source_feed import Debouncer, SourceIndex, SourceWatcher
from jobsync.agent.workers import PeerWorker
from jobsync.config.load import load_config
from jobsync.config.model import ActiveConfig
from jobsync.errors import SourceError
from jobsync.role import Probe, RoleDetector, RoleTracker

from support.agent import running_agent
from support.cluster import Cluster
from support.polling import wait_for


def test_debouncer_hands_on_a_name_once_after_it_goes_quiet() -> None:
    """Many touches of one name within the window become one settled batch."""
    settled: list[set[str]] = []
    done = threading.Event()

    def on_settled(names: set[str]) -> None:
        settled.append(names)
        done.set()

    debouncer = Debouncer(0.2, on_settled)
    debouncer.start()
    try:
        for _ in range(100):
            debouncer.touch("a.jobs")
        debouncer.touch("b.jobs")
        wait_for(done.is_set, timeout=5, what="settled names")
        wait_for(lambda: debouncer.waiting == 0, timeout=5)
    finally:
        debouncer.stop()
    assert sum(len(batch) for batch in settled) == 2
    assert set().union(*settled) == {"a.jobs", "b.jobs"}


def _detector(mode: str, **probes: object) -> RoleDetector:
    config = ActiveConfig(mode=mode, services_host="svc.example", services=("IntegrifyScheduler",))
    return RoleDetector(config, **probes)  # type: ignore[arg-type]


def test_dns_mode_is_active_only_when_the_name_points_here() -> None:
    """Active while services_host resolves to one of this machine's addresses."""
    here = _detector(
        "dns", resolver=lambda _h: {"10.0.0.5"}, addresses=lambda: {"10.0.0.5", "127.0.0.1"}
    )
    elsewhere = _detector("dns", resolver=lambda _h: {"10.0.0.9"}, addresses=lambda: {"10.0.0.5"})
    assert here.probe().active is True
    assert elsewhere.probe().active is False
    assert "not here" in elsewhere.probe().reason


def test_dns_mode_is_standby_when_the_name_does_not_resolve() -> None:
    """A resolver failure is standby with the reason, never a crash."""

    def fail(_host: str) -> set[str]:
        raise OSError("Name or service not known")

    probe = _detector("dns", resolver=fail, addresses=set).probe()
    assert probe.active is False
    assert "does not resolve" in probe.reason


def test_services_mode_asks_the_service_probe() -> None:
    """Active while every named service runs."""
    assert _detector("services", services=lambda _n: (True, "running")).probe().active
    assert not _detector("services", services=lambda _n: (False, "stopped")).probe().active


def test_role_changes_only_after_consecutive_confirmations() -> None:
    """A single flapping answer does not change the role; three in a row do."""
    tracker = RoleTracker(Probe(active=True, reason="start"), confirmations=3)
    no, yes = Probe(active=False, reason="moved"), Probe(active=True, reason="back")
    assert [tracker.observe(p) for p in (no, no, yes, no, no)] == [False] * 5
    assert tracker.active is True
    assert tracker.observe(no) is True
    assert tracker.active is False


def test_source_index_reuses_unchanged_files_and_refuses_a_vanished_folder(tmp_path: Path) -> None:
    """A rescan re-reads only changed files; a vanished folder changes nothing."""
    (tmp_path / "a.jobs").write_bytes(b"a")
    index = SourceIndex(tmp_path, "*.jobs")
    assert index.rescan().changed
    first = index.snapshot()
    assert not index.rescan().changed
    assert index.snapshot() is first
    (tmp_path / "a.jobs").write_bytes(b"a2")
    assert index.refresh(["a.jobs"]).changed
    # The index keeps hashes, not contents (a pass reads a job again when it sends it).
    assert index.snapshot().files[0].sha256 == hashlib.sha256(b"a2").hexdigest()
    assert index.snapshot().files[0].content is None

    (tmp_path / "a.jobs").unlink()
    tmp_path.rmdir()
    with pytest.raises(SourceError):
        index.refresh(["a.jobs"])
    with pytest.raises(SourceError):
        index.rescan()
    assert [f.name for f in index.snapshot().files] == ["a.jobs"]


def test_source_index_sets_names_that_differ_only_in_case_aside(tmp_path: Path) -> None:
    """Names an event adds or removes are checked for case collisions too, not only rescans."""
    (tmp_path / "report.jobs").write_bytes(b"one")
    index = SourceIndex(tmp_path, "*.jobs")
    index.rescan()
    (tmp_path / "Report.jobs").write_bytes(b"two")
    index.refresh(["Report.jobs"])
    snapshot = index.snapshot()
    assert snapshot.files == ()
    assert sorted(f.name for f in snapshot.collided) == ["Report.jobs", "report.jobs"]
    assert snapshot.skipped_keys == {"report.jobs"}
    assert index.rescan().changed is False  # a rescan finds what the events left

    (tmp_path / "Report.jobs").unlink()
    index.refresh(["Report.jobs"])
    assert [f.name for f in index.snapshot().files] == ["report.jobs"]
    assert index.snapshot().skipped == ()


def test_watcher_overflow_warning_triggers_a_rescan(tmp_path: Path) -> None:
    """Watchdog reports lost events only as a log warning; the watcher turns it into trouble."""
    troubles: list[str] = []
    watcher = SourceWatcher(
        tmp_path, matches=lambda _n: True, on_name=lambda _n: None, on_trouble=troubles.append
    )
    watcher.start()
    try:
        logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost"
        )
    finally:
        watcher.stop()
    assert troubles == ["watcher reported: Inotify queue overflowed; filesystem events were lost"]


def test_agent_restarts_a_dead_watcher_and_keeps_replicating(local_cluster: Cluster) -> None:
    """When the observer thread dies, the agent restarts it, rescans, and changes flow again."""
    local_cluster.extra = "[watch]\ndebounce_ms = 50\n"
    agent = Agent(load_config(local_cluster.config))
    runner = threading.Thread(target=agent.run, name="agent-under-test")
    runner.start()
    try:
        wait_for(lambda: agent._feed._watcher.alive, what="agent start")
        agent._feed._watcher._observer.stop()  # type: ignore[union-attr] # the observer dies
        wait_for(lambda: agent.metrics.watcher_restarts._value.get() == 1, what="restart")
        local_cluster.write_job("after.jobs", b"after the restart")
        wait_for(
            lambda: all((d / "after.jobs").exists() for _, _, d in local_cluster.peers),
            what="replication after the restart",
        )
    finally:
        agent.stop()
        runner.join(timeout=15)
    assert not runner.is_alive()


def test_a_worker_whose_thread_died_is_reported_and_started_again(
    local_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If a worker's thread dies anyway, /healthz names it and the runner starts it again."""

    class Killed(BaseException):
        """Escapes every ``except Exception``: the thread dies."""

    real = PeerWorker._serve_one_wake
    killed = threading.Event()

    def die_once(self: PeerWorker) -> None:
        if self.name == "node2" and not killed.is_set():
            killed.set()
            raise Killed
        real(self)

    monkeypatch.setattr(PeerWorker, "_serve_one_wake", die_once)
    monkeypatch.setattr(threading, "excepthook", lambda _args: None)  # expected: keep it quiet
    monkeypatch.setattr(agent_runner, "WATCHER_CHECK_SECONDS", 3600.0)  # the test checks itself
    local_cluster.extra = "[watch]\ndebounce_ms = 50\n"
    with running_agent(local_cluster) as agent:
        worker = next(w for w in agent._crew._workers if w.name == "node2")
        wait_for(lambda: killed.is_set() and not worker.alive, what="the worker's death")
        healthy, body = agent.health()
        assert not healthy
        assert "peer node2: its worker is not running" in body["reasons"]

        agent._crew.revive(agent.stopping)  # what the runner does every few seconds

        assert worker.alive
        assert agent.metrics.worker_restarts.labels("node2")._value.get() == 1
        local_cluster.write_job("after.jobs", b"after")
        wait_for((local_cluster.disk("node2") / "after.jobs").exists, what="replication")
        assert "peer node2: its worker is not running" not in agent.health()[1]["reasons"]
