"""Installing, upgrading and removing on Windows, with a runner that answers as Windows would.

Every test runs jobsync's real steps; only ``sc.exe``, ``schtasks.exe``, WinSW and PowerShell
are stood in for by :class:`FakeWindows`, which records each command line.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from jobsync.config.model import Config
from jobsync.errors import ConfigError, JobsyncError, SafetyRefusalError
from jobsync.integrify_files import TASK_NAMESPACE
from jobsync.windows import Completed, Tools, WindowsToolError
from jobsync.windows.install import (
    RESTART_ACTIONS,
    install_service,
    service_files,
    service_xml,
    uninstall_service,
)
from jobsync.windows.tasks import (
    EXAMPLE_SHA256,
    check_as_service,
    example_digest,
    install_task,
    require_ready,
    task_xml,
    uninstall_task,
)
from jobsync.windows.upgrade import record_path, start_after_upgrade, stop_for_upgrade

from support.cluster import run_jobsync
from support.windows_fake import WINSW_BYTES, FakeWindows, Service, fake_winsw, node_config

GMSA = "CORP\\gmsa-jobsync$"
DOMAIN_ACCOUNT = "CORP\\svc-jobsync"


def _securing(argv: list[str]) -> bool:
    """Whether a command locks jobsync's folder down (see the test of the locked-down folder)."""
    if argv[0] == "powershell.exe":
        return argv[-1].startswith("(Get-Acl")
    return argv[0] == "icacls.exe" and (
        "/reset" in argv or "/inheritance:r" in argv or argv[-1].endswith(":(OI)(CI)RX")
    )


def _steps(windows: FakeWindows) -> list[list[str]]:
    """The commands run, but those that lock jobsync's folder down."""
    return [c for c in windows.commands if not _securing(c)]


def _verbs(windows: FakeWindows) -> list[str]:
    """Each command as tool and verb, e.g. 'sc.exe start' or 'winsw install'."""
    names = {"jobsync-service.exe": "winsw"}
    return [
        f"{names.get(Path(c[0]).name, Path(c[0]).name)} {c[1]}"
        for c in _steps(windows)
        if c[1] != "query"
    ]


def _no_secret_on_any_command_line(windows: FakeWindows) -> None:
    for argv in windows.commands:
        if "password=" in argv:
            assert argv[argv.index("password=") + 1] == "", argv  # a gMSA's empty password
        assert not any(arg.lower().startswith("/rp") and arg != "/RP" for arg in argv)
        if "/RP" in argv:
            assert argv[argv.index("/RP") + 1] == "*", argv  # schtasks asks on the console


def test_a_gmsa_service_is_installed_without_any_password(tmp_path: Path) -> None:
    """WinSW checked and copied, the definition written, the gMSA given with sc.exe, started.

    The account may write the state and log folders; recovery actions are set; no command
    line carries a password.
    """
    config = node_config(tmp_path, GMSA)
    winsw, sha = fake_winsw(tmp_path)
    windows = FakeWindows()
    install_service(config, windows.tools(), winsw=winsw, winsw_sha256=sha.upper())

    exe, xml = service_files(config)
    assert exe.read_bytes() == WINSW_BYTES
    assert xml.read_text(encoding="utf-8") == service_xml(config)
    assert _verbs(windows) == [
        "winsw install",
        "sc.exe config",
        "sc.exe qc",
        "powershell.exe -NoProfile",
        "icacls.exe " + str(config.state_dir),
        "icacls.exe " + str(exe.parent / "logs"),
        "sc.exe failure",
        "sc.exe failureflag",
        "sc.exe start",
    ]
    service = windows.services["jobsync"]
    assert (service.state, service.start_name) == ("RUNNING", GMSA)
    assert ["icacls.exe", str(config.state_dir), "/grant", f"{GMSA}:(OI)(CI)M"] in windows.commands
    assert windows.interactive == []
    _no_secret_on_any_command_line(windows)


