"""Integrify's files as key paths, its paths and its accounts: the pure half of the fleet check."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from jobsync.integrify_files import (
    TASK_NAMESPACE,
    TaskDefinition,
    differing_keys,
    drive_letter,
    majority,
    parse_file,
    path_key,
    path_kind,
    pool_identities,
    same_account,
    task_definition,
)
from jobsync.windows.tasks import task_xml

from support.windows_fake import node_config

if TYPE_CHECKING:
    from pathlib import Path

SETTINGS = b"""<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <!-- written by the OnPremise Manager -->
  <appSettings>
    <add key="AttachmentsPath" value="\\\\nas\\integrify\\attachments" />
    <add key="SmtpServer" value="smtp.example.com" />
  </appSettings>
  <connectionStrings>
    <add name="Integrify" connectionString="Server=sql;Password=Hunter2;" providerName="x" />
  </connectionStrings>
  <log><level>info</level><level>debug</level></log>
</configuration>
"""


def test_xml_key_paths_follow_the_dotnet_idiom() -> None:
    """``add key`` is its key; other identities are named; attributes and text have paths."""
    parsed = parse_file("settings.config", SETTINGS)
    assert parsed.problem is None
    assert parsed.values == {
        "appSettings/AttachmentsPath": "\\\\nas\\integrify\\attachments",
        "appSettings/SmtpServer": "smtp.example.com",
        "connectionStrings/Integrify/@connectionString": "Server=sql;Password=Hunter2;",
        "connectionStrings/Integrify/@providerName": "x",
        "log/level": "info",
        "log/level[2]": "debug",
    }


def test_json_key_paths_join_keys_and_index_lists() -> None:
    """Objects by ``/``, lists by ``[n]``; numbers and booleans compare as JSON text."""
    data = {"port": 80, "storage": {"reports": "D:\\r", "mirrors": ["a", "b"]}, "tls": False}
    parsed = parse_file("server-config.json", json.dumps(data).encode())
    assert parsed.values == {
        "port": "80",
        "storage/reports": "D:\\r",
        "storage/mirrors[0]": "a",
        "storage/mirrors[1]": "b",
        "tls": "false",
    }


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("settings.config", b"<configuration><appSettings>Password=Hunter2", "XML (line 1"),
        ("server-config.json", b'{"password": "Hunter2",', "JSON (line 1, column"),
        ("settings.config", b"<a>\xff\xfe Hunter2</a>", "XML"),
    ],
)
def test_a_file_that_does_not_parse_says_where_never_what(
    name: str, data: bytes, says: str
) -> None:
    """The reason names a position; the file's content (a password here) is not in it."""
    parsed = parse_file(name, data)
    assert parsed.values is None
    assert parsed.problem is not None
    assert says in parsed.problem
    assert "Hunter2" not in parsed.problem


def test_differences_leave_out_the_allowed_keys_and_count_a_missing_key() -> None:
    """A key on one side only differs; a key allowed to differ is never compared."""
    a = parse_file("s.json", b'{"a": 1, "b": 2, "node": "n1"}')
    b = parse_file("s.json", b'{"a": 1, "c": 3, "node": "n2"}')
    allowed = frozenset({"node"})
    assert differing_keys(a, b, allowed) == ["b", "c"]
    assert a.comparable(allowed) != b.comparable(allowed)
    same = parse_file("s.json", b'{"a": 1, "b": 2, "node": "n9"}')
    assert a.comparable(allowed) == same.comparable(allowed)


def test_unparsed_copies_compare_by_their_bytes() -> None:
    """Two identical broken files are alike; one more byte makes them differ."""
    one, two = parse_file("x.json", b"{"), parse_file("x.json", b"{")
    three = parse_file("x.json", b"{ ")
    assert one.comparable(frozenset()) == two.comparable(frozenset())
    assert one.comparable(frozenset()) != three.comparable(frozenset())


def test_the_majority_wins_and_a_tie_goes_to_the_preferred_node() -> None:
    """Two nodes against one; one against one goes to ``prefer``."""
    assert majority({"n1": "x", "n2": "y", "n3": "y"}, prefer="n1") == "y"
    assert majority({"n1": "x", "n2": "y"}, prefer="n2") == "y"
    assert majority({"n1": "x", "n2": "y"}, prefer="n9") == "x"


@pytest.mark.parametrize(
    ("value", "kind", "letter"),
    [
        ("\\\\nas\\integrify\\attachments", "unc", None),
        ("\\\\nas", "other", None),
        ("D:\\IntegrifyFiles", "drive", "D"),
        ("z:\\", "drive", "Z"),
        ("attachments", "other", None),
        ("https://example.com", "other", None),
    ],
)
def test_paths_are_unc_drive_letters_or_neither(value: str, kind: str, letter: str | None) -> None:
    r"""Only ``\\server\share...`` is a UNC path; a drive letter is named."""
    assert path_kind(value) == kind
    assert drive_letter(value) == letter


def test_paths_compare_as_windows_compares_them() -> None:
    """Case, slash direction and a trailing slash do not matter."""
    assert path_key("\\\\NAS\\Share\\Files\\") == path_key("\\\\nas\\share\\files")
    assert path_key("//nas/share/files") == path_key("\\\\nas\\share\\files")


