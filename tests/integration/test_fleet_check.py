"""``jobsync check --fleet`` against a real site: three nodes, a NAS and a balancer on loopback.

Every case changes one thing on a site that passes (tests/support/fleet_bed.py) and checks
that exactly the lines it should fail, fail, with words that name the cause; every other line
still passes or says what it cannot check.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.request
from typing import TYPE_CHECKING

import pytest

from jobsync import __version__
from jobsync.agent.runner import Agent
from jobsync.config.load import load_config
from jobsync.errors import ExitCode

from support.failover_bed import set_spooler, stop_fleet
from support.fleet_bed import (
    IIS,
    SECRETS,
    SERVER_CONFIG,
    SETTINGS,
    TASK,
    Site,
    application_host,
    make_site,
    scheduled_task,
    settings_config,
)
from support.polling import wait_for
from support.ports import free_port
from support.smbd import DEFAULT_PASSWORD, PASSWORD_ENV, SambaPeer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

pytestmark = pytest.mark.smb

ATTACHMENTS = "settings.config:appSettings/AttachmentsPath"


@pytest.fixture
def site(
    tmp_path: Path, smb_peer_factory: Callable[..., SambaPeer], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Site]:
    """A site where every item passes."""
    monkeypatch.setenv(PASSWORD_ENV, DEFAULT_PASSWORD)
    made = make_site(tmp_path, smb_peer_factory)
    try:
        yield made
    finally:
        stop_fleet(made.nodes)
        made.balancer.stop()


def lines(document: dict, verdict: str) -> dict[tuple[str, str], list[str]]:
    """(item, node) -> the evidence of each line with ``verdict``."""
    found: dict[tuple[str, str], list[str]] = {}
    for line in document["lines"]:
        if line["verdict"] == verdict:
            found.setdefault((line["item"], line["node"]), []).append(line["evidence"])
    return found


def fails_only(site: Site, *expected: tuple[str, str]) -> dict[tuple[str, str], str]:
    """Check from n1: exactly ``expected`` fail (exit 1); their evidence, joined per line."""
    code, document = site.check(site.nodes["n1"])
    failed = lines(document, "FAIL")
    assert set(failed) == set(expected), json.dumps(document, indent=1)
    assert code == (ExitCode.DRIFT if expected else ExitCode.OK)
    for line in document["lines"]:
        if line["verdict"] == "FAIL":
            assert line["next_step"], line
    return {key: " | ".join(evidence) for key, evidence in failed.items()}


def test_a_site_as_the_vendor_asks_passes_every_item(site: Site) -> None:
    """No FAIL; what cannot be seen is CANNOT CHECK with the manual step, never a PASS."""
    code, document = site.check(site.nodes["n1"])
    assert code == ExitCode.OK
    assert lines(document, "FAIL") == {}
    unseen = lines(document, "CANNOT CHECK")
    assert set(unseen) == {("forwarded proto", "balancer")}
    passed = lines(document, "PASS")
    for item in (
        "configuration",
        "shared folders",
        "accounts",
        "services name",
        "healthcheck",
        "jobsync",
    ):
        assert {(item, n) for n in ("n1", "n2", "n3")} <= set(passed), item
    assert ("services", "fleet") in passed
    assert ("jobs", "n2") in passed
    assert ("jobs", "n3") in passed
    assert "n1 owns the jobs" in passed["jobs", "fleet"][0]
    probes = passed["shared folders", "fleet"]
    assert len(probes) == 3
    assert all("created, read back and deleted" in p and "GB free" in p for p in probes)
    # The probe ran as jobsync's logon, not as the services' LocalSystem: said, not implied.
    assert all("as jobsynctest; " in p for p in probes)
    assert all("not the services' account (LocalSystem, " in p for p in probes)
    assert "BIGipServerintegrify" in passed["sticky sessions", "balancer"][0]
    assert "valid until" in passed["certificate", "balancer"][0]
    # Samba runs no jobsync service; the task is read from where Windows keeps it.
    [jobsync] = passed["jobsync", "n2"]
    assert jobsync.startswith(f"jobsync {__version__}; no agent service; ")
    assert "its task 'jobsync push' runs jobsync push every 5 minutes as " in jobsync
    assert not list(site.nas.share_path.rglob("jobsync-probe-*")), "the probe cleans up"


def test_text_report_names_every_line_and_the_next_step(site: Site) -> None:
    """The human form: a summary, one line per item and node, the next step under a non-PASS."""
    done = site.nodes["n1"].run("check", "--fleet")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0].startswith("n1 checked the fleet in ")
    assert "0 FAIL" in out[0]
    assert any(line.startswith("CANNOT CHECK  forwarded proto") for line in out)
    assert any("next: in the balancer's HTTPS virtual server" in line for line in out)


def test_one_key_that_differs_is_named_by_its_path_not_its_value(site: Site) -> None:
    """n2's settings.config has another SMTP server: its key path is named, its value never."""
    n2 = site.nodes["n2"]
    site.write(n2, SETTINGS, settings_config("n2", site.folders(), smtp="smtp-old.example.test"))
    evidence = fails_only(site, ("configuration", "n2"))
    found = evidence["configuration", "n2"]
    assert "settings.config differs from n1 and n3's at appSettings/SmtpServer" in found
    assert "values not shown" in found
    done = site.nodes["n1"].run("check", "--fleet", "-v")
    assert "smtp-old" not in done.stdout + done.stderr


