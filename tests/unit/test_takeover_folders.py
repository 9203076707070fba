"""Takeover and ownership on real folders, through the local transport.

Names in another case, corrupt manifests, one listing per pass, the majority it reports, and
two nodes pushing before any takeover.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobsync.transport.local import LocalPeer

from support.cluster import Run, run_jobsync


class Trio:
    """Nodes A, B and C whose jobs folders are local folders; each config names the other two."""

    def __init__(self, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Create the three folders and configs under ``root``."""
        self.capsys = capsys
        self.folders = {n: root / n for n in "ABC"}
        for folder in self.folders.values():
            folder.mkdir(parents=True)
        self.configs = {}
        for name in "ABC":
            lines = [
                f'node = "{name}"',
                "node_differs_from_host = true",
                f"source = '{self.folders[name]}'",
            ]
            for other in "ABC":
                if other != name:
                    lines += ["[[peers]]", f'name = "{other}"', f"path = '{self.folders[other]}'"]
            self.configs[name] = root / f"{name}.toml"
            self.configs[name].write_text("\n".join(lines) + "\n", encoding="utf-8")

    def run(self, node: str, *args: str) -> Run:
        """Run jobsync as ``node``."""
        return run_jobsync(self.capsys, [*args, "-c", str(self.configs[node])])

    def jobs(self, node: str) -> dict[str, bytes]:
        """The job files in a node's folder."""
        return {p.name: p.read_bytes() for p in self.folders[node].glob("*.jobs")}

    def state(self, node: str) -> Path:
        """A node's ``.jobsync`` folder."""
        return self.folders[node] / ".jobsync"


@pytest.fixture
def trio(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Trio:
    """Three nodes on local folders."""
    return Trio(tmp_path, capsys)


def test_a_version_in_another_case_replaces_the_local_file_and_keeps_it(trio: Trio) -> None:
    """The newest version is Report.jobs; B holds report.jobs: B ends with one file, the old kept.

    On a case-sensitive file system an exact-case match would leave both names behind. A temp
    file a killed run left beside the jobs is cleared.
    """
    (trio.folders["A"] / "Report.jobs").write_bytes(b"v1")
    assert trio.run("A", "push").code == 0
    (trio.folders["B"] / "Report.jobs").rename(trio.folders["B"] / "report.jobs")
    (trio.folders["A"] / "Report.jobs").write_bytes(b"v2")
    assert trio.run("A", "push", "--peer", "C").code == 0
    left_by_a_killed_run = trio.folders["B"] / ".jobsync-dead0001-1.tmp"
    left_by_a_killed_run.write_bytes(b"half a job")

    took = trio.run("B", "takeover")

    assert took.code == 0, took
    assert "pulled Report.jobs from C" in took.out
    assert trio.jobs("B") == {"Report.jobs": b"v2"}
    assert sorted(p.name for p in trio.folders["B"].iterdir()) == [".jobsync", "Report.jobs"]
    kept = [p.read_bytes() for p in (trio.state("B") / "backup").iterdir()]
    assert kept == [b"v1"]


def test_a_case_rename_at_the_source_replaces_the_peer_file_in_one_step(trio: Trio) -> None:
    """Renaming report.jobs to Report.jobs and editing it leaves one file on each peer."""
    (trio.folders["A"] / "report.jobs").write_bytes(b"v1")
    assert trio.run("A", "push").code == 0
    (trio.folders["A"] / "report.jobs").rename(trio.folders["A"] / "Report.jobs")
    (trio.folders["A"] / "Report.jobs").write_bytes(b"v2, renamed")

    assert trio.run("A", "push").code == 0

    assert trio.jobs("B") == trio.jobs("C") == {"report.jobs": b"v2, renamed"}
    again = trio.run("A", "push", "--json")
    assert again.code == 0
    assert [p["copied"] for p in again.json()["peers"]] == [[], []]


@pytest.mark.parametrize("where", ["B", "C"])
def test_a_corrupt_manifest_is_set_aside_not_overwritten(trio: Trio, where: str) -> None:
    """Takeover keeps a manifest that does not parse (local or a peer's) beside the new one."""
    (trio.folders["A"] / "x.jobs").write_bytes(b"x")
    assert trio.run("A", "push").code == 0
    (trio.state(where) / "manifest.json").write_bytes(b"{not json")

    assert trio.run("B", "takeover").code == 0

    aside = [p for p in trio.state(where).iterdir() if p.name.endswith(".corrupt")]
    assert [p.read_bytes() for p in aside] == [b"{not json"]
    assert json.loads((trio.state(where) / "manifest.json").read_text())["owner"] == "B"


def test_a_node_whose_own_folder_a_newer_jobsync_wrote_neither_pushes_nor_takes_over(
    trio: Trio,
) -> None:
    """The winner pushed into B's folder with a newer jobsync: B, not upgraded, changes nothing."""
    (trio.folders["A"] / "x.jobs").write_bytes(b"x")
    assert trio.run("A", "push").code == 0
    manifest = trio.state("B") / "manifest.json"
    doc = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**doc, "format": 3}))
    (trio.folders["B"] / "x.jobs").write_bytes(b"edited on B")
    before = {n: trio.jobs(n) for n in "AC"}

    push = trio.run("B", "push")
    takeover = trio.run("B", "takeover")

    assert push.code == 4, push
    assert "own jobs folder has a manifest written by a newer jobsync" in push.err, push
    assert takeover.code == 4, takeover
    assert "this node's own jobs folder" in takeover.out + takeover.err, takeover
    assert {n: trio.jobs(n) for n in "AC"} == before
    assert json.loads(manifest.read_text())["format"] == 3