def test_an_account_with_a_password_is_typed_at_winsws_own_prompt(tmp_path: Path) -> None:
    """For a domain account WinSW asks on the console (install /p); jobsync never sees it."""
    config = node_config(tmp_path, DOMAIN_ACCOUNT)
    winsw, sha = fake_winsw(tmp_path)
    windows = FakeWindows(typed_account=DOMAIN_ACCOUNT)
    install_service(config, windows.tools(), winsw=winsw, winsw_sha256=sha)

    assert windows.interactive == [[str(service_files(config)[0]), "install", "/p"]]
    assert any(DOMAIN_ACCOUNT in line and "password" in line for line in windows.said)
    assert windows.services["jobsync"].start_name == DOMAIN_ACCOUNT
    assert not any("warning" in line for line in windows.said)
    _no_secret_on_any_command_line(windows)


def test_a_mistyped_account_is_refused_and_a_rerun_converges(tmp_path: Path) -> None:
    """Another account typed at WinSW's prompt: the service is not started (exit 4).

    The next install sees the service under the wrong account and registers it again through
    WinSW's prompt, where the right account is typed: it then runs as the config says.
    """
    config = node_config(tmp_path, DOMAIN_ACCOUNT)
    winsw, sha = fake_winsw(tmp_path)
    windows = FakeWindows(typed_account="CORP\\someone-else")
    with pytest.raises(SafetyRefusalError, match=r"runs as CORP\\someone-else, but the config"):
        install_service(config, windows.tools(), winsw=winsw, winsw_sha256=sha)
    assert windows.services["jobsync"].state == "STOPPED"

    windows.typed_account = DOMAIN_ACCOUNT
    windows.commands.clear()
    install_service(config, windows.tools())
    assert [v for v in _verbs(windows) if v.startswith("winsw")] == [
        "winsw uninstall",
        "winsw install",
    ]
    service = windows.services["jobsync"]
    assert (service.state, service.start_name) == ("RUNNING", DOMAIN_ACCOUNT)


def test_a_gmsa_windows_does_not_know_leaves_no_service_behind(tmp_path: Path) -> None:
    """sc.exe config fails (1332): the registration is undone and the error said in words.

    0.2.1 left the service registered as LocalSystem, and the next run started it so. Now the
    next run (once the gMSA is installed on the node) registers it afresh, with the gMSA.
    """
    config = node_config(tmp_path, GMSA)
    winsw, sha = fake_winsw(tmp_path)
    windows = FakeWindows(unknown_accounts={GMSA})
    with pytest.raises(WindowsToolError, match="no such account: the name does not map"):
        install_service(config, windows.tools(), winsw=winsw, winsw_sha256=sha)
    assert windows.services == {}

    windows.unknown_accounts.clear()
    install_service(config, windows.tools())
    service = windows.services["jobsync"]
    assert (service.state, service.start_name) == ("RUNNING", GMSA)


@pytest.mark.parametrize(
    ("before", "after"),
    [(None, GMSA), (GMSA, None), ("CORP\\gmsa-other$", GMSA)],
    ids=["localsystem-to-gmsa", "gmsa-to-localsystem", "gmsa-to-gmsa"],
)
def test_a_rerun_gives_an_installed_service_the_configs_account(
    tmp_path: Path, before: str | None, after: str | None
) -> None:
    """Installing again converges: the service runs as the config says, set with sc.exe."""
    winsw, sha = fake_winsw(tmp_path)
    windows = FakeWindows()
    install_service(node_config(tmp_path, before), windows.tools(), winsw=winsw, winsw_sha256=sha)
    config = node_config(tmp_path, after)
    install_service(config, windows.tools())
    service = windows.services["jobsync"]
    assert (service.state, service.start_name) == ("RUNNING", after or "LocalSystem")
    assert [v for v in _verbs(windows) if v.startswith("winsw")] == ["winsw install"]