APPLICATION_HOST = b"""<configuration><system.applicationHost><applicationPools>
  <add name="Integrify"><processModel identityType="SpecificUser" userName="CORP\\svc"
       password="[enc:AesProvider:c2VjcmV0:enc]" /></add>
  <add name="Reports"><processModel identityType="NetworkService" /></add>
  <add name="DefaultAppPool" />
  <applicationPoolDefaults><processModel identityType="ApplicationPoolIdentity" />
  </applicationPoolDefaults>
</applicationPools></system.applicationHost></configuration>"""


def test_pool_identities_as_iis_runs_them() -> None:
    """A user, a built-in account, and the default pool identity; the password is not read."""
    found = pool_identities(APPLICATION_HOST)
    assert found == {
        "Integrify": "CORP\\svc",
        "Reports": "NT AUTHORITY\\NetworkService",
        "DefaultAppPool": "IIS APPPOOL\\DefaultAppPool",
    }
    assert "c2VjcmV0" not in repr(found)


def test_a_broken_application_host_config_raises_in_words() -> None:
    """A ValueError naming the file and the position."""
    with pytest.raises(ValueError, match=r"applicationHost.config does not parse as XML \(line"):
        pool_identities(b"<configuration>")


def test_an_account_in_either_form_is_one_account() -> None:
    r"""``CORP\svc`` and ``svc@corp.example.com`` are one; another user or domain is not."""
    assert same_account("CORP\\svc", "svc@corp.example.com")
    assert same_account("corp\\SVC", "CORP\\svc")
    assert not same_account("CORP\\svc", "CORP\\other")
    assert not same_account("CORP\\svc", "svc@lab.example.com")


def test_a_task_as_windows_keeps_it_reads_as_jobsync_registered_it(tmp_path: Path) -> None:
    """The XML ``jobsync schedule install`` registers, in UTF-16 with a BOM as Windows keeps it."""
    cfg = node_config(tmp_path, account="NT AUTHORITY\\NetworkService")
    cfg = replace(cfg, schedule=replace(cfg.schedule, interval_minutes=10))
    xml = task_xml(cfg)
    task = task_definition(xml.encode("utf-16"))
    assert task == TaskDefinition(
        enabled=True, pushes=True, account="NETWORK SERVICE", every_minutes=10.0
    )
    assert task_definition(xml) == task, "as schtasks /Query /XML prints it"
    at = xml.rindex("<Enabled>true</Enabled>")  # the task's own, after the triggers'
    off = xml[:at] + "<Enabled>false</Enabled>" + xml[at + len("<Enabled>true</Enabled>") :]
    assert not task_definition(off.encode("utf-16")).enabled


def _task(exec_xml: str, *, user: str = "S-1-5-18", extra: str = "") -> bytes:
    return (
        f'<Task version="1.2" xmlns="{TASK_NAMESPACE}"><Triggers>{extra}</Triggers>'
        f"<Principals><Principal><UserId>{user}</UserId></Principal></Principals>"
        f"<Actions>{exec_xml}</Actions></Task>"
    ).encode()


@pytest.mark.parametrize(
    ("command", "arguments", "pushes"),
    [
        (
            r"C:\Python\python.exe",
            r'-I -m jobsync push -c "C:\ProgramData\jobsync\jobsync.toml"',
            True,
        ),
        (r'"C:\Program Files\jobsync\jobsync.exe"', "push", True),
        (r"C:\Python\python.exe", "-I -m jobsync check", False),
        (r"C:\Windows\System32\cmd.exe", "/c echo push", False),
    ],
)
def test_what_a_task_runs(command: str, arguments: str, *, pushes: bool) -> None:
    """Only an action that runs jobsync's push counts as the fallback task."""
    action = f"<Exec><Command>{command}</Command><Arguments>{arguments}</Arguments></Exec>"
    assert task_definition(_task(action)).pushes is pushes


def test_a_tasks_account_and_repetition_in_words() -> None:
    """A built-in SID by its name; a domain account as written; the repetition in minutes."""
    action = "<Exec><Command>jobsync.exe</Command><Arguments>push</Arguments></Exec>"
    hourly = "<TimeTrigger><Repetition><Interval>PT1H30M</Interval></Repetition></TimeTrigger>"
    task = task_definition(_task(action, extra=hourly))
    assert (task.account, task.every_minutes) == ("SYSTEM", 90.0)
    assert task.summary() == "runs jobsync push every 90 minutes as SYSTEM"
    other = task_definition(_task(action, user="CORP\\gmsa-jobsync$"))
    assert (other.account, other.every_minutes) == ("CORP\\gmsa-jobsync$", None)


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"<Task", "it does not parse as XML (line 1, column 1)"),
        (b"<configuration />", "it is not a Task Scheduler task"),
    ],
)
def test_a_file_that_is_no_task_raises_in_words(data: bytes, why: str) -> None:
    """The fleet check shows these words as the reason it cannot check the task."""
    with pytest.raises(ValueError, match=re.escape(why)):
        task_definition(data)
