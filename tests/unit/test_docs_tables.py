"""The documentation's tables agree with the code, both ways, so neither can drift alone.

- docs/configuration.md's table of keys is every key the loader reads, in the table it reads it
  in, and the defaults written there as TOML values are the values a config without them gets;
- docs/metrics.md's table is every metric an agent serves at ``/metrics``, with its labels;
- docs/exit-codes.md's table is ``jobsync.errors.ExitCode``, number and name, and the README's
  commands table names every code;
- every link between the documents leads to a file, and to a heading of it when it names one.

How the config keys are found. Reading the parsers' source for ``table.take("key", ...)`` and
the like would tie this test to how the parsers are split into modules and helpers (a key read
through a helper, or through a loop over a tuple of names, would be missed). Instead the test
asks the loader itself. Every lowercase name-like string literal in the ``jobsync.config``
package, and every field name of its model's dataclasses, is a candidate: a superset of the
keys. Each candidate is added, in turn, to each table of a valid config that has every table;
the loader refuses a key it does not read as an unknown key, and anything else (success, or a
refusal of the value) means it read it. So the accepted keys are found by behaviour, whatever
the code's shape; a new key the docs lack, or a documented key the loader no longer reads,
fails here.
"""

from __future__ import annotations

import ast
import dataclasses
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import jobsync.config
import jobsync.config.model
from jobsync.agent.metrics import AgentMetrics
from jobsync.config.load import load_config
from jobsync.config.model import Config
from jobsync.errors import ConfigError, ExitCode

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

# A valid config with every table, holding only what each table requires, so that a default
# documented for any other key is the value the loader gives when the key is left out.
# "" is the top level, "peers[]" the one [[peers]] table (an SMB peer: it takes every peer key).
BASE: dict[str, dict[str, str]] = {
    "": {"source": "'jobs'"},
    "peers[]": {"name": '"node2"', "path": r"'\\node2\integrify$\jobs'"},
    "watch": {},
    "active": {"mode": '"dns"', "services_host": '"integrify-services.example.com"'},
    "health": {},
    "retention": {},
    "service": {},
    "schedule": {},
    "failover": {"services": '["IntegrifyScheduler"]', "repoint": '"dns"'},
    "failover.dns": {"server": '"dc1.example.com"', "zone": '"example.com"'},
    "fleet_check": {"install": r"'C:\integrify'"},
    "fleet_check.share_logon": {},
}
SUBTABLES = {
    "": {t.split(".")[0].removesuffix("[]") for t in BASE if t},
    "failover": {"dns"},
    "fleet_check": {"share_logon"},
}
# Keys the loader reads and refuses by name, with a message of their own.
REFUSED_BY_NAME = {("peers[]", "password")}
# Keys the loader reads but keeps no value of (an acknowledgement, a choice of path form).
NOT_KEPT = {("", "node_differs_from_host"), ("peers[]", "share_root")}
PROBE = "1"  # the value a candidate key is given: any value will do (see the module docstring)


def _toml(tables: dict[str, dict[str, str]]) -> str:
    """The config as TOML text, the top-level keys first."""
    lines = [f"{key} = {value}" for key, value in tables[""].items()]
    for table, keys in tables.items():
        if table:
            header = "[[peers]]" if table == "peers[]" else f"[{table}]"
            lines += ["", header, *(f"{key} = {value}" for key, value in keys.items())]
    return "\n".join(lines) + "\n"


def _load(tables: dict[str, dict[str, str]], folder: Path) -> Config:
    path = folder / "jobsync.toml"
    path.write_text(_toml(tables), encoding="utf-8")
    return load_config(path, environ={})


def _with(table: str, key: str, value: str) -> dict[str, dict[str, str]]:
    """BASE with ``key = value`` added to (or replacing its value in) ``table``."""
    return {name: {**keys, key: value} if name == table else keys for name, keys in BASE.items()}


def _unknown(message: str, key: str) -> bool:
    """Whether the loader's refusal is that ``key`` is not one it reads."""
    found = re.search(r"unknown keys?: (.*)$", message)
    return found is not None and key in found.group(1).split(", ")


def _reads(table: str, key: str, folder: Path) -> bool:
    """Whether the loader reads ``key`` in ``table``: anything but "unknown key" says it does."""
    try:
        _load(_with(table, key, PROBE), folder)
    except ConfigError as exc:
        return not _unknown(str(exc), key)
    return True