def test_local_system_needs_no_account_step(tmp_path: Path) -> None:
    """Without an account the service runs as LocalSystem: no sc.exe config, no icacls."""
    config = node_config(tmp_path)
    winsw, sha = fake_winsw(tmp_path)
    windows = FakeWindows()
    install_service(config, windows.tools(), winsw=winsw, winsw_sha256=sha, start=False)
    assert _verbs(windows) == [
        "winsw install",
        "sc.exe qc",
        "powershell.exe -NoProfile",
        "sc.exe failure",
        "sc.exe failureflag",
    ]
    assert windows.services["jobsync"].state == "STOPPED"


@pytest.mark.parametrize(
    ("sha", "error", "problem"),
    [
        ("0" * 64, SafetyRefusalError, "refusing to install it"),
        ("not-a-hash", ConfigError, "64 hex digits"),
        (None, ConfigError, "64 hex digits"),
    ],
)
def test_a_winsw_that_does_not_match_its_hash_is_refused(
    tmp_path: Path, sha: str | None, error: type[Exception], problem: str
) -> None:
    """Nothing is copied or run unless the executable has the SHA-256 the administrator gave."""
    config = node_config(tmp_path, GMSA)
    winsw, _ = fake_winsw(tmp_path)
    windows = FakeWindows()
    with pytest.raises(error, match=problem):
        install_service(config, windows.tools(), winsw=winsw, winsw_sha256=sha)
    assert windows.commands == []
    assert not service_files(config)[0].exists()


def test_installing_without_winsw_names_what_is_missing(tmp_path: Path) -> None:
    """The first install needs --winsw and its hash; the message says so."""
    with pytest.raises(ConfigError, match="--winsw FILE --winsw-sha256 HASH"):
        install_service(node_config(tmp_path), FakeWindows().tools())


def test_installing_again_refreshes_the_definition_and_keeps_the_service(tmp_path: Path) -> None:
    """A second install stops the running service, rewrites its XML, and starts it again."""
    config = node_config(tmp_path, GMSA)
    winsw, sha = fake_winsw(tmp_path)
    windows = FakeWindows()
    install_service(config, windows.tools(), winsw=winsw, winsw_sha256=sha)
    xml = service_files(config)[1]
    xml.write_text("stale", encoding="utf-8")
    windows.commands.clear()

    install_service(config, windows.tools())
    assert xml.read_text(encoding="utf-8") == service_xml(config)
    verbs = _verbs(windows)
    assert verbs[0] == "sc.exe stop"
    assert verbs[-1] == "sc.exe start"
    assert "winsw install" not in verbs
    assert windows.services["jobsync"].state == "RUNNING"


def test_uninstall_removes_the_service_and_keeps_config_state_and_logs(tmp_path: Path) -> None:
    """Stop, WinSW uninstall, its files gone, the account's grants taken back.

    The config and the folders it wrote stay; a second uninstall finds nothing to remove.
    """
    config = node_config(tmp_path, GMSA)
    winsw, sha = fake_winsw(tmp_path)
    windows = FakeWindows()
    install_service(config, windows.tools(), winsw=winsw, winsw_sha256=sha)
    (config.state_dir / "agent.json").write_text("{}")

    uninstall_service(config, windows.tools())
    assert windows.services == {}
    home = config.path.parent
    for folder in (home, config.state_dir, home / "logs"):
        assert ["icacls.exe", str(folder), "/remove:g", GMSA] in windows.commands
    exe, xml = service_files(config)
    assert not exe.exists()
    assert not xml.exists()
    assert config.path.is_file()
    assert (config.state_dir / "agent.json").is_file()
    assert (exe.parent / "logs").is_dir()

    windows.commands.clear()
    uninstall_service(config, windows.tools())  # again: nothing there, nothing fails
    assert [v for v in _verbs(windows) if not v.startswith("icacls.exe")] == [
        "powershell.exe -NoProfile"  # Remove-EventLog, if there
    ]
    assert windows.services == {}


