"""Peers that refuse, vanish or hang: each fails alone, in bounded time, in one clear line."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from jobsync.transport.smb.statuses import current_account_hint

from support.cluster import Cluster, leftover_temps
from support.polling import wait_for
from support.smbd import DEFAULT_PASSWORD, PASSWORD_ENV, SambaPeer

pytestmark = pytest.mark.smb


def _seed(cluster: Cluster, count: int = 5) -> None:
    for i in range(count):
        cluster.write_job(f"j{i}.jobs", f"job {i}".encode())


def _jobs(cluster: Cluster, name: str) -> set[str]:
    return {p.name for p in cluster.disk(name).iterdir() if p.is_file()}


def test_wrong_password_fails_that_peer_without_leaking_it(smb_cluster: Cluster) -> None:
    """A wrong password: exit 3 naming the peer, the other peer done, no traceback, no secret."""
    _seed(smb_cluster)
    wrong = "Wr0ng-but-secret-pw"
    config = smb_cluster.variant(
        "wrong.toml", f'password_env = "{PASSWORD_ENV}"', 'password_env = "JOBSYNC_WRONG_PW"'
    )

    done = smb_cluster.run_process("push", "-v", config=config, env={"JOBSYNC_WRONG_PW": wrong})

    assert done.code == 3
    output = done.out + done.err
    assert "Traceback" not in output
    assert wrong not in output
    assert DEFAULT_PASSWORD not in output
    failed = [line for line in done.out.splitlines() if "FAILED" in line]
    assert len(failed) == 1
    assert failed[0].startswith("node2")
    assert "logon refused" in failed[0]
    assert _jobs(smb_cluster, "node3") == {f"j{i}.jobs" for i in range(5)}


def test_stopped_peer_fails_alone(smb_cluster: Cluster) -> None:
    """With one peer's smbd stopped, the other peer is still done and push exits 3."""
    _seed(smb_cluster)
    smb_cluster.smb["node2"].stop()

    run = smb_cluster.run("push", "--json")

    assert run.code == 3
    peers = {p["name"]: p for p in run.json()["peers"]}
    assert peers["node2"]["status"] == "failed"
    assert "cannot connect" in peers["node2"]["error"]
    assert peers["node3"]["status"] == "ok"
    assert len(peers["node3"]["copied"]) == 5


def test_frozen_peer_fails_in_bounded_time(smb_cluster: Cluster) -> None:
    """A peer that stops answering (SIGSTOP) fails within a few timeouts; the other is done."""
    _seed(smb_cluster)
    smb_cluster.timeout = 2.0
    smb_cluster.smb["node2"].freeze()
    started = time.monotonic()

    run = smb_cluster.run("push", "--json")

    elapsed = time.monotonic() - started
    assert run.code == 3
    assert elapsed < 4 * smb_cluster.timeout + 5, elapsed
    peers = {p["name"]: p for p in run.json()["peers"]}
    assert "no answer within 2 s" in peers["node2"]["error"]
    assert len(peers["node3"]["copied"]) == 5


def test_peer_frozen_after_connecting_fails_in_bounded_time(smb_cluster: Cluster) -> None:
    """A peer that hangs in the middle of its work is abandoned within a few timeouts."""
    _seed(smb_cluster, 3)
    assert smb_cluster.run("push").code == 0
    for i in range(200):
        smb_cluster.write_job(f"more{i}.jobs", b"y" * 3000)
    smb_cluster.timeout = 2.0
    samba = smb_cluster.smb["node2"]

    # Freeze as soon as the push has logged on: the peer hangs with work in flight.
    def freeze_when_connected() -> None:
        folder = smb_cluster.disk("node2")
        wait_for(lambda: leftover_temps(folder), timeout=30, what="work in flight")
        samba.freeze()

    freezer = threading.Thread(target=freeze_when_connected)
    freezer.start()
    started = time.monotonic()
    run = smb_cluster.run("push", "--json")
    elapsed = time.monotonic() - started
    freezer.join()

    assert run.code == 3, run
    assert elapsed < 4 * smb_cluster.timeout + 5, elapsed
    peers = {p["name"]: p for p in run.json()["peers"]}
    assert peers["node3"]["status"] == "ok"
    samba.thaw()
    # Whatever landed before the freeze is complete; the next push converges.
    smb_cluster.timeout = 5.0
    assert smb_cluster.run("push").code == 0
    assert len(_jobs(smb_cluster, "node2")) == 203
    assert leftover_temps(smb_cluster.disk("node2")) == []


def test_encryption_is_required_unless_the_peer_allows_plain(
    smb_cluster: Cluster, smb_peer_factory: Callable[..., SambaPeer]
) -> None:
    """A server without encryption is refused by default and accepted with encrypt = false."""
    _seed(smb_cluster, 2)
    plain = smb_peer_factory(encrypt="off")
    folder = plain.mkdir("plain", "jobs")
    smb_cluster.peers = [("node4", plain.unc("plain", "jobs"), folder)]
    smb_cluster.smb["node4"] = plain

    refused = smb_cluster.run("push")

    assert refused.code == 3
    assert "encryption" in refused.out
    assert not any(folder.iterdir())

    config = smb_cluster.variant("plain.toml", "[[peers]]", "[[peers]]\nencrypt = false")
    assert smb_cluster.run("push", config=config).code == 0
    assert {p.name for p in folder.iterdir() if p.is_file()} == {"j0.jobs", "j1.jobs"}


def test_a_logon_without_user_name_keeps_its_cause(smb_cluster: Cluster) -> None:
    """Logging on as the current account fails with the library's reason and what to do.

    A standalone Samba peer has no Kerberos: the message keeps pyspnego's own words instead of
    guessing "wrong user name or password", and says what the current-account logon needs here.
    """
    _seed(smb_cluster, 1)
    samba = smb_cluster.smb["node2"]
    account = f'username = "{samba.user}"\npassword_env = "{PASSWORD_ENV}"\n'
    config = smb_cluster.variant("nouser.toml", account, "")

    run = smb_cluster.run("push", config=config)

    assert run.code == 3
    line = next(line for line in run.out.splitlines() if line.startswith("node2"))
    assert "logon refused for the current account: Failed to authenticate" in line
    assert "wrong user name or password" not in line
    assert current_account_hint() in line
