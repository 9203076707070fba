"""The config loader: what it accepts, and one clear line for everything it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobsync.config.load import find_config_path, load_config
from jobsync.config.model import Config, UncPath
from jobsync.config.reader import parse_unc
from jobsync.errors import ConfigError

GOOD = r"""
node = "node1"
node_differs_from_host = true
source = '/srv/integrify/app/scheduler/lib/cronic/jobs'
[[peers]]
name = "node1"
path = '\\node1\integrify$\app\scheduler\lib\cronic\jobs'
[[peers]]
name = "node2"
path = '\\node2\integrify$\app\scheduler\lib\cronic\jobs'
port = 4455
username = 'CORP\svc-jobsync'
password_env = "JOBSYNC_PASSWORD"
[[peers]]
name = "node3"
path = "/mnt/node3/jobs"
[[peers]]
name = "node4"
path = '\\node4\jobs$'
share_root = true
encrypt = false
"""


def _load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Config:
    path = tmp_path / "jobsync.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ={"JOBSYNC_PASSWORD": "pw-from-env"} if env is None else env)


def test_good_config_loads_with_defaults(tmp_path: Path) -> None:
    """A complete config yields typed values and the documented defaults."""
    config = _load(tmp_path, GOOD)
    assert config.node == "node1"
    assert config.pattern == "*.jobs"
    assert config.timeout_seconds == 15
    assert config.max_delete_ratio == 0.5
    node2 = config.peers[1]
    assert isinstance(node2.target, UncPath)
    assert (node2.target.host, node2.target.share, node2.target.folder) == (
        "node2",
        "integrify$",
        r"app\scheduler\lib\cronic\jobs",
    )
    assert node2.port == 4455
    assert node2.password is not None
    assert node2.password.value == "pw-from-env"
    assert node2.encrypt is True
    assert config.peers[2].target == Path("/mnt/node3/jobs")
    node4 = config.peers[3]
    assert isinstance(node4.target, UncPath)
    assert (node4.target.share, node4.target.folder) == ("jobs$", "")
    assert node4.encrypt is False
    assert node4.username is None


def test_the_node_itself_is_not_a_target(tmp_path: Path) -> None:
    """One file can be deployed on every node: the peer named like the node is skipped."""
    config = _load(tmp_path, GOOD)
    assert [p.name for p in config.target_peers] == ["node2", "node3", "node4"]


def test_password_never_shows_in_repr(tmp_path: Path) -> None:
    """Printing a config never prints a password."""
    config = _load(tmp_path, GOOD)
    assert "pw-from-env" not in repr(config)
    assert "pw-from-env" not in str(config.peers[1])


def test_relative_source_is_relative_to_the_config_file(tmp_path: Path) -> None:
    """A relative source path is read relative to the config file's folder."""
    config = _load(
        tmp_path, GOOD.replace("'/srv/integrify/app/scheduler/lib/cronic/jobs'", "'jobs'")
    )
    assert config.source == tmp_path / "jobs"