def _candidates() -> set[str]:
    """Every name that could be a key: string literals of jobsync.config, its model's fields."""
    names: set[str] = set()
    for folder in jobsync.config.__path__:
        for source in Path(folder).glob("*.py"):
            tree = ast.parse(source.read_text(encoding="utf-8"))
            names |= {
                node.value
                for node in ast.walk(tree)
                if isinstance(node, ast.Constant) and isinstance(node.value, str)
            }
    for value in vars(jobsync.config.model).values():
        if isinstance(value, type) and dataclasses.is_dataclass(value):
            names |= {field.name for field in dataclasses.fields(value)}
    return {name for name in names if re.fullmatch(r"[a-z][a-z0-9_]*", name)}


def _split_key(cell: str) -> tuple[str, str]:
    """``peers[].port`` -> ("peers[]", "port"); ``failover.dns.port`` -> ("failover.dns", ...)."""
    if cell.startswith("peers[]."):
        return "peers[]", cell.removeprefix("peers[].")
    table, _, key = cell.rpartition(".")
    return table, key


def _table_rows(text: str, header: str) -> list[list[str]]:
    """The cells of each body row of the first table whose header row starts with ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def _config_rows() -> dict[tuple[str, str], str]:
    """docs/configuration.md's keys, as (table, key), with their default cells."""
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    rows = {}
    for key_cell, default, *_ in _table_rows(text, "key"):
        found = re.fullmatch(r"`([a-z_.\[\]]+)`", key_cell)
        assert found, f"a key cell holds one key in backticks: {key_cell}"
        assert _split_key(found.group(1)) not in rows, f"{key_cell} is listed twice"
        rows[_split_key(found.group(1))] = default
    return rows


@pytest.fixture(scope="module")
def accepted(tmp_path_factory: pytest.TempPathFactory) -> set[tuple[str, str]]:
    """Every (table, key) the loader reads, found by asking it."""
    folder = tmp_path_factory.mktemp("config")
    _load(BASE, folder)  # the base itself is valid: every key in it is read
    keys = {(table, key) for table, present in BASE.items() for key in present}
    for table, present in BASE.items():
        for key in sorted(_candidates()):
            skip = key in present or key in SUBTABLES.get(table, set())
            if not skip and _reads(table, key, folder):
                keys.add((table, key))
    return keys


def test_the_probe_tells_a_key_the_loader_reads_from_one_it_does_not(tmp_path: Path) -> None:
    """The probe can tell: an unknown key is refused as such in every table.

    So is a known key in another table, while a known key with a wrong value is refused for
    its value, which counts as read.
    """
    for table in BASE:
        assert not _reads(table, "no_such_key", tmp_path), table
    assert not _reads("watch", "zone", tmp_path)
    assert _reads("watch", "debounce_ms", tmp_path)  # 1 is a fine debounce
    assert _reads("peers[]", "encrypt", tmp_path)  # 1 is not true or false: refused, but read


def test_every_config_key_the_loader_reads_is_documented_and_no_other(
    accepted: set[tuple[str, str]],
) -> None:
    """docs/configuration.md's table lists exactly the keys the loader reads, table by table.

    ``password`` in a peer is read only to be refused (never echoed); the page says so.
    """
    documented = set(_config_rows())
    shown = {f"{t}.{k}".lstrip(".") for t, k in accepted - documented - REFUSED_BY_NAME}
    assert not shown, f"read by the loader, missing from docs/configuration.md: {sorted(shown)}"
    gone = {f"{t}.{k}".lstrip(".") for t, k in documented - accepted}
    assert not gone, f"in docs/configuration.md, not read by the loader: {sorted(gone)}"
    assert accepted >= REFUSED_BY_NAME
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert "a `password` key is refused" in text


def _attribute(config: Config, table: str, key: str) -> Any:
    """The loaded value of ``key`` in ``table`` (the model names its fields as the keys)."""
    value: Any = config.peers[0] if table == "peers[]" else config
    for part in [p for p in table.split(".") if p and table != "peers[]"]:
        value = getattr(value, part)
    return getattr(value, key)


def test_the_documented_defaults_are_the_loaders(tmp_path: Path) -> None:
    """A default written as one TOML value is what a config that leaves the key out gets.

    `15`, `"*.jobs"`, `true` are checked; defaults in words ("the host name") are not.
    """
    config = _load(BASE, tmp_path)
    checked = 0
    for (table, key), cell in _config_rows().items():
        literal = re.fullmatch(r"`([^`]+)`", cell)
        if literal is None or (table, key) in NOT_KEPT:
            continue
        try:
            expected = tomllib.loads(f"v = {literal.group(1)}")["v"]
        except tomllib.TOMLDecodeError:
            continue  # a key name, such as `active.services`: a default in words
        assert key not in BASE[table], f"{table}.{key}: the base config sets it"
        found = _attribute(config, table, key)
        found = list(found) if isinstance(found, tuple) else found  # a TOML array is a list
        assert found == expected, f"{table}.{key}".lstrip(".")
        checked += 1
    assert checked >= 30, "most defaults are TOML values, and so checked"