def test_a_file_that_does_not_parse_is_compared_byte_for_byte(site: Site) -> None:
    """n3's server-config.json is cut short: compared byte for byte, and the report says why."""
    n3 = site.nodes["n3"]
    site.write(n3, SERVER_CONFIG, '{"port": 80, "node": "n3", "database": {')
    found = fails_only(site, ("configuration", "n3"))["configuration", "n3"]
    assert "server-config.json differs from n1 and n2's, byte for byte" in found
    assert "does not parse as JSON (line 1, column" in found


def test_attachments_on_a_local_drive(site: Site) -> None:
    """n2 writes attachments to its own C: drive, which the other nodes cannot see."""
    n2 = site.nodes["n2"]
    folders = {**site.folders(), "attachments": "C:\\IntegrifyFiles\\attachments"}
    site.write(n2, SETTINGS, settings_config("n2", folders))
    found = fails_only(site, ("shared folders", "n2"))["shared folders", "n2"]
    assert f"{ATTACHMENTS} is C:\\IntegrifyFiles\\attachments, a disk of n2" in found
    assert "the other nodes cannot see" in found


def test_a_mapped_drive_letter(site: Site) -> None:
    """n3 writes attachments to Z:, no disk of its own (no Z$): a mapped drive."""
    n3 = site.nodes["n3"]
    folders = {**site.folders(), "attachments": "Z:\\attachments"}
    site.write(n3, SETTINGS, settings_config("n3", folders))
    found = fails_only(site, ("shared folders", "n3"))["shared folders", "n3"]
    assert "Z: is no disk of n3 (it has no Z$ share): a mapped drive" in found
    assert "Windows services cannot see" in found


def test_a_share_that_is_unreachable(site: Site) -> None:
    """The NAS is down: every shared folder's probe fails, and nothing else."""
    site.nas.stop()
    found = fails_only(site, ("shared folders", "fleet"))["shared folders", "fleet"]
    assert found.count("cannot be opened") == 3
    assert "attachments" in found


def test_a_share_that_is_read_only(site: Site) -> None:
    """The NAS share is read-only: the write probe fails, and leaves nothing behind."""
    site.nas.stop()
    site.nas.share_options = ("read only = yes",)
    site.nas.start()
    found = fails_only(site, ("shared folders", "fleet"))["shared folders", "fleet"]
    assert found.count("cannot be written") == 3
    assert "access denied" in found.casefold() or "denied" in found.casefold()
    assert not list(site.nas.share_path.rglob("jobsync-probe-*"))


def test_services_on_two_nodes(site: Site) -> None:
    """The services run on n1 and n2: scheduled jobs would run twice."""
    set_spooler(site.nodes["n2"], running=True)
    found = fails_only(site, ("services", "fleet"))["services", "fleet"]
    assert "run on 2 nodes: n1 and n2" in found


def test_services_on_no_node(site: Site) -> None:
    """The services run nowhere: no scheduled job runs."""
    set_spooler(site.nodes["n1"], running=False)
    found = fails_only(site, ("services", "fleet"))["services", "fleet"]
    assert "run on no node" in found


