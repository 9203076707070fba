"""The config loader: what it accepts, and one clear line for everything it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobsync.config import Config, find_config_path, load_config, parse_unc
from jobsync.errors import ConfigError

GOOD = r"""
node = "node1"
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
    assert node2.unc is not None
    assert (node2.unc.host, node2.unc.share, node2.unc.folder) == (
        "node2",
        "integrify$",
        r"app\scheduler\lib\cronic\jobs",
    )
    assert node2.port == 4455
    assert node2.password is not None
    assert node2.password.value == "pw-from-env"
    assert node2.encrypt is True
    assert config.peers[2].local_path == Path("/mnt/node3/jobs")
    assert config.peers[2].encrypt is False


def test_the_node_itself_is_not_a_target(tmp_path: Path) -> None:
    """One file can be deployed on every node: the peer named like the node is skipped."""
    config = _load(tmp_path, GOOD)
    assert [p.name for p in config.target_peers] == ["node2", "node3"]


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
    ("no peers", 'node = "a"\nsource = "/x"\n', "no [[peers]]"),
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
        "names no share",
    ),
    ("relative local peer", GOOD.replace('"/mnt/node3/jobs"', '"mnt/node3"'), "must be absolute"),
    (
        "peer is the source",
        GOOD.replace('"/mnt/node3/jobs"', "'/srv/integrify/app/scheduler/lib/cronic/jobs'"),
        "is the source folder itself",
    ),
    (
        "peers not a list of tables",
        'node = "a"\nsource = "/x"\npeers = [1]\n',
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