def _served() -> dict[str, set[str] | None]:
    """Each metric an agent serves, with the labels its samples carry (None: no sample yet)."""
    metrics = AgentMetrics()
    metrics.add_peers(["node2"])
    metrics.watch_lag(lambda: {"node2": 1.0})
    metrics.watch_failover(lambda: None)
    text = metrics.render().decode()
    types = re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE)
    served: dict[str, set[str] | None] = dict.fromkeys(types)
    for name, labels in re.findall(r"^(jobsync_\w+)(?:\{(.*?)\})? ", text, re.MULTILINE):
        served[name] = set(re.findall(r'(\w+)="', labels))
    return served


def _documented_metrics() -> dict[str, set[str]]:
    """docs/metrics.md's metrics, with the labels each is shown with."""
    text = (DOCS / "metrics.md").read_text(encoding="utf-8")
    documented: dict[str, set[str]] = {}
    for cells in _table_rows(text, "metric"):
        for name, labels in re.findall(r"`(jobsync_\w+)(?:\{([\w,]*)\})?`", cells[0]):
            documented[name] = set(labels.split(",")) - {""}
    return documented


def test_every_metric_the_agent_serves_is_documented_and_no_other() -> None:
    """docs/metrics.md lists exactly the metrics ``/metrics`` carries, with their labels.

    Counters carry ``_total``; the lag and last-failover collectors count too. Labels are
    compared for every metric that has a sample in a fresh agent with one peer.
    """
    served, documented = _served(), _documented_metrics()
    assert len(served) >= 20
    assert set(documented) == set(served), (
        f"served, not documented: {sorted(set(served) - set(documented))}; "
        f"documented, not served: {sorted(set(documented) - set(served))}"
    )
    for name, labels in served.items():
        if labels is not None:
            assert documented[name] == labels, name


def test_every_exit_code_is_in_the_exit_code_table_with_its_number() -> None:
    """docs/exit-codes.md has one row per ``ExitCode``: its number and its name."""
    text = (DOCS / "exit-codes.md").read_text(encoding="utf-8")
    rows = {int(cells[0]): cells[1].strip("`") for cells in _table_rows(text, "code")}
    assert rows == {code.value: code.name for code in ExitCode}


def test_the_readmes_commands_table_names_every_exit_code() -> None:
    """The README's one table of commands gives each command's codes; together, all of them."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = _table_rows(text, "command")
    named = {int(n) for cells in rows for n in re.findall(r"\d+", cells[-1])}
    assert named == {code.value for code in ExitCode}
    assert len(text.encode()) <= 12 * 1024, "the README is a front door"


def _markdown_files() -> list[Path]:
    return [
        ROOT / "README.md",
        ROOT / "CONTRIBUTING.md",
        ROOT / "benchmarks" / "README.md",
        *sorted(DOCS.rglob("*.md")),
    ]


def _outside_code(text: str) -> str:
    """The text without fenced code blocks and inline code (a link there is no link)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub makes of a page's headings (and any explicit ``id``)."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    anchors: set[str] = set(re.findall(r'<a (?:id|name)="([^"]+)"', text))
    seen: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6} (.+?)\s*$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _links(path: Path) -> Iterator[tuple[str, str]]:
    """Each relative link of a page, as (path, anchor); "" for the page itself or no anchor."""
    for target in re.findall(r"\]\(([^)\s]+)\)", _outside_code(path.read_text(encoding="utf-8"))):
        if not re.match(r"[a-z]+:", target):
            file, _, anchor = target.partition("#")
            yield file, anchor


@pytest.mark.parametrize("page", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_between_the_documents_resolves(page: Path) -> None:
    """A relative link names a file that exists, and a heading of it when it has an anchor.

    So moving a section cannot leave a link pointing at nothing.
    """
    broken = []
    for file, anchor in _links(page):
        target = (page.parent / file).resolve() if file else page
        if not target.exists():
            broken.append(file)
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{file}#{anchor}")
    assert broken == []


def test_the_anchor_rule_is_githubs() -> None:
    """Headings become anchors as GitHub makes them.

    Code marks and punctuation are dropped and spaces become hyphens: two in a row where
    punctuation stood between two spaces.
    """
    page = DOCS / "commands.md"
    assert "jobsync-service--schedule--deploy--secret--windows" in _anchors(page)
    assert "which-node-pushes-active" in _anchors(DOCS / "configuration.md")
