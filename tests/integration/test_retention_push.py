"""Retention in a push, to local folders and to real smbd peers: only expired kept copies go."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from jobsync.jobs_folder import STAMP_FORMAT, stamp_name

from support.cluster import Cluster

NOW = datetime.now(timezone.utc)
OLD = stamp_name("old.jobs", (NOW - timedelta(days=400)).strftime(STAMP_FORMAT))
RECENT = stamp_name("recent.jobs", (NOW - timedelta(days=10)).strftime(STAMP_FORMAT))
FUTURE = stamp_name("future.jobs", (NOW + timedelta(days=900)).strftime(STAMP_FORMAT))
ANCIENT_STAMP = "20000101T000000.000000Z"


def _plant(folder: Path) -> dict[str, bytes]:
    """Kept copies old and recent, odd names and other jobsync files; returns what must stay."""
    state = folder / ".jobsync"
    planted = {
        f"trash/{OLD}": b"old trash",
        f"trash/{RECENT}": b"recent trash",
        f"trash/{FUTURE}": b"from a clock ahead",
        "trash/notes.txt": b"not a kept copy",
        f"trash/sub/{stamp_name('nested.jobs', ANCIENT_STAMP)}": b"in a subfolder",
        f"backup/{stamp_name('edited.jobs', ANCIENT_STAMP)}": b"old backup",
        f"backup/{RECENT}": b"recent backup",
        f"manifest.json.{ANCIENT_STAMP}.corrupt": b"set aside",
        f"elsewhere/{stamp_name('x.jobs', ANCIENT_STAMP)}": b"not trash nor backup",
    }
    owner = folder.stat()  # a Samba peer's folders belong to the account smbd serves
    for relative, data in planted.items():
        path = state / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for path in [state, *state.rglob("*")]:
        os.chown(path, owner.st_uid, owner.st_gid)
    # A stamped name in the jobs folder itself does not match the pattern: never touched.
    (folder / stamp_name("job.jobs", ANCIENT_STAMP)).write_bytes(b"beside the jobs")
    return {
        k: v
        for k, v in planted.items()
        if k not in (f"trash/{OLD}", f"backup/{stamp_name('edited.jobs', ANCIENT_STAMP)}")
    }


def _kept(folder: Path) -> dict[str, bytes]:
    state = folder / ".jobsync"
    return {
        p.relative_to(state).as_posix(): p.read_bytes()
        for p in state.rglob("*")
        if p.is_file() and p.parent.name != "tmp" and p.name not in ("manifest.json", "node.json")
    }


@pytest.mark.parametrize("kind", ["local", pytest.param("smb", marks=pytest.mark.smb)])
def test_push_removes_only_expired_kept_copies(kind: str, request: pytest.FixtureRequest) -> None:
    """Push removes copies older than [retention] from every peer and the source's .jobsync.

    Recent copies, unparseable names, subfolders, files elsewhere under .jobsync and the jobs
    folder itself are left alone; a dry run only reports; 0 days keeps a kind for ever.
    """
    cluster: Cluster = request.getfixturevalue(f"{kind}_cluster")
    cluster.extra = "[retention]\ntrash_days = 30\nbackup_days = 30\n"
    cluster.write_job("a.jobs", b"a")
    folders = [cluster.source] + [disk for _, _, disk in cluster.peers]
    expected = {folder: _plant(folder) for folder in folders}
    removed = sorted([f".jobsync/trash/{OLD}", f".jobsync/backup/edited.jobs.{ANCIENT_STAMP}"])

    dry = cluster.run("push", "--dry-run", "--json")
    assert dry.code == 0, dry
    assert sorted(dry.json()["source"]["pruned"]) == removed
    assert all(sorted(p["pruned"]) == removed for p in dry.json()["peers"])
    assert all(f"trash/{OLD}" in _kept(folder) for folder in folders)  # nothing removed

    run = cluster.run("push", "--json")
    assert run.code == 0, run
    assert sorted(run.json()["source"]["pruned"]) == removed
    assert [sorted(p["pruned"]) for p in run.json()["peers"]] == [removed, removed]
    for folder in folders:
        assert _kept(folder) == expected[folder], folder
        assert (folder / stamp_name("job.jobs", ANCIENT_STAMP)).exists()
    assert (cluster.disk("node2") / "a.jobs").read_bytes() == b"a"

    text = cluster.run("push")
    assert "kept cop" not in text.out  # nothing left to remove

    cluster.extra = "[retention]\ntrash_days = 0\nbackup_days = 1\n"
    aged = cluster.source / ".jobsync" / "backup" / RECENT
    assert cluster.run("push").code == 0
    assert not aged.exists()  # 10 days old, past 1 day
    assert (cluster.source / ".jobsync" / "trash" / RECENT).exists()  # 0: kept for ever