BAD = [
    ("malformed TOML", "node = ", "malformed TOML"),
    ("unknown top-level key", GOOD + "\nsauce = 1\n", "unknown key: sauce"),
    (
        "unknown peer key",
        GOOD.replace("port = 4455", "prot = 4455"),
        "peer node2: unknown key: prot",
    ),
    ("wrong type", GOOD.replace('node = "node1"', "node = 7"), "node must be a string"),
    ("bool as number", GOOD + "\n", None),
    ("port out of range", GOOD.replace("4455", "70000"), "port must be between 1 and 65535"),
    ("port as text", GOOD.replace("4455", '"445"'), "port must be an integer"),
    (
        "missing source",
        GOOD.replace("source = '/srv/integrify/app/scheduler/lib/cronic/jobs'", ""),
        "source is required",
    ),
    ("no peers", 'source = "/x"\n', "no [[peers]]"),
    ("duplicate peer", GOOD + '[[peers]]\nname = "NODE2"\npath = "/y"\n', "duplicate peer name"),
    (
        "negative timeout",
        "timeout_seconds = -1\n" + GOOD,
        "timeout_seconds must be a positive number",
    ),
    (
        "ratio above one",
        "max_delete_ratio = 1.5\n" + GOOD,
        "max_delete_ratio must be between 0 and 1",
    ),
    (
        "pattern with a folder",
        'pattern = "sub/*.jobs"\n' + GOOD,
        "pattern must be a file name glob",
    ),
    (
        "password in the file",
        GOOD.replace('password_env = "JOBSYNC_PASSWORD"', 'password = "hunter22"'),
        "password is not allowed",
    ),
    (
        "unset password variable",
        GOOD.replace("JOBSYNC_PASSWORD", "NOT_SET_ANYWHERE"),
        "NOT_SET_ANYWHERE, which is not set",
    ),
    ("traversal in UNC", GOOD.replace(r"lib\cronic", r"lib\..\cronic", 1), "'..' component"),
    ("device path", GOOD.replace(r"'\\node2", r"'\\.", 1), "device path"),
    (
        "UNC without share",
        GOOD.replace(r"'\\node2\integrify$\app\scheduler\lib\cronic\jobs'", r"'\\node2'"),
        r"path '\\node2' names no share",
    ),
    ("relative local peer", GOOD.replace('"/mnt/node3/jobs"', '"mnt/node3"'), "must be absolute"),
    (
        "peer is the source",
        GOOD.replace('"/mnt/node3/jobs"', "'/srv/integrify/app/scheduler/lib/cronic/jobs'"),
        "is the source folder itself",
    ),
    (
        "peers not a list of tables",
        'source = "/x"\npeers = [1]\n',
        "peers[0] must be a table",
    ),
]


@pytest.mark.parametrize(("case", "text", "expected"), BAD, ids=[c[0] for c in BAD])
def test_bad_config_is_one_line_naming_the_problem(
    tmp_path: Path, case: str, text: str, expected: str | None
) -> None:
    """Every refused config raises ConfigError (exit 2) with one line naming file and problem."""
    if expected is None:  # the bool-as-number case
        text = "timeout_seconds = true\n" + text
        expected = "timeout_seconds must be a number"
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, text)
    message = str(error.value)
    assert expected in message, case
    assert "\n" not in message
    assert str(tmp_path / "jobsync.toml") in message
    assert "hunter22" not in message
    assert error.value.exit_code == 2