@pytest.mark.parametrize(
    ("account", "how"),
    [(None, "schtasks.exe"), (GMSA, "powershell.exe"), (DOMAIN_ACCOUNT, "schtasks.exe /RP *")],
    ids=["system", "gmsa", "domain-account"],
)
def test_the_fallback_task_is_registered_from_its_xml(
    tmp_path: Path, account: str | None, how: str
) -> None:
    """The task XML, written UTF-16, is what Task Scheduler gets; a password only at a prompt."""
    config = node_config(tmp_path, account)
    windows = FakeWindows()
    install_task(config, windows.tools())

    assert windows.tasks == {"jobsync push": task_xml(config)}
    (create,) = _steps(windows)
    assert " ".join(create[:1] + create[-2:] if "/RP" in create else create[:1]) == how
    assert (create in windows.interactive) == (account == DOMAIN_ACCOUNT)
    _no_secret_on_any_command_line(windows)

    uninstall_task(config, windows.tools())
    assert windows.tasks == {}
    uninstall_task(config, windows.tools())  # again: nothing to remove, no failure


def test_an_upgrade_stops_what_runs_and_starts_exactly_that_again(tmp_path: Path) -> None:
    """Stopping: service stopped, task disabled, both noted; a second stop forgets nothing.

    Starting (by the new version): the task enabled, the service's definition refreshed and
    the service started, the note removed.
    """
    config = node_config(tmp_path, GMSA)
    winsw, sha = fake_winsw(tmp_path)
    windows = FakeWindows()
    tools = windows.tools()
    install_service(config, tools, winsw=winsw, winsw_sha256=sha)
    install_task(config, tools)

    assert stop_for_upgrade(config, tools) == {"service": True, "task": True}
    assert windows.services["jobsync"].state == "STOPPED"
    assert "<Enabled>false</Enabled>" in windows.tasks["jobsync push"].split("<Settings>")[1]
    assert stop_for_upgrade(config, tools) == {"service": True, "task": True}  # a rerun
    assert json.loads(record_path(config).read_text())["service"] is True

    service_files(config)[1].write_text("the old version's definition", encoding="utf-8")
    assert start_after_upgrade(config, tools) == {"service": True, "task": True}
    assert windows.services["jobsync"].state == "RUNNING"
    assert service_files(config)[1].read_text(encoding="utf-8") == service_xml(config)
    assert "<Enabled>true</Enabled>" in windows.tasks["jobsync push"].split("<Settings>")[1]
    assert not record_path(config).exists()


def test_an_upgrade_leaves_alone_what_was_not_running(tmp_path: Path) -> None:
    """A stopped service and an absent task stay so: nothing is started that was not running."""
    config = node_config(tmp_path)
    winsw, sha = fake_winsw(tmp_path)
    windows = FakeWindows()
    tools = windows.tools()
    install_service(config, tools, winsw=winsw, winsw_sha256=sha, start=False)
    assert stop_for_upgrade(config, tools) == {"service": False, "task": False}
    windows.commands.clear()
    assert start_after_upgrade(config, tools) == {"service": False, "task": False}
    assert "sc.exe start" not in _verbs(windows)
    assert windows.services["jobsync"].state == "STOPPED"


def test_an_upgrade_points_both_definitions_at_the_new_interpreter(tmp_path: Path) -> None:
    """The new version (another virtual environment) names its own python.exe everywhere.

    Even what was not running: a stopped service gets the new definition and stays stopped, a
    task the administrator had disabled is registered anew and stays disabled. Otherwise they
    would still name the previous environment, which a later upgrade removes.
    """
    config = node_config(tmp_path, GMSA)
    winsw, sha = fake_winsw(tmp_path)
    windows = FakeWindows()
    tools = windows.tools()
    install_service(config, tools, winsw=winsw, winsw_sha256=sha, start=False)
    install_task(config, tools)
    tools.check(["schtasks.exe", "/Change", "/TN", "jobsync push", "/DISABLE"])
    assert stop_for_upgrade(config, tools) == {"service": False, "task": False}

    new = "C:\\Program Files\\jobsync\\venv-0.3.0\\Scripts\\python.exe"
    upgraded = replace(config, service=replace(config.service, python=new))
    start_after_upgrade(upgraded, tools)
    definition = service_files(config)[1].read_text(encoding="utf-8")
    assert f"<executable>{new}</executable>" in definition
    task = windows.tasks["jobsync push"]
    assert f"<Command>{new}</Command>" in task
    assert "<Enabled>false</Enabled>" in task.split("<Settings>")[1]
    assert windows.services["jobsync"].state == "STOPPED"