def test_a_hosts_entry_pointing_at_the_wrong_node(site: Site) -> None:
    """n2's hosts file sends the services name to n3, where the services do not run."""
    from jobsync.failover.repoint import point_name

    from support.failover_bed import SERVICES_NAME

    n2, n3 = site.nodes["n2"], site.nodes["n3"]
    n2.hosts.write_bytes(point_name(n2.hosts.read_bytes(), SERVICES_NAME, n3.address).data)
    found = fails_only(site, ("services name", "n2"))["services name", "n2"]
    assert f"its hosts file points {SERVICES_NAME} at 127.0.0.13 (n3), not at n1" in found


def test_a_service_account_that_differs(site: Site) -> None:
    """Spooler's account changed in n2's registry (Samba answers it over MS-SCMR at once)."""
    n2 = site.nodes["n2"]
    set_spooler(n2, running=False)  # starts n2's RPC helper, which resets the value when it starts
    subprocess.run(
        [
            "net", "-s", str(n2.samba.conf_path), "registry", "setvalue",
            "HKLM\\SYSTEM\\CurrentControlSet\\Services\\Spooler", "ObjectName", "sz",
            "CORP\\other-svc",
        ],
        check=True, capture_output=True,
    )  # fmt: skip
    found = fails_only(site, ("accounts", "n2"))["accounts", "n2"]
    assert "Spooler runs as CORP\\other-svc here, not as on the others" in found


def test_an_app_pool_identity_that_differs(site: Site) -> None:
    """n3's Integrify pool runs as another account; its password attribute stays unread."""
    site.write(site.nodes["n3"], IIS, application_host("CORP\\someone-else"))
    found = fails_only(site, ("accounts", "n3"))["accounts", "n3"]
    assert "pool Integrify runs as CORP\\someone-else here, not as on the others" in found
    assert SECRETS[2] not in found


def test_a_healthcheck_down_on_one_node(site: Site) -> None:
    """n2's /healthcheck answers 503."""
    site.nodes["n2"].health.answer(503)
    found = fails_only(site, ("healthcheck", "n2"))["healthcheck", "n2"]
    assert "answered 503" in found


def test_a_balancer_without_an_affinity_cookie(site: Site) -> None:
    """The balancer sets no sticky cookie, only the application's own."""
    site.balancer.sticky(on=False)
    found = fails_only(site, ("sticky sessions", "balancer"))["sticky sessions", "balancer"]
    assert "sets no affinity cookie (cookies set: ASP.NET_SessionId)" in found


def test_jobs_drift(site: Site) -> None:
    """A job edited by hand on n2 differs from the services node's."""
    n2 = site.nodes["n2"]
    (n2.folder / "Daily Report.jobs").write_bytes(b"<job>edited by hand on n2</job>")
    found = fails_only(site, ("jobs", "n2"))["jobs", "n2"]
    assert "1 job not as on n1: Daily Report.jobs" in found


def test_a_fallback_task_that_is_disabled(site: Site) -> None:
    """n2's task was disabled in Task Scheduler: its file says so, and the line names it."""
    n2 = site.nodes["n2"]
    site.write(n2, TASK, scheduled_task(n2, enabled=False))
    code, document = site.check(site.nodes["n1"])
    assert code == ExitCode.DRIFT
    [line] = [x for x in document["lines"] if x["verdict"] == "FAIL"]
    assert (line["item"], line["node"]) == ("jobsync", "n2")
    assert line["evidence"] == "its scheduled task 'jobsync push' is disabled"
    assert line["next_step"] == "Enable-ScheduledTask -TaskName 'jobsync push' on n2"


def test_a_fallback_task_that_one_node_lacks(site: Site) -> None:
    """n3 has no task while n1 and n2 do, and no agent service to stand in for it."""
    n3 = site.nodes["n3"]
    (n3.samba.root / "C" / TASK).unlink()
    found = fails_only(site, ("jobsync", "n3"))["jobsync", "n3"]
    assert found == "no scheduled task 'jobsync push' here, which n1 and n2 have"