def _listings_of_a_takeover(tmp_path: Path, capsys: pytest.CaptureFixture[str], jobs: int) -> int:
    """How often takeover on B lists B's own folder when it pulls ``jobs`` files."""
    trio = Trio(tmp_path / str(jobs), capsys)
    for i in range(jobs):
        (trio.folders["A"] / f"j{i}.jobs").write_bytes(b"v1")
    assert trio.run("A", "push").code == 0
    for i in range(jobs):
        (trio.folders["A"] / f"j{i}.jobs").write_bytes(b"v2")
    assert trio.run("A", "push", "--peer", "C").code == 0
    calls = []
    original = LocalPeer.list_files

    def counting(self: LocalPeer, folder: str = "") -> list[object]:
        if self.name == "B":
            calls.append(folder)
        return original(self, folder)  # type: ignore[return-value]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LocalPeer, "list_files", counting)
        took = trio.run("B", "takeover")
    assert took.code == 0, took
    assert trio.jobs("B") == {f"j{i}.jobs": b"v2" for i in range(jobs)}
    return len(calls)


def test_takeover_lists_the_local_folder_once_per_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pulling thirty files costs no more listings of the local folder than pulling two."""
    assert _listings_of_a_takeover(tmp_path, capsys, 30) == _listings_of_a_takeover(
        tmp_path, capsys, 2
    )


def test_takeover_says_whether_it_reached_a_majority(trio: Trio) -> None:
    """Two of three nodes is a majority; one of three gets a plain warning."""
    (trio.folders["A"] / "x.jobs").write_bytes(b"x")
    assert trio.run("A", "push").code == 0
    assert "reached 3 of 3 nodes (this one included): a majority" in trio.run("B", "takeover").out

    trio.folders["C"].rename(trio.folders["C"].with_name("C-gone"))
    two = trio.run("B", "takeover", "--dry-run", "--json")
    assert two.json()["reached"] == {"nodes": ["B", "A"], "cluster": 3, "majority": True}
    trio.folders["A"].rename(trio.folders["A"].with_name("A-gone"))
    alone = trio.run("B", "takeover", "--dry-run")
    assert alone.code == 3
    assert "WARNING: reached only 1 of 3 nodes (this one included), not a majority" in alone.out


def test_two_nodes_pushing_before_any_takeover_do_not_take_turns(trio: Trio) -> None:
    """At epoch 0 too, the claims are ordered by name: B, pushing after A, is refused.

    Without the order, each push would overwrite the other's jobs, round after round.
    """
    (trio.folders["A"] / "x.jobs").write_bytes(b"A's")
    assert trio.run("A", "push").code == 0
    (trio.folders["B"] / "x.jobs").write_bytes(b"B's")

    refused = trio.run("B", "push")

    assert refused.code == 4
    assert "A owns the jobs at epoch 0 (no takeover yet), as this node (B) would" in refused.err
    assert trio.jobs("A") == trio.jobs("C") == {"x.jobs": b"A's"}
    took = trio.run("B", "takeover")
    assert took.code == 0, took
    assert trio.run("B", "push").code == 0
    assert trio.run("A", "push").code == 4