@pytest.mark.parametrize("account", [GMSA, None], ids=["gmsa", "local-system"])
def test_check_runs_as_the_service_account_through_a_one_off_task(
    tmp_path: Path, account: str | None
) -> None:
    """The task runs jobsync check under the service's principal; its output comes back.

    The fake Task Scheduler runs the task's action for real, so the probe it names works;
    the task, its XML and the result file are gone afterwards.
    """
    config = node_config(tmp_path, account)
    windows = FakeWindows()
    code, output = check_as_service(config, windows.tools())

    assert code == 0, output
    assert output.startswith("jobsync check, run as ")
    assert "node2  OK" in output
    assert windows.tasks == {}
    assert not list(config.state_dir.glob("check-as-service*"))
    assert not list(config.path.parent.glob("jobsync-check-task*"))
    registered = next(c for c in _steps(windows) if c[0] != "icacls.exe")
    assert registered[0] == ("powershell.exe" if account else "schtasks.exe")


def test_check_as_service_reports_a_failing_peer(tmp_path: Path) -> None:
    """A peer the account cannot write shows as failed with exit 3, as jobsync check does."""
    config = node_config(tmp_path)
    (tmp_path / "peer").rmdir()
    code, output = check_as_service(config, FakeWindows().tools())
    assert code == 3
    assert "node2" in output