def _top(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


def _node2(extra: str, *, drop: str = "") -> str:
    """GOOD with node2's table changed: ``extra`` lines added, the line ``drop`` removed."""
    text = GOOD.replace("port = 4455\n", f"port = 4455\n{extra}\n", 1)
    return text.replace(f"{drop}\n", "", 1) if drop else text


NODE2_PATH = r"'\\node2\integrify$\app\scheduler\lib\cronic\jobs'"

# Every value that used to be guessed, or that the rest of its table makes meaningless: refused
# with exit 2 and one line naming the file, where (the table or the peer) and the key. (A table
# of cases: its rows look alike on purpose.)
REFUSED = [
    ("node empty", _top('node = "node1"', 'node = ""'), "", "node must not be empty"),
    ("node blank", _top('node = "node1"', 'node = "  "'), "", "node must not be empty"),
    (
        "source empty",
        _top("source = '/srv/integrify/app/scheduler/lib/cronic/jobs'", "source = ''"),
        "",
        "source must not be empty",
    ),
    ("pattern empty", 'pattern = ""\n' + GOOD, "", "pattern must not be empty"),
    ("timeout zero", "timeout_seconds = 0\n" + GOOD, "", "timeout_seconds must be a positive"),
    ("timeout inf", "timeout_seconds = inf\n" + GOOD, "", "timeout_seconds must be a positive"),
    ("ratio nan", "max_delete_ratio = nan\n" + GOOD, "", "max_delete_ratio must be between"),
    ("state_dir empty", 'state_dir = ""\n' + GOOD, "", "state_dir must not be empty"),
    ("peers empty", 'source = "/x"\npeers = []\n', "", "no [[peers]]"),
    ("debounce negative", GOOD + "[watch]\ndebounce_ms = -1\n", "[watch]", "debounce_ms"),
    ("rescan zero", GOOD + "[watch]\nrescan_seconds = 0\n", "[watch]", "rescan_seconds"),
    ("retry zero", GOOD + "[watch]\nretry_max_seconds = 0\n", "[watch]", "retry_max_seconds"),
    ("mode empty", GOOD + '[active]\nmode = ""\n', "[active]", "mode must not be empty"),
    ("mode missing", GOOD + "[active]\ncheck_seconds = 5\n", "[active]", "mode is required"),
    ("mode unknown", GOOD + '[active]\nmode = "dsn"\n', "[active]", "mode must be one of"),
    ("dns without host", GOOD + '[active]\nmode = "dns"\n', "[active]", "needs services_host"),
    (
        "services_host empty",
        GOOD + '[active]\nmode = "dns"\nservices_host = ""\n',
        "[active]",
        "services_host must not be empty",
    ),
    (
        "services_host without dns",
        GOOD + '[active]\nmode = "always"\nservices_host = "svc"\n',
        "[active]",
        'services_host is only used with mode = "dns"',
    ),
    (
        "services empty",
        GOOD + '[active]\nmode = "services"\nservices = []\n',
        "[active]",
        "services must be a list",
    ),
    (
        "service name empty",
        GOOD + '[active]\nmode = "services"\nservices = [""]\n',
        "[active]",
        "none of them empty",
    ),
    (
        "services without services mode",
        GOOD + '[active]\nmode = "dns"\nservices_host = "x"\nservices = ["S"]\n',
        "[active]",
        'services is only used with mode = "services"',
    ),
    ("check zero", GOOD + '[active]\nmode = "always"\ncheck_seconds = 0\n', "[active]", "check"),
    (
        "confirmations zero",
        GOOD + '[active]\nmode = "always"\nconfirmations = 0\n',
        "[active]",
        "confirmations must be a whole number, 1 or more",
    ),
    ("listen empty", GOOD + '[health]\nlisten = ""\n', "[health]", "listen must be HOST:PORT"),
    ("listen port 0", GOOD + '[health]\nlisten = "127.0.0.1:0"\n', "[health]", "listen must"),
    ("listen no host", GOOD + '[health]\nlisten = ":9477"\n', "[health]", "listen must"),
    ("max lag zero", GOOD + "[health]\nmax_lag_seconds = 0\n", "[health]", "max_lag_seconds"),
    ("service id empty", GOOD + '[service]\nid = ""\n', "[service]", "id must not be empty"),
    ("service name empty", GOOD + '[service]\nname = ""\n', "[service]", "name must not be"),
    (
        "description empty",
        GOOD + '[service]\ndescription = ""\n',
        "[service]",
        "description must not be empty",
    ),
    ("python empty", GOOD + '[service]\npython = ""\n', "[service]", "python must not be empty"),
    ("account empty", GOOD + "[service]\naccount = ''\n", "[service]", "account must not be"),
    ("log_dir empty", GOOD + '[service]\nlog_dir = ""\n', "[service]", "log_dir must not be"),
    ("task empty", GOOD + '[schedule]\ntask_name = ""\n', "[schedule]", "task_name must not"),
    (
        "boot delay zero",
        GOOD + "[schedule]\nboot_delay_minutes = 0\n",
        "[schedule]",
        "boot_delay_minutes must be a whole number, 1 or more",
    ),
    (
        "time limit zero",
        GOOD + "[schedule]\ntime_limit_minutes = 0\n",
        "[schedule]",
        "time_limit_minutes",
    ),
    ("task account empty", GOOD + "[schedule]\naccount = ''\n", "[schedule]", "account must"),
    ("peer name empty", GOOD.replace('name = "node2"', 'name = ""'), "peers[1]", "name must not"),
    (
        "peer path empty",
        GOOD.replace(NODE2_PATH, "''"),
        "peer node2",
        "path must not be empty",
    ),
    ("port zero", GOOD.replace("4455", "0"), "peer node2", "port must be between 1 and 65535"),
    ("username empty", GOOD.replace("'CORP\\svc-jobsync'", '""'), "peer node2", "username must"),
    (
        "username without password source",
        _node2("", drop='password_env = "JOBSYNC_PASSWORD"'),
        "peer node2",
        "username is set but no password source",
    ),
    (
        "password_env empty",
        GOOD.replace('password_env = "JOBSYNC_PASSWORD"', 'password_env = ""'),
        "peer node2",
        "password_env and password_keyring must not be empty",
    ),
    (
        "two password sources",
        _node2('password_keyring = "jobsync"'),
        "peer node2",
        "each a source for one password: keep one",
    ),
    (
        "share root without the key",
        GOOD.replace(NODE2_PATH, r"'\\node2\integrify$'"),
        "peer node2",
        r"path '\\node2\integrify$' stops at the share",
    ),
    (
        "share_root with a folder",
        _node2("share_root = true"),
        "peer node2",
        "share_root = true, but path",
    ),
    (
        "smb keys on a local folder",
        GOOD.replace('path = "/mnt/node3/jobs"', 'path = "/mnt/node3/jobs"\nport = 445'),
        "peer node3",
        "port: only for SMB peers",
    ),
    (
        "encrypt on a local folder",
        GOOD.replace('path = "/mnt/node3/jobs"', 'path = "/mnt/node3/jobs"\nencrypt = false'),
        "peer node3",
        "encrypt: only for SMB peers",
    ),
]


@pytest.mark.parametrize(
    ("case", "text", "where", "expected"), REFUSED, ids=[c[0] for c in REFUSED]
)
def test_no_value_is_guessed(
    tmp_path: Path, case: str, text: str, where: str, expected: str
) -> None:
    """Empty, zero and incomplete values are refused: one line, the file, where, the key."""
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, text)
    message = str(error.value)
    assert expected in message, case
    assert message.startswith(f"{tmp_path / 'jobsync.toml'}: {where}"), message
    assert "\n" not in message
    assert error.value.exit_code == 2


