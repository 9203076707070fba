"""Logging on as the current account with Kerberos, against a real Samba AD domain controller.

The docs recommend a gMSA or the computer account with no user name in the config: the peer is
reached with the account's Kerberos ticket, and no secret is stored anywhere. A session ends
with its ticket (10 hours on Windows; 5 minutes here), and the server then answers
STATUS_NETWORK_SESSION_EXPIRED: jobsync logs on again, as a Windows client does, without a
failed pass.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from jobsync.agent.runner import Agent
from jobsync.config.load import load_config

from support.cluster import Cluster, jobs_on
from support.domain_controller import TICKET_LIFETIME_SECONDS, DomainController
from support.polling import wait_for

pytestmark = pytest.mark.smb


@pytest.fixture
def kerberos_cluster(
    domain_controller: DomainController,
    tmp_path: Path,
    source_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Cluster:
    """node1 pushing to the DC's share as the current account: no user name, no password."""
    for key, value in domain_controller.env.items():
        monkeypatch.setenv(key, value)
    folder = domain_controller.share_path / tmp_path.name
    folder.mkdir()
    folder.chmod(0o777)
    cluster = Cluster(root=tmp_path, source=source_dir, peers=[], capsys=capsys)
    cluster.peers.append(("dc1", domain_controller.unc(tmp_path.name), folder))
    cluster.ports["dc1"] = domain_controller.smb_port
    return cluster


def test_a_peer_without_user_name_logs_on_with_the_accounts_ticket(
    kerberos_cluster: Cluster, domain_controller: DomainController
) -> None:
    """No user name in the config: check and push log on with the Kerberos ticket."""
    domain_controller.kinit()
    kerberos_cluster.write_job("a.jobs", b"<job/>")

    checked = kerberos_cluster.run("check")
    pushed = kerberos_cluster.run("push")

    assert checked.code == 0, checked
    assert "SMB 3.1.1, encrypted with" in checked.out
    assert pushed.code == 0, pushed
    folder = kerberos_cluster.disk("dc1")
    assert jobs_on(folder) == {"a.jobs": b"<job/>"}


@pytest.mark.slow  # a ticket lives 5 min, the shortest the MIT client accepts
def test_an_expired_session_logs_on_again_without_a_failed_pass(
    kerberos_cluster: Cluster, domain_controller: DomainController
) -> None:
    """The slow test (about six minutes): the agent outlives its ticket and its session.

    After the ticket ends the server answers 0xC000035C; the agent logs on again with a new
    ticket from the keytab and redoes the pass at once: the new logon is counted
    (jobsync_peer_logons_renewed_total), no failed pass is, and no error is shown. That it is
    logged at info, with the status in words, is checked in test_agent_faults.py.
    """
    domain_controller.kinit()
    expires = time.monotonic() + TICKET_LIFETIME_SECONDS
    kerberos_cluster.extra += (
        "[watch]\ndebounce_ms = 50\nrescan_seconds = 2\nretry_max_seconds = 60\n"
    )
    folder = kerberos_cluster.disk("dc1")
    kerberos_cluster.write_job("a.jobs", b"before")
    agent = Agent(load_config(kerberos_cluster.config))
    runner = threading.Thread(target=agent.run, name="agent-under-test")
    logons = agent.metrics.logons.labels("dc1")
    failed = agent.metrics.passes.labels("dc1", "failed")
    runner.start()
    try:
        wait_for(lambda: jobs_on(folder) == {"a.jobs": b"before"}, what="the first push")
        early = logons._value.get()
        wait_for(
            lambda: logons._value.get() >= 1,
            timeout=TICKET_LIFETIME_SECONDS + 120,
            what="a pass after the ticket ended",
        )
        renewed_after = time.monotonic()
        kerberos_cluster.write_job("b.jobs", b"after")
        wait_for(
            lambda: jobs_on(folder) == {"a.jobs": b"before", "b.jobs": b"after"},
            what="a change after the new logon",
        )
    finally:
        agent.stop()
        runner.join(timeout=20)
    assert early == 0  # nothing expired before its time
    assert renewed_after >= expires
    assert failed._value.get() == 0
    assert agent.view().peers[0].last_error is None


def test_a_second_domain_controller_runs_beside_the_first(
    domain_controller: DomainController, tmp_path: Path
) -> None:
    """Every port the test DC binds is chosen free: two suites on one machine do not collide.

    A DC on the standard ports (88, 389) made a second suite's DC fail to start.
    """
    second = DomainController(tmp_path / "second")
    try:
        second.start()  # provisions, starts and gets a ticket from its own KDC
    finally:
        second.stop()
    assert second.kdc_port != domain_controller.kdc_port
    assert (second.root / "ccache").stat().st_size > 0