def test_the_windows_commands_fail_in_one_line_where_the_tools_are_missing(
    tmp_path: Path,
) -> None:
    """Run where sc.exe does not exist, a Windows command exits 2 with one line, no traceback."""
    config = node_config(tmp_path, GMSA)
    done = subprocess.run(
        [sys.executable, "-m", "jobsync", "service", "uninstall", "-c", str(config.path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("jobsync: cannot run sc.exe")
    assert len(done.stderr.strip().splitlines()) == 1


class RefusingWindows(FakeWindows):
    """Windows where one step is refused (access denied) and a service never stops."""

    def __call__(self, argv: Sequence[str], *, interactive: bool = False) -> Completed:
        """Refuse ``sc.exe failure``; accept a stop without ever stopping."""
        if list(argv[:2]) == ["sc.exe", "failure"]:
            self.commands.append(list(argv))
            return Completed(5, "[SC] ChangeServiceConfig2 FAILED 5:\n\nAccess is denied.\n")
        if list(argv[:2]) == ["sc.exe", "stop"]:
            self.commands.append(list(argv))
            return Completed(0)
        return super().__call__(argv, interactive=interactive)


def test_a_refused_step_names_the_command_and_what_windows_said(tmp_path: Path) -> None:
    """A tool's refusal is one error naming the command line and its answer."""
    config = node_config(tmp_path, GMSA)
    winsw, sha = fake_winsw(tmp_path)
    with pytest.raises(WindowsToolError) as refused:
        install_service(config, RefusingWindows().tools(), winsw=winsw, winsw_sha256=sha)
    assert str(refused.value) == (
        f"sc.exe failure jobsync reset= 86400 actions= {RESTART_ACTIONS} failed (exit 5): "
        "[SC] ChangeServiceConfig2 FAILED 5: Access is denied."
    )


def test_an_uninstall_goes_on_past_a_failing_step_and_says_why(tmp_path: Path) -> None:
    """1072 (marked for deletion): the Event Log source and the grants still go; then the words.

    0.2.1 stopped at the first failing step and left the account's grants behind.
    """
    config = node_config(tmp_path, GMSA)
    winsw, sha = fake_winsw(tmp_path)
    windows = FakeWindows()
    install_service(config, windows.tools(), winsw=winsw, winsw_sha256=sha)
    exe = str(service_files(config)[0])
    answer = windows.__call__

    def marked(argv: Sequence[str], *, interactive: bool = False) -> Completed:
        if list(argv) == [exe, "uninstall"]:
            return Completed(
                1072, "FAILED 1072: The specified service has been marked for deletion."
            )
        return answer(argv, interactive=interactive)

    tools = windows.tools()
    tools.run = marked
    with pytest.raises(WindowsToolError, match=r"close services\.msc and Event Viewer"):
        uninstall_service(config, tools)
    assert windows.event_sources == set()
    assert ["icacls.exe", str(config.state_dir), "/remove:g", GMSA] in windows.commands


def test_a_service_that_does_not_stop_in_time_is_reported(tmp_path: Path) -> None:
    """Waiting for a stop is bounded: stop_timeout_seconds plus 15 s, then a clear error."""
    config = node_config(tmp_path)
    windows = RefusingWindows()
    windows.services["jobsync"] = Service("jobsync-service.exe", state="RUNNING")
    with pytest.raises(WindowsToolError, match="gave up after 30 s waiting for service jobsync"):
        uninstall_service(config, windows.tools())
    assert "jobsync" in windows.services  # not removed while it still runs


def test_jobsyncs_folder_is_locked_down_before_anything_is_written_there(tmp_path: Path) -> None:
    """Owner checked, inheritance removed, SYSTEM and Administrators alone, the account reads.

    These are the first commands of an install, before WinSW or its definition lands there.
    """
    config = node_config(tmp_path, GMSA)
    winsw, sha = fake_winsw(tmp_path)
    windows = FakeWindows()
    install_service(config, windows.tools(), winsw=winsw, winsw_sha256=sha)
    home = str(tmp_path / "ProgramData" / "jobsync")
    assert windows.commands[:4] == [
        [
            "powershell.exe",
            "-NoProfile",
            "-NonInteractive",
            "-Command",
            f"(Get-Acl -LiteralPath '{home}').Owner",
        ],
        ["icacls.exe", home, "/reset", "/T", "/C", "/Q"],
        [
            "icacls.exe",
            home,
            "/inheritance:r",
            "/grant:r",
            "*S-1-5-18:(OI)(CI)F",
            "*S-1-5-32-544:(OI)(CI)F",
        ],
        ["icacls.exe", home, "/grant", f"{GMSA}:(OI)(CI)RX"],
    ]


@pytest.mark.parametrize("what", ["service", "task"])
def test_a_folder_another_user_owns_is_refused(tmp_path: Path, what: str) -> None:
    """A jobsync folder a user created beforehand: exit 4, nothing installed or written there."""
    config = node_config(tmp_path, GMSA)
    winsw, sha = fake_winsw(tmp_path)
    windows = FakeWindows(home_owner="NODE1\\mallory")

    def install() -> None:
        if what == "service":
            install_service(config, windows.tools(), winsw=winsw, winsw_sha256=sha)
        else:
            install_task(config, windows.tools())

    with pytest.raises(SafetyRefusalError, match=r"owned by NODE1\\mallory, not by Administrators"):
        install()
    assert [c[0] for c in windows.commands] == ["powershell.exe"]
    assert (windows.services, windows.tasks) == ({}, {})
    assert [p.name for p in (tmp_path / "ProgramData" / "jobsync").iterdir()] == ["jobsync.toml"]


def test_the_shipped_examples_digest_is_known() -> None:
    """readiness.EXAMPLE_SHA256 is docs/jobsync.example.toml's: the refusal below stays true."""
    example = Path(__file__).resolve().parents[2] / "docs" / "jobsync.example.toml"
    assert example_digest(example.read_bytes()) == EXAMPLE_SHA256


@pytest.mark.parametrize("command", ["service", "schedule"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_the_unedited_example_is_never_installed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, newline: str
) -> None:
    """install.ps1's first run copies the example; installing it as it is: exit 2, one line."""
    example = Path(__file__).resolve().parents[2] / "docs" / "jobsync.example.toml"
    copied = tmp_path / "jobsync.toml"
    copied.write_bytes(example.read_text(encoding="utf-8").replace("\n", newline).encode())
    ran = run_jobsync(capsys, [command, "install", "-c", str(copied)])
    assert ran.code == 2, ran
    assert len(ran.err.splitlines()) == 1
    assert "is the example as shipped" in ran.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobsync.toml"]


def test_a_config_whose_check_fails_is_not_installed(tmp_path: Path) -> None:
    """A peer the check cannot write to: refused (exit 4) with the check's reason."""
    config = node_config(tmp_path, GMSA)
    require_ready(config, what="service")  # the peer is there: ready
    shutil.rmtree(tmp_path / "peer")
    with pytest.raises(
        SafetyRefusalError, match=r"the task was not installed: jobsync check fails \(node2: "
    ):
        require_ready(config, what="task")


NETWORK_SERVICE = "NT AUTHORITY\\NetworkService"


def test_network_service_needs_no_password_and_is_named_by_sid(tmp_path: Path) -> None:
    """NetworkService: set with sc.exe (empty password), granted by SID, its task as S-1-5-20.

    0.2.1 could not even name it, and would have asked for its password at WinSW's prompt.
    """
    config = node_config(tmp_path, NETWORK_SERVICE)
    winsw, sha = fake_winsw(tmp_path)
    windows = FakeWindows()
    install_service(config, windows.tools(), winsw=winsw, winsw_sha256=sha)
    install_task(config, windows.tools())

    assert windows.interactive == []
    assert ["sc.exe", "config", "jobsync", "obj=", NETWORK_SERVICE, "password=", ""] in (
        windows.commands
    )
    assert ["icacls.exe", str(config.state_dir), "/grant", "*S-1-5-20:(OI)(CI)M"] in (
        windows.commands
    )
    service = windows.services["jobsync"]
    assert (service.state, service.start_name) == ("RUNNING", NETWORK_SERVICE)
    root = ET.fromstring(windows.tasks["jobsync push"])  # noqa: S314 - jobsync's own XML
    principal = root.find("t:Principals/t:Principal", {"t": TASK_NAMESPACE})
    assert principal is not None
    assert principal.findtext("t:UserId", namespaces={"t": TASK_NAMESPACE}) == "S-1-5-20"
    assert principal.findtext("t:LogonType", namespaces={"t": TASK_NAMESPACE}) == "ServiceAccount"


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("nt authority\\networkservice", None),
        ("NT AUTHORITY\\LocalService", "has no identity on the network"),
        ("LocalService", "has no identity on the network"),
    ],
)
def test_built_in_accounts_are_named_as_windows_names_them(
    tmp_path: Path, written: str, problem: str | None
) -> None:
    """NetworkService in any case is the one account; LocalService cannot reach a peer: exit 2."""
    if problem is None:
        assert node_config(tmp_path, written).service.account == NETWORK_SERVICE
    else:
        with pytest.raises(ConfigError, match=problem):
            node_config(tmp_path, written)


def _failing_at(windows: FakeWindows, index: int) -> Tools:
    """Tools whose ``index``-th command (counting from 0) fails as a Windows tool would."""
    answer, seen = windows.__call__, [0]

    def run(argv: Sequence[str], *, interactive: bool = False) -> Completed:
        seen[0] += 1
        if seen[0] - 1 == index:
            windows.commands.append(list(argv))
            return Completed(5, "Access is denied.")
        return answer(argv, interactive=interactive)

    tools = windows.tools()
    tools.run = run
    return tools


@pytest.mark.parametrize("account", [GMSA, None, "NT AUTHORITY\\NetworkService"])
def test_an_install_that_fails_at_any_step_converges_when_run_again(
    tmp_path: Path, account: str | None
) -> None:
    """Each command of the service's install fails in turn; the next run ends where one run does.

    Whatever step failed, the re-run leaves the service registered once, under the config's
    account, running, with its definition, the Event Log source and the grants.
    """
    reference = FakeWindows()
    config = node_config(tmp_path, account)
    winsw, sha = fake_winsw(tmp_path)
    install_service(config, reference.tools(), winsw=winsw, winsw_sha256=sha)
    steps = len(reference.commands)
    for index in range(steps):
        for leftover in service_files(config):
            leftover.unlink(missing_ok=True)
        windows = FakeWindows()
        with pytest.raises(JobsyncError):
            install_service(config, _failing_at(windows, index), winsw=winsw, winsw_sha256=sha)
        install_service(config, windows.tools(), winsw=winsw, winsw_sha256=sha)
        service = windows.services["jobsync"]
        assert (service.state, service.start_name) == (
            "RUNNING",
            account or "LocalSystem",
        ), index
        assert service_files(config)[1].read_text(encoding="utf-8") == service_xml(config)
        assert windows.event_sources == {"jobsync"}, index


def _installed(tmp_path: Path) -> tuple[Config, FakeWindows]:
    config = node_config(tmp_path, GMSA)
    winsw, sha = fake_winsw(tmp_path)
    windows = FakeWindows()
    install_service(config, windows.tools(), winsw=winsw, winsw_sha256=sha)
    install_task(config, windows.tools())
    record_path(config).unlink(missing_ok=True)
    return config, windows


def _steps_of(run: Callable[[Tools], object], windows: FakeWindows) -> int:
    before = len(windows.commands)
    run(windows.tools())
    return len(windows.commands) - before


@pytest.mark.parametrize("phase", ["stop", "start"])
def test_an_upgrade_step_that_fails_at_any_command_converges_when_run_again(
    tmp_path: Path, phase: str
) -> None:
    """Deploy stop, then deploy start, each failing at each of its commands in turn.

    Run again, stop leaves the service stopped and the task disabled with both noted; start
    leaves both running and enabled, the note gone: what one clean run leaves.
    """
    config, reference = _installed(tmp_path)
    stop_steps = _steps_of(lambda t: stop_for_upgrade(config, t), reference)
    start_steps = _steps_of(lambda t: start_after_upgrade(config, t), reference)
    for index in range(stop_steps if phase == "stop" else start_steps):
        config, windows = _installed(tmp_path)
        if phase == "start":
            stop_for_upgrade(config, windows.tools())
        step = stop_for_upgrade if phase == "stop" else start_after_upgrade
        # A command whose failure is expected (ending a push when none runs) is not an error.
        with contextlib.suppress(JobsyncError):
            step(config, _failing_at(windows, index))
        step(config, windows.tools())
        enabled = "<Enabled>true</Enabled>" in windows.tasks["jobsync push"].split("<Settings>")[1]
        if phase == "stop":
            assert windows.services["jobsync"].state == "STOPPED", index
            assert not enabled, index
            assert json.loads(record_path(config).read_text())["service"] is True, index
        else:
            assert windows.services["jobsync"].state == "RUNNING", index
            assert enabled, index
            assert not record_path(config).exists(), index


@pytest.mark.parametrize("account", [GMSA, None, DOMAIN_ACCOUNT])
def test_a_task_install_that_fails_at_any_step_converges_when_run_again(
    tmp_path: Path, account: str | None
) -> None:
    """Each command of the task's install fails in turn; the re-run registers it as one run does."""
    config = node_config(tmp_path, account)
    reference = FakeWindows()
    install_task(config, reference.tools())
    for index in range(len(reference.commands)):
        windows = FakeWindows()
        with pytest.raises(JobsyncError):
            install_task(config, _failing_at(windows, index))
        install_task(config, windows.tools())
        assert windows.tasks == {"jobsync push": task_xml(config)}, index