def test_a_windows_path_in_double_quotes_gets_advice(tmp_path: Path) -> None:
    """TOML's complaint about a backslash comes with the fix: single quotes (literal strings)."""
    text = GOOD.replace(NODE2_PATH, '"\\\\node2\\integrify$\\app"')
    assert '"\\\\node2\\integrify' in text
    with pytest.raises(ConfigError, match="write Windows paths in single quotes"):
        _load(tmp_path, text)


def test_an_explicit_share_root_is_accepted(tmp_path: Path) -> None:
    """share_root = true lets a peer's jobs folder be the root of its share."""
    config = _load(tmp_path, GOOD)
    assert str(config.peers[3].target) == "\\\\node4\\jobs$"


def test_password_variable_may_be_unset_for_the_node_itself(tmp_path: Path) -> None:
    """The node's own peer entry is never contacted, so its password variable need not exist."""
    text = GOOD.replace(
        '[[peers]]\nname = "node1"\n',
        '[[peers]]\nname = "node1"\npassword_env = "NOPE"\nusername = "x"\n',
    )
    assert _load(tmp_path, text).node == "node1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"\\srv\share\a\b", ("srv", "share", r"a\b")),
        ("//srv/share/a/b", ("srv", "share", r"a\b")),
        (r"\\?\UNC\srv\share\a", ("srv", "share", "a")),
        (r"\\srv\share", ("srv", "share", "")),
        (r"\\srv\share\jobs" + "\\", ("srv", "share", "jobs")),
    ],
)
def test_unc_forms(text: str, expected: tuple[str, str, str]) -> None:
    r"""\\host\share, //host/share and \\?\UNC\ all parse to the same parts."""
    unc = parse_unc(text)
    assert unc is not None
    assert (unc.host, unc.share, unc.folder) == expected