def test_a_task_file_that_is_not_a_task_cannot_be_checked(site: Site) -> None:
    """A file under the task's name that is no task: said, not guessed, and nothing fails."""
    n2 = site.nodes["n2"]
    site.write(n2, TASK, b"\x00\x01 not a task")
    code, document = site.check(site.nodes["n1"])
    assert code == ExitCode.OK
    unseen = lines(document, "CANNOT CHECK")
    assert (
        "its file does not read as a task: it does not parse as XML" in (unseen["jobsync", "n2"][0])
    )


def test_an_unreachable_node_is_one_fail_line(site: Site) -> None:
    """n3's smbd is down: one FAIL line for n3, and what it might run is never guessed."""
    site.nodes["n3"].samba.stop()
    found = fails_only(site, ("node", "n3"))["node", "n3"]
    assert "cannot open \\\\127.0.0.1\\C$" in found
    _code, document = site.check(site.nodes["n1"])
    n3_lines = [line for line in document["lines"] if line["node"] == "n3"]
    assert [line["item"] for line in n3_lines] == ["node"]
    services = next(line for line in document["lines"] if line["item"] == "services")
    assert services["verdict"] == "CANNOT CHECK"  # n3 might run them: never guessed


def test_a_frozen_node_is_bounded_in_time(site: Site) -> None:
    """A node that stops answering costs about timeout_seconds (5 s here), never a hang."""
    site.nodes["n2"].samba.freeze()
    try:
        started = time.monotonic()
        code, document = site.check(site.nodes["n1"])
        took = time.monotonic() - started
    finally:
        site.nodes["n2"].samba.thaw()
    assert code == ExitCode.DRIFT
    assert ("node", "n2") in lines(document, "FAIL")
    assert took < 60, took


def test_no_value_from_the_config_files_reaches_the_output(site: Site) -> None:
    """Secrets that differ between nodes are named by key path only, at every verbosity."""
    n2, n3 = site.nodes["n2"], site.nodes["n3"]
    settings = settings_config("n2", site.folders()).replace(SECRETS[0], "Other-Sql-Secret-55")
    site.write(n2, SETTINGS, settings)
    site.write(n3, SERVER_CONFIG, json.dumps({"port": 81, "database": {"password": "Json-2nd"}}))
    outputs = []
    for args in ((), ("--json",), ("-v",), ("-v", "--log-json"), ("--discover",)):
        done = site.nodes["n1"].run("check", "--fleet", *args)
        outputs.append(done.stdout + done.stderr)
    text = "\n".join(outputs)
    assert "connectionStrings/Integrify/@connectionString" in text  # the difference is named
    assert "database/password" in text
    for secret in (*SECRETS, "Other-Sql-Secret-55", "Json-2nd", "sql.example.test"):
        assert secret not in text, secret


def test_the_services_node_agent_runs_it_and_shows_the_last_result(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent on n1 (active) runs the check on its schedule: metrics and page follow."""
    monkeypatch.setenv("SSL_CERT_FILE", str(site.balancer.ca_file))
    n1, n2 = site.nodes["n1"], site.nodes["n2"]
    port = free_port()
    text = n1.config.read_text().replace("[fleet_check]\n", "[fleet_check]\nevery_minutes = 0.02\n")
    n1.config.write_text(text + f'\n[health]\nlisten = "127.0.0.1:{port}"\n')
    agent = Agent(load_config(n1.config))
    thread = threading.Thread(target=agent.run, name="agent-under-test")
    thread.start()

    def sample(item: str, node: str) -> float | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as got:
                body = got.read().decode()
        except OSError:
            return None
        found = re.search(
            rf'^jobsync_fleet_check{{item="{item}",node="{node}"}} (\S+)$', body, re.MULTILINE
        )
        return float(found.group(1)) if found else None

    try:
        wait_for(lambda: sample("healthcheck", "n2") == 1, timeout=60, what="a passing check")
        assert sample("forwarded proto", "balancer") == -1
        n2.health.answer(503)
        wait_for(lambda: sample("healthcheck", "n2") == 0, timeout=60, what="n2's FAIL")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as got:
            page = got.read().decode()
        assert "Fleet check" in page
        assert "answered 503" in page
    finally:
        agent.stop()
        thread.join(timeout=30)
    assert not thread.is_alive()
