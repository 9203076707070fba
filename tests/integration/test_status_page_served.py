"""The status page as a running agent serves it: in a real browser, and on a standby node."""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from jobsync import __version__
from jobsync.jobs_folder import STAMP_FORMAT, stamp_name

from support.agent import AgentProcess, agent_starter
from support.browser import Browser
from support.cluster import Cluster, jobs_on
from support.page_text import page_text
from support.polling import wait_for
from support.smbd import DEFAULT_PASSWORD

pytestmark = pytest.mark.smb


MakeAgent = Callable[..., AgentProcess]


OLD_STAMP = (datetime.now(timezone.utc) - timedelta(days=400)).strftime(STAMP_FORMAT)


@pytest.fixture
def make_agent(smb_cluster: Cluster) -> Iterator[MakeAgent]:
    """Start agents with the status page for the SMB cluster; each is killed at the end."""
    with agent_starter(smb_cluster) as make:
        yield functools.partial(make, health=True)


def _plant(folder: Path, relative: str, data: bytes) -> None:
    """A file under ``folder``, owned like ``folder`` (smbd serves a Samba peer as its owner)."""
    owner = folder.stat()
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    for made in (path, *path.relative_to(folder).parents):
        os.chown(folder / made, owner.st_uid, owner.st_gid)


@pytest.fixture
def node_like_source(smb_cluster: Cluster) -> Iterator[Path]:
    """The cluster's source where Integrify keeps it (under a temp folder): for the docs."""
    root = Path(tempfile.mkdtemp(prefix="node1-"))
    smb_cluster.source = root / "integrify" / "app" / "scheduler" / "lib" / "cronic" / "jobs"
    smb_cluster.source.mkdir(parents=True)
    yield smb_cluster.source
    shutil.rmtree(root)


def _some_history(cluster: Cluster, make_agent: MakeAgent) -> AgentProcess:
    """An agent that copied, trashed, backed up and pruned, then lost node3 (smbd stopped)."""
    for name in ("daily.jobs", "weekly.jobs", "monthly.jobs", "retired.jobs"):
        cluster.write_job(name, f"schedule of {name}".encode())
    node2 = cluster.disk("node2")
    _plant(node2, "weekly.jobs", b"edited by hand on node2")
    _plant(node2, f".jobsync/trash/{stamp_name('ancient.jobs', OLD_STAMP)}", b"expired")
    _plant(cluster.source, f".jobsync/backup/{stamp_name('x.jobs', OLD_STAMP)}", b"expired")
    agent = make_agent(extra="[retention]\ntrash_days = 30\nbackup_days = 30\n")
    wait_for(lambda: all(len(jobs_on(d)) == 4 for _, _, d in cluster.peers), what="push")
    (cluster.source / "retired.jobs").unlink()
    wait_for(lambda: all(len(jobs_on(d)) == 3 for _, _, d in cluster.peers), what="trash")
    cluster.smb["node3"].stop()
    cluster.write_job("daily.jobs", b"changed while node3 is down")  # node3 cannot have it
    # The pass under way when smbd stopped loses its connection; the retries cannot connect.
    wait_for(
        lambda: "cannot connect" in (agent.peer_state("node3")["last_error"] or ""),
        what="node3 to fail to connect",
    )
    changed = b"changed while node3 is down"
    wait_for(lambda: jobs_on(node2).get("daily.jobs") == changed, what="node2 to get the change")
    wait_for(lambda: agent.peer_state("node2")["pending"] == 0, what="node2 up to date")
    return agent