@pytest.mark.parametrize(
    "text", [r"\\srv\share\a\..\..\x", r"\\srv\share\.\x", r"\\srv\share\\x", r"\\.\pipe\x"]
)
def test_unc_refuses_dots_empties_and_devices_before_normalising(text: str) -> None:
    """`..`, `.`, empty components and device paths are refused, never normalised away."""
    with pytest.raises(ConfigError):
        parse_unc(text)


def test_config_location_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """-c wins, then $JOBSYNC_CONFIG, then ./jobsync.toml; none found is one clear error."""
    monkeypatch.chdir(tmp_path)
    explicit = tmp_path / "a.toml"
    assert find_config_path(explicit, environ={"JOBSYNC_CONFIG": "b.toml"}) == explicit
    assert find_config_path(None, environ={"JOBSYNC_CONFIG": "b.toml"}) == Path("b.toml")
    with pytest.raises(ConfigError, match="no configuration file"):
        find_config_path(None, environ={})
    (tmp_path / "jobsync.toml").write_text("")
    assert find_config_path(None, environ={}) == tmp_path / "jobsync.toml"


FLEET_BAD = [
    (
        "install not a Windows path",
        "install = '/opt/integrify'",
        "install must be the Windows path",
    ),
    ("install missing", "files = ['a.config']", "[fleet_check]: install is required"),
    (
        "a key path without a file",
        "install = 'C:\\integrify'\nshared_folders = ['appSettings/AttachmentsPath']",
        "shared_folders: 'appSettings/AttachmentsPath' is not file:key/path",
    ),
    (
        "a key path in a file not compared",
        "install = 'C:\\integrify'\ndiffers_by_design = ['web.config:appSettings/X']",
        "differs_by_design: 'web.config:appSettings/X' is not file:key/path",
    ),
    (
        "a public URL that is not one",
        "install = 'C:\\integrify'\npublic_url = 'integrify.example.com'",
        "public_url must be an http:// or https:// URL",
    ),
    (
        "a logon that names a folder",
        "install = 'C:\\integrify'\n[fleet_check.share_logon]\npath = '\\\\nas\\x\\y'",
        "[fleet_check.share_logon] (takes username, password_env",
    ),
    ("a negative interval", "install = 'C:\\integrify'\nevery_minutes = -1", "every_minutes must"),
]


@pytest.mark.parametrize(("case", "table", "expected"), FLEET_BAD, ids=[c[0] for c in FLEET_BAD])
def test_a_bad_fleet_check_table_is_one_line(
    tmp_path: Path, case: str, table: str, expected: str
) -> None:
    """``[fleet_check]`` is refused in one line naming the key, never guessed."""
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, GOOD + "[fleet_check]\n" + table + "\n")
    assert expected in str(error.value), case
    assert "\n" not in str(error.value)


def test_a_fleet_check_table_with_its_defaults(tmp_path: Path) -> None:
    """Only ``install`` is needed; the vendor's two files are compared by default."""
    loaded = _load(tmp_path, GOOD + "[fleet_check]\ninstall = 'D:\\Apps\\Integrify\\'\n")
    assert loaded.fleet_check is not None
    assert loaded.fleet_check.install == "D:\\Apps\\Integrify"
    assert loaded.fleet_check.files == (
        "app\\settings\\settings.config",
        "app\\webserver\\server-config.json",
    )
    assert loaded.fleet_check.every_minutes == 60
