"""Windows operations decided in Python: service and task XML, credentials, the work lock."""

from __future__ import annotations

import shlex
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from jobsync.config.load import load_config
from jobsync.config.model import Config
from jobsync.credentials import resolve_password
from jobsync.errors import ConfigError
from jobsync.integrify_files import TASK_NAMESPACE
from jobsync.node import WorkLock, host_name
from jobsync.windows.install import service_xml
from jobsync.windows.tasks import probe_task_xml, task_xml

from support.cluster import Cluster
from support.polling import wait_for

BASE = """
node = "node1"
node_differs_from_host = true
source = '/srv/jobs'
[[peers]]
name = "node2"
path = '\\\\node2\\integrify$\\jobs'
"""
TASK = {"t": TASK_NAMESPACE}


def _config(tmp_path: Path, extra: str = "") -> Config:
    path = tmp_path / "jobsync.toml"
    path.write_text(BASE + extra, encoding="utf-8")
    return load_config(path, environ={})


@pytest.mark.parametrize(
    ("extra", "account"),
    [
        ("", None),
        ("[service]\naccount = 'CORP\\gmsa-jobsync$'\n", "CORP\\gmsa-jobsync$"),
        ("[service]\naccount = 'svc-jobsync@corp.example'\n", "svc-jobsync@corp.example"),
    ],
    ids=["local-system", "gmsa", "domain-account"],
)
def test_service_xml_carries_what_winsw_needs(
    tmp_path: Path, extra: str, account: str | None
) -> None:
    """The WinSW XML carries everything the service needs, and never an account or password.

    It names the service, runs `-I -m jobsync watch --config <abs>` in the interpreter's own
    folder, restarts on failure at 10 s,
    60 s and 5 min, and rolls its logs. The account (``account``) goes to the service manager
    at install time instead (see test_windows_deploy.py), so it is not in the file.
    """
    config = _config(tmp_path, extra)
    root = ET.fromstring(service_xml(config))  # noqa: S314 - our own output

    assert root.tag == "service"
    assert root.findtext("id") == "jobsync"
    assert root.findtext("name")
    assert root.findtext("description")
    assert root.findtext("executable") == sys.executable
    assert root.findtext("arguments") == f'-I -m jobsync watch --config "{config.path.resolve()}"'
    assert root.findtext("workingdirectory") == str(Path(sys.executable).parent)
    assert root.findtext("stoptimeout") == "15 sec"
    assert [e.get("delay") for e in root.findall("onfailure")] == ["10 sec", "60 sec", "5 min"]
    assert {e.get("action") for e in root.findall("onfailure")} == {"restart"}
    assert root.findtext("resetfailure")
    assert root.find("log").get("mode") == "roll-by-size"  # type: ignore[union-attr]
    assert root.find("serviceaccount") is None
    assert root.find(".//password") is None
    assert account is None or account not in service_xml(config)


def test_service_python_can_be_overridden(tmp_path: Path) -> None:
    """[service] python names the interpreter the service runs."""
    exe = "C:\\Program Files\\jobsync\\.venv\\Scripts\\python.exe"
    config = _config(tmp_path, f"[service]\npython = '{exe}'\nstop_timeout_seconds = 20\n")
    root = ET.fromstring(service_xml(config))  # noqa: S314 - our own output
    assert root.findtext("executable") == exe
    assert root.findtext("workingdirectory") == "C:\\Program Files\\jobsync\\.venv\\Scripts"
    assert root.findtext("stoptimeout") == "20 sec"


