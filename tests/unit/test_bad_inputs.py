"""The bad-input catalogue.

Each input gets its documented exit code and a one-line message, and nothing already on a
peer is lost.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.cluster import Cluster, Run

GOOD_TOML = 'node = "node1"\nnode_differs_from_host = true\n'


@dataclass(frozen=True)
class Case:
    """One bad input: how to make it, what to run, and what jobsync must answer."""

    id: str
    prepare: Callable[[Cluster], Path | None]  # returns a config to use instead, if any
    code: int
    says: str
    args: tuple[str, ...] = ("push",)


def _variant(old: str, new: str) -> Callable[[Cluster], Path]:
    return lambda c: c.variant("bad.toml", old, new)


def _raw(text: str) -> Callable[[Cluster], Path]:
    def write(cluster: Cluster) -> Path:
        path = cluster.root / "bad.toml"
        path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
        return path

    return write


def _peer_manifest(content: bytes) -> Callable[[Cluster], None]:
    def write(cluster: Cluster) -> None:
        (cluster.disk("node2") / ".jobsync" / "manifest.json").write_bytes(content)

    return write


def _job(name: str | bytes, data: bytes) -> Callable[[Cluster], None]:
    def write(cluster: Cluster) -> None:
        folder = os.fsencode(cluster.source)
        raw = name if isinstance(name, bytes) else os.fsencode(name)
        with open(os.path.join(folder, raw), "wb") as handle:  # noqa: PTH118, PTH123 - bytes names
            handle.write(data)

    return write


def _bytes_config(data: bytes) -> Callable[[Cluster], Path]:
    def write(cluster: Cluster) -> Path:
        path = cluster.root / "bad.toml"
        path.write_bytes(data)
        return path

    return write


def _peer_path(cluster: Cluster, peer: str, new: str) -> Path:
    return cluster.variant("bad.toml", f"path = '{cluster.disk(peer)}'", f"path = '{new}'")


def _unchanged(_cluster: Cluster) -> None:
    return None


def _bad_manifest(files: dict[str, object]) -> Callable[[Cluster], None]:
    return _peer_manifest(json.dumps({"format": 2, "files": files}).encode())


ENTRY = {"sha256": "a" * 64, "size": 1, "mtime_ns": 1}
ONE_PEER = "source = '/tmp'\n[[peers]]\nname = 'p'\n"
CASES = [
    # Configuration: exit 2, one line naming the file, the key or peer, and the problem.
    Case("malformed-toml", _raw("node = [\n"), 2, "malformed TOML"),
    Case("not-utf8-config", _bytes_config(b"node = '\xff'\n"), 2, "not UTF-8"),
    Case(
        "unknown-top-key",
        _variant('node = "node1"', 'node = "node1"\nnodes = 3'),
        2,
        "unknown key: nodes",
    ),
    Case(
        "unknown-peer-key",
        _variant('name = "node2"', 'name = "node2"\nadress = "x"'),
        2,
        "peer node2: unknown key: adress",
    ),
    Case(
        "wrong-type",
        _variant("timeout_seconds = 5.0", 'timeout_seconds = "fast"'),
        2,
        "timeout_seconds must be a number",
    ),
    Case(
        "bool-for-number",
        _variant("timeout_seconds = 5.0", "timeout_seconds = true"),
        2,
        "must be a number",
    ),
    Case(
        "missing-source-key",
        _raw('node = "n"\nnode_differs_from_host = true\n[[peers]]\nname = "p"\npath = "/x"\n'),
        2,
        "source is required",
    ),
    Case(
        "missing-source-folder", _variant("source = '", "source = '/nowhere"), 2, "does not exist"
    ),
    Case(
        "missing-password-variable",
        _raw(ONE_PEER + "path = '\\\\h\\s\\jobs'\nusername = 'u'\npassword_env = 'NOT_SET_HERE'\n"),
        2,
        "NOT_SET_HERE, which is not set",
    ),
    Case(
        "username-without-password",
        _raw(ONE_PEER + "path = '\\\\h\\s\\jobs'\nusername = 'u'\n"),
        2,
        "peer p: username is set but no password source",
    ),
    Case("empty-mode", _variant("[[peers]]", '[active]\nmode = ""\n[[peers]]'), 2, "mode must not"),
    Case(
        "port-zero",
        _raw(ONE_PEER + "path = '\\\\h\\s\\jobs'\nport = 0\n"),
        2,
        "peer p: port must be between 1 and 65535, not 0",
    ),
    Case(
        "unc-stops-at-the-share",
        _raw(ONE_PEER + "path = '\\\\h\\integrify$'\n"),
        2,
        "path '\\\\h\\integrify$' stops at the share",
    ),
    Case("empty-peer-list", _raw("source = '/tmp'\n"), 2, "no [[peers]]"),
    Case(
        "duplicate-peer-names",
        _variant('name = "node3"', 'name = "NODE2"'),
        2,
        "duplicate peer name",
    ),
    Case(
        "peer-is-the-source",
        lambda c: _peer_path(c, "node3", str(c.source)),
        2,
        "is the source folder itself",
    ),
    Case("traversal-in-unc", _raw(ONE_PEER + "path = '\\\\h\\s\\..\\x'\n"), 2, "'..' component"),
    Case(
        "reserved-name-in-unc",
        _raw(ONE_PEER + "path = '\\\\h\\s\\CON\\x'\n"),
        2,
        "reserved device name",
    ),
    Case("device-path", _raw(ONE_PEER + "path = '\\\\.\\pipe\\x'\n"), 2, "device path"),
    Case(
        "password-in-file",
        _variant('name = "node2"', 'name = "node2"\npassword = "hunter22"'),
        2,
        "password is not allowed",
    ),
    Case(
        "relative-peer-path",
        lambda c: _peer_path(c, "node2", "relative/jobs"),
        2,
        "must be absolute",
    ),
    Case(
        "pattern-with-folder",
        _variant('node = "node1"', 'node = "node1"\npattern = "a/*.jobs"'),
        2,
        "pattern must be a file name glob",
    ),
    Case(
        "ratio-out-of-range",
        _variant('node = "node1"', 'node = "node1"\nmax_delete_ratio = 2'),
        2,
        "max_delete_ratio must be between 0 and 1",
    ),
    Case("unknown-peer-option", _unchanged, 2, "no such peer", ("push", "--peer", "node9")),
    Case("unknown-cli-option", _unchanged, 2, "No such option", ("push", "--frobnicate")),
    # A peer's manifest that cannot be trusted: set aside, rebuilt, nothing lost (exit 0).
    Case("corrupt-manifest", _peer_manifest(b"{this is not json"), 0, ""),
    Case(
        "truncated-manifest",
        _peer_manifest(b'{"format": 2, "files": {"a.jobs": {"sha256": "ab'),
        0,
        "",
    ),
    Case("manifest-names-parent", _bad_manifest({"../../outside.jobs": ENTRY}), 0, ""),
    Case("manifest-names-separator", _bad_manifest({"sub\\x.jobs": ENTRY}), 0, ""),
    # Odd job files: sent when Windows can store them, skipped with a warning when not.
    Case("non-utf8-job-name", _job(b"caf\xe9.jobs", b"latin-1 name"), 0, "not valid Unicode"),
    Case("reserved-job-name", _job("aux.jobs", b"a device name"), 0, "reserved device name"),
    Case("zero-byte-job", _job("empty.jobs", b""), 0, ""),
    Case("twenty-mb-job", _job("huge.jobs", b"x" * (20 * 1024 * 1024)), 0, ""),
    Case("unicode-and-spaces", _job("Relatório Mensal - Março.jobs", "é".encode()), 0, ""),
    Case("upper-case-extension", _job("SHOUTING.JOBS", b"loud"), 0, ""),
]


def _peer_files(cluster: Cluster) -> dict[str, bytes]:
    return {
        f"{name}/{p.name}": p.read_bytes()
        for name, _, disk in cluster.peers
        for p in disk.iterdir()
        if p.is_file()
    }


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(local_cluster: Cluster, case: Case) -> None:
    """Documented exit code, one line saying what is wrong, and nothing on any peer is lost."""
    local_cluster.write_job("keep.jobs", b"already everywhere")
    assert local_cluster.run("push").code == 0
    before = _peer_files(local_cluster)

    config = case.prepare(local_cluster)
    run: Run = local_cluster.run(*case.args, config=config)

    assert run.code == case.code, run
    assert "Traceback" not in run.out + run.err
    assert "hunter22" not in run.out + run.err
    if case.code == 2:
        lines = [line for line in run.err.splitlines() if line.startswith("jobsync:")]
        assert len(lines) == 1, run.err
        assert case.says in lines[0]
    elif case.says:
        assert case.says in run.out + run.err
    after = _peer_files(local_cluster)
    for key, data in before.items():  # nothing that was on a peer is gone or changed
        assert after.get(key) == data, key


@pytest.mark.parametrize(
    "case_id",
    ["corrupt-manifest", "truncated-manifest", "manifest-names-parent", "manifest-names-separator"],
)
def test_untrusted_manifest_is_set_aside_and_rebuilt(local_cluster: Cluster, case_id: str) -> None:
    """A manifest that is corrupt, truncated or names paths outside the folder is never trusted.

    It is kept aside and rebuilt, and nothing outside the jobs folder is touched.
    """
    local_cluster.write_job("keep.jobs", b"k")
    assert local_cluster.run("push").code == 0
    next(c for c in CASES if c.id == case_id).prepare(local_cluster)
    outside = local_cluster.disk("node2").parent

    assert local_cluster.run("push").code == 0

    state = local_cluster.disk("node2") / ".jobsync"
    assert any(p.name.endswith(".corrupt") for p in state.iterdir())
    rebuilt = json.loads((state / "manifest.json").read_text())
    assert list(rebuilt["files"]) == ["keep.jobs"]
    assert not (outside / "outside.jobs").exists()
    assert not list(outside.parent.glob("outside.jobs"))


def test_catalogue_is_big_enough() -> None:
    """The catalogue tries at least 25 bad inputs."""
    assert len(CASES) >= 25