@pytest.mark.usefixtures("node_like_source")
def test_the_page_in_a_browser_with_one_peer_stopped(
    smb_cluster: Cluster, make_agent: MakeAgent, tmp_path: Path
) -> None:
    """A person sees the node, its verdict and what to do, each peer's state and its error.

    In headless Chromium: the recent events (copies, trash, backup, retention, failures) too,
    with no script, nothing fetched from elsewhere and no password anywhere.
    With ``JOBSYNC_SCREENSHOT=path`` the screenshot is also saved there (docs/status-page.png).
    """
    agent = _some_history(smb_cluster, make_agent)
    url = f"http://127.0.0.1:{agent.port}/"
    profile = tmp_path / "chromium-profile"
    with Browser(profile) as browser:
        browser.load(url)
        text = browser.visible_text()
        peers = browser.evaluate(
            "[...document.querySelectorAll('table')[0].tBodies[0].rows]"
            ".map(r => [...r.cells].map(c => c.innerText))"
        )
        events = browser.evaluate(
            "[...document.querySelectorAll('table')[1].tBodies[0].rows]"
            ".map(r => [...r.cells].map(c => c.innerText).join(' | '))"
        )
        requested = browser.requested_urls()
        scripts = browser.evaluate("document.scripts.length")
        refresh = browser.evaluate("document.querySelector('meta[http-equiv=refresh]').content")
        badge, badge_colour = browser.evaluate(
            "(b => [b.innerText, getComputedStyle(b).backgroundColor])"
            "(document.querySelector('header .badge'))"
        )
        version = browser.evaluate("document.querySelector('header .version').innerText")
        next_step = browser.evaluate("document.querySelector('.next').innerText")
        row_colour = browser.evaluate(
            "getComputedStyle(document.querySelector('tr.failing td')).color"
        )
        source = browser.evaluate("document.documentElement.outerHTML")
        shot = tmp_path / "status-page.png"
        browser.screenshot(shot)

    assert "jobsync on node1" in text
    # The header gives the verdict, not a green ACTIVE, and the next thing to do.
    assert badge == "ACTIVE - 1 peer failing"
    assert badge_colour == "rgb(183, 121, 31)"  # the warning amber
    assert version == f"jobsync {__version__}"
    assert next_step.startswith("node3")
    assert next_step.endswith("see its last error below.")
    assert row_colour == "rgb(29, 37, 48)"  # the failing peer's row is as readable as the rest
    assert 'active: mode = "always"' in text
    assert "3 jobs in" in text
    by_peer = {row[0].splitlines()[0]: row for row in peers}
    assert set(by_peer) == {"node2", "node3"}
    assert by_peer["node2"][1] == "up to date"
    assert by_peer["node2"][-1] == "none"
    assert by_peer["node3"][1] == "failing"
    assert by_peer["node3"][2] == "never" or "ago" in by_peer["node3"][2]
    assert "node3: cannot connect to 127.0.0.1" in by_peer["node3"][-1]
    assert int(by_peer["node3"][3]) >= 1  # the pending change
    # Totals: copied, deleted, backed up, expired copies removed.
    assert [int(c) for c in by_peer["node2"][4:8]] == [5, 1, 1, 1]
    joined = "\n".join(events)
    for expected in (
        "node2 | copied 4 jobs",
        "node2 | moved 1 job (retired.jobs) to .jobsync/trash",
        "node2 | kept 1 job (weekly.jobs) in .jobsync/backup",
        "node2 | removed 1 kept copy past [retention]",
        "removed 1 kept copy past [retention] (this node's folder)",
        "node3 | pass failed: peer node3: cannot connect",
        "agent started, active",
    ):
        assert expected in joined, (expected, joined)
    assert requested == [url]  # no asset from anywhere, not even from the agent
    assert scripts == 0
    assert refresh == "5"
    assert DEFAULT_PASSWORD not in source
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("JOBSYNC_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)


def test_the_page_in_standby(smb_cluster: Cluster, make_agent: MakeAgent) -> None:
    """A standby node's page says so, and shows its peers as not pushed; headers forbid assets."""
    smb_cluster.write_job("a.jobs", b"a")
    agent = make_agent(
        extra='[active]\nmode = "dns"\nservices_host = "192.0.2.10"\ncheck_seconds = 0.2\n'
    )
    code, body = agent.get("/")
    assert code == 200
    text = page_text(body)
    assert f"STANDBY jobsync {__version__} Nothing to do here: the services node pushes." in text
    assert "on standby: it watches the jobs folder but pushes nothing" in text
    assert "192.0.2.10 resolves to 192.0.2.10, not here" in text
    assert text.count("not pushed (standby)") == 2
    assert "1 job in" in text

    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{agent.port}/", timeout=5) as answer:
        assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