@pytest.mark.parametrize(
    ("extra", "user", "logon"),
    [
        ("", "S-1-5-18", "ServiceAccount"),
        (
            "[schedule]\ninterval_minutes = 7\naccount = 'CORP\\svc-jobsync'\n",
            "CORP\\svc-jobsync",
            "Password",
        ),
        ("[service]\naccount = 'CORP\\gmsa-jobsync$'\n", "CORP\\gmsa-jobsync$", "Password"),
    ],
    ids=["system", "stored-password", "gmsa-from-service"],
)
def test_task_xml_carries_what_task_scheduler_needs(
    tmp_path: Path, extra: str, user: str, logon: str
) -> None:
    """The task XML has what the fallback push needs.

    A repeating time trigger, a boot trigger, IgnoreNew, a time limit, start when available,
    battery settings off, `push --config <abs>`, and a principal that can reach the network.
    """
    config = _config(tmp_path, extra)
    root = ET.fromstring(task_xml(config))  # noqa: S314 - our own output
    interval = f"PT{config.schedule.interval_minutes}M"

    assert root.tag == f"{{{TASK_NAMESPACE}}}Task"
    assert (
        root.findtext("t:Triggers/t:TimeTrigger/t:Repetition/t:Interval", namespaces=TASK)
        == interval
    )
    assert root.findtext("t:Triggers/t:BootTrigger/t:Delay", namespaces=TASK) == "PT2M"
    settings = {e.tag.split("}")[1]: e.text for e in root.find("t:Settings", TASK)}  # type: ignore[union-attr]
    assert settings["MultipleInstancesPolicy"] == "IgnoreNew"
    assert settings["ExecutionTimeLimit"] == "PT30M"
    assert settings["StartWhenAvailable"] == "true"
    assert settings["DisallowStartIfOnBatteries"] == "false"
    assert settings["StopIfGoingOnBatteries"] == "false"
    exec_ = root.find("t:Actions/t:Exec", TASK)
    assert exec_ is not None
    assert exec_.findtext("t:Arguments", namespaces=TASK) == (
        f'-I -m jobsync push --config "{config.path.resolve()}"'
    )
    principal = root.find("t:Principals/t:Principal", TASK)
    assert principal is not None
    assert principal.findtext("t:UserId", namespaces=TASK) == user
    assert principal.findtext("t:LogonType", namespaces=TASK) == logon
    assert "S4U" not in task_xml(config)
    assert interval in task_xml(config)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ("[service]\naccount = 'justaname'\n", "account must be DOMAIN\\name"),
        ("[service]\nstop_timeout_seconds = 5\n", "more than 10"),
        ("[service]\nid = 'has space'\n", "id must be"),
        ("[schedule]\ninterval_minutes = 0\n", "interval_minutes must be"),
        ("[schedule]\ntask_name = 'a:b'\n", "task_name"),
        ("[schedule]\ncolour = 'blue'\n", "unknown key: colour"),
    ],
)
def test_bad_service_and_schedule_settings_are_refused(
    tmp_path: Path, extra: str, problem: str
) -> None:
    """Service and task settings are validated like the rest of the config."""
    with pytest.raises(ConfigError, match=problem.replace("\\", "\\\\")):
        _config(tmp_path, extra)


class FakeStore:
    """A keyring backend in memory, as the tests' credential store."""

    def __init__(self, entries: dict[tuple[str, str], str]) -> None:
        """Hold ``entries`` keyed by (service, user)."""
        self.entries = entries

    def get(self, service: str, user: str) -> str | None:
        """The stored password, as keyring.get_password answers."""
        return self.entries.get((service, user))


def _resolve(**kwargs: object) -> str | None:
    store = FakeStore({("jobsync-peers", "CORP\\svc"): "from-the-store"})
    values: dict[str, object] = {
        "username": "CORP\\svc",
        "password_env": None,
        "password_keyring": None,
        "environ": {"PW": "from-the-env"},
        "fail": ConfigError,
        "keyring_get": store.get,
    }
    values.update(kwargs)
    secret = resolve_password(**values)  # type: ignore[arg-type]
    return None if secret is None else secret.value


def test_credentials_resolve_in_order() -> None:
    """No username: integrated login; password_env; password_keyring; each found where named."""
    assert _resolve(username=None) is None
    assert _resolve(password_env="PW") == "from-the-env"  # noqa: S106 - names, not secrets
    assert _resolve(password_keyring="jobsync-peers") == "from-the-store"  # noqa: S106


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        (
            {"password_env": "PW", "password_keyring": "jobsync-peers"},
            "each a source for one password",
        ),
        ({"password_env": "MISSING"}, "MISSING, which is not set"),
        ({"password_keyring": "other-service"}, "no password stored"),
        ({"username": None, "password_env": "PW"}, "username is not"),
    ],
)
def test_credential_problems_are_config_errors(kwargs: dict[str, object], problem: str) -> None:
    """A missing or ambiguous secret is a one-line config error that never shows a value."""
    with pytest.raises(ConfigError, match=problem) as error:
        _resolve(**kwargs)
    assert "from-the" not in str(error.value)


def test_keyring_password_is_loaded_through_the_config(tmp_path: Path) -> None:
    """password_keyring in a peer table reads the credential store for that user."""
    path = tmp_path / "jobsync.toml"
    path.write_text(BASE + "username = 'CORP\\svc'\npassword_keyring = 'jobsync-peers'\n")
    store = FakeStore({("jobsync-peers", "CORP\\svc"): "from-the-store"})
    config = load_config(path, environ={}, keyring_get=store.get)
    assert config.peers[0].password is not None
    assert config.peers[0].password.value == "from-the-store"
    assert "from-the-store" not in repr(config)


def test_real_keyring_backend_is_used_by_default(tmp_path: Path) -> None:
    """Without a test hook, the configured keyring backend is asked (here: a memory backend)."""
    script = textwrap.dedent(
        f"""
        import keyring
        from keyring.backend import KeyringBackend
        from pathlib import Path
        from jobsync.config.load import load_config

        class Memory(KeyringBackend):
            priority = 1
            def get_password(self, service, username):
                wanted = ("jobsync-peers", "CORP\\\\svc")
                return "stored-secret" if (service, username) == wanted else None
            def set_password(self, service, username, password): raise NotImplementedError
            def delete_password(self, service, username): raise NotImplementedError

        keyring.set_keyring(Memory())
        config = load_config(Path({str(tmp_path / "jobsync.toml")!r}), environ={{}})
        print(config.peers[0].password.value)
        """
    )
    (tmp_path / "jobsync.toml").write_text(
        BASE + "username = 'CORP\\svc'\npassword_keyring = 'jobsync-peers'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "stored-secret"


HOLD_LOCK = """
import sys
from pathlib import Path
from jobsync.node import WorkLock
lock = WorkLock(Path(sys.argv[1]), who="the jobsync agent")
assert lock.acquire(wait=5)
print("held", flush=True)
sys.stdin.read()  # hold the lock until the test ends this process
"""


def test_a_push_finding_the_agent_at_work_exits_0_and_says_so(
    local_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With another process holding the node's lock, push waits briefly, then exits 0 untouched."""
    monkeypatch.setattr("jobsync.node.DEFAULT_WAIT_SECONDS", 0.5)
    local_cluster.write_job("a.jobs", b"a")
    state = local_cluster.root / "state"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(state)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        run = local_cluster.run("push")
        assert run.code == 0
        assert "the jobsync agent (pid" in run.err
        assert "is at work on this node" in run.err
        assert not (local_cluster.disk("node2") / "a.jobs").exists()
        apply = local_cluster.run("reconcile", "--apply")
        assert apply.code == 4
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]
        holder.stdin.close()  # type: ignore[union-attr]
    # The lock dies with its holder: nothing stale is left behind.
    assert local_cluster.run("push").code == 0
    assert (local_cluster.disk("node2") / "a.jobs").exists()


def test_lock_is_exclusive_within_and_across_processes(tmp_path: Path) -> None:
    """One holder at a time; the second comer gets False after its wait, then True once free."""
    first = WorkLock(tmp_path, who="first")
    second = WorkLock(tmp_path, who="second")
    assert first.acquire(wait=1)
    assert not second.acquire(wait=0.2)
    assert second.holder().startswith("first (pid")
    first.release()
    assert wait_for(lambda: second.acquire(wait=0.2), timeout=5)
    second.release()


def test_the_documented_example_config_loads() -> None:
    """docs/jobsync.example.toml is valid, and fits every node unchanged: it pins no node name.

    Each node then goes by its host name (this machine's is none of the example's peers).
    """
    example = Path(__file__).resolve().parents[2] / "docs" / "jobsync.example.toml"
    settings = [line for line in example.read_text().splitlines() if not line.startswith("#")]
    assert not any(line.replace(" ", "").startswith("node=") for line in settings)
    config = load_config(example, environ={})
    assert config.node == host_name()
    assert [p.name for p in config.target_peers] == ["node1", "node2", "node3"]
    assert config.service.account == "CORP\\gmsa-jobsync$"
    assert config.active.mode == "dns"


def _planted(folder: Path, marker: Path) -> None:
    """What any local user may leave in a folder under %ProgramData%: code writing ``marker``."""
    payload = f"open({str(marker)!r}, 'w').write('ran as the service account')\n"
    (folder / "jobsync").mkdir(parents=True)
    (folder / "jobsync" / "__init__.py").write_text(payload)
    (folder / "jobsync" / "__main__.py").write_text(payload)
    (folder / "structlog.py").write_text(payload)


def test_the_service_and_the_task_never_import_what_a_user_planted(tmp_path: Path) -> None:
    """The service's and the task's own command lines, run in a folder with planted modules.

    The reproduction first: `python -m jobsync` in a folder a user could write runs the planted
    `jobsync/__main__.py`. The rendered command lines (`-I`) import nothing from the folder
    they run in, even that one; and they run in the interpreter's folder, not the config's.
    """
    home = tmp_path / "ProgramData-jobsync"
    marker = tmp_path / "planted-code-ran"
    _planted(home, marker)
    config = _config(home)
    old = subprocess.run(
        [sys.executable, "-m", "jobsync", "version"], cwd=home, capture_output=True, check=False
    )
    assert marker.exists(), old  # what 0.2.1's command line did
    marker.unlink()

    service = ET.fromstring(service_xml(config))  # noqa: S314 - our own output
    task = ET.fromstring(task_xml(config))  # noqa: S314 - our own output
    arguments = [
        service.findtext("arguments") or "",
        task.findtext("t:Actions/t:Exec/t:Arguments", namespaces=TASK) or "",
    ]
    folders = {
        service.findtext("workingdirectory"),
        task.findtext("t:Actions/t:Exec/t:WorkingDirectory", namespaces=TASK),
    }
    assert folders == {str(Path(sys.executable).parent)}
    for line in arguments:
        argv = [sys.executable, *shlex.split(line.replace(" watch ", " push "))]
        ran = subprocess.run(argv, cwd=home, capture_output=True, text=True, check=False)
        assert ran.returncode == 2, ran  # the config's source does not exist: jobsync ran
        assert "does not exist" in ran.stderr, ran.stderr
        assert not marker.exists(), line


# The children the Task Scheduler schema (taskschedulerschema.xsd) orders as an xs:sequence;
# the others (Task, Settings, Principal, Repetition) are xs:all, in any order.
SCHEMA_SEQUENCES = {
    "TimeTrigger": ["Enabled", "StartBoundary", "EndBoundary", "Repetition", "ExecutionTimeLimit"],
    "BootTrigger": [
        "Enabled",
        "StartBoundary",
        "EndBoundary",
        "Repetition",
        "ExecutionTimeLimit",
        "Delay",
    ],
    "Exec": ["Command", "Arguments", "WorkingDirectory"],
}


@pytest.mark.parametrize("kind", ["push", "probe"])
def test_task_xml_children_come_in_the_schemas_order(tmp_path: Path, kind: str) -> None:
    """Every element the schema defines as a sequence has its children in that order.

    0.2.1 wrote Repetition before Enabled in the time trigger and Delay before Enabled in the
    boot trigger.
    """
    config = _config(tmp_path)
    xml = task_xml(config) if kind == "push" else probe_task_xml(config, name="n", result=tmp_path)
    checked = 0
    for element in ET.fromstring(xml).iter():  # noqa: S314 - our own output
        order = SCHEMA_SEQUENCES.get(element.tag.split("}")[1])
        if order is None:
            continue
        children = [child.tag.split("}")[1] for child in element]
        assert children == sorted(children, key=order.index), (element.tag, children)
        checked += 1
    assert checked == (3 if kind == "push" else 1)


# The elements WinSW 2.x reads from its XML (its configuration reference); anything else it
# ignores without a word, which would leave a setting silently unapplied.
WINSW_KEYS = {
    "id", "name", "description", "executable", "arguments", "startarguments", "stopexecutable",
    "stoparguments", "workingdirectory", "priority", "stoptimeout", "startmode",
    "delayedAutoStart", "depend", "logpath", "log", "onfailure", "resetfailure",
    "serviceaccount", "env", "download", "interactive", "beeponshutdown", "hidewindow",
    "stopparentprocessfirst", "waithint", "sleeptime", "securityDescriptor", "prestart",
    "poststart", "prestop", "poststop",
}  # fmt: skip
WINSW_LOG_MODES = {"roll-by-size": {"sizeThreshold", "keepFiles"}}


def test_service_xml_uses_only_what_winsw_reads(tmp_path: Path) -> None:
    """Every element is one WinSW 2.x knows; the log's children are those of its mode."""
    root = ET.fromstring(service_xml(_config(tmp_path)))  # noqa: S314 - our own output
    assert {child.tag for child in root} <= WINSW_KEYS
    log = root.find("log")
    assert log is not None
    mode = log.get("mode")
    assert mode in WINSW_LOG_MODES
    assert {child.tag for child in log} == WINSW_LOG_MODES[mode]
