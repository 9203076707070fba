"""Retention: kept copies older than ``[retention]`` leave trash/ and backup/, nothing else does."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from jobsync.config.load import load_config
from jobsync.config.model import DEFAULT_KEEP_DAYS, RetentionConfig
from jobsync.epoch import LocalFence
from jobsync.errors import ConfigError
from jobsync.jobs_folder import STAMP_FORMAT, RemoteFile, kept_at, stamp_name
from jobsync.retention import expired
from jobsync.scan import scan_source
from jobsync.sync.passes import PushOptions
from jobsync.sync.peer_sync import PeerSync
from jobsync.transport import default_opener

from support.cluster import Cluster

NOW = datetime.now(timezone.utc)
OLD = stamp_name("old.jobs", (NOW - timedelta(days=400)).strftime(STAMP_FORMAT))
RECENT = stamp_name("recent.jobs", (NOW - timedelta(days=10)).strftime(STAMP_FORMAT))
FUTURE = stamp_name("future.jobs", (NOW + timedelta(days=900)).strftime(STAMP_FORMAT))
ANCIENT_STAMP = "20000101T000000.000000Z"

MINIMAL = (
    'node = "node1"\nnode_differs_from_host = true\n'
    "source = '/jobs'\n[[peers]]\nname = \"node2\"\npath = '/peer'\n"
)


def _load(tmp_path: Path, retention: str) -> RetentionConfig:
    path = tmp_path / "jobsync.toml"
    path.write_text(MINIMAL + retention, encoding="utf-8")
    return load_config(path, environ={}).retention


def test_retention_defaults_and_zero(tmp_path: Path) -> None:
    """Without [retention] copies stay a year; 0 keeps them for ever."""
    assert _load(tmp_path, "") == RetentionConfig(
        trash_days=DEFAULT_KEEP_DAYS, backup_days=DEFAULT_KEEP_DAYS
    )
    assert DEFAULT_KEEP_DAYS == 365
    assert _load(tmp_path, "[retention]\ntrash_days = 30\nbackup_days = 0\n") == RetentionConfig(
        trash_days=30, backup_days=0
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("trash_days = -1", "trash_days must be a whole number of days"),
        ("backup_days = -30", "backup_days must be a whole number of days"),
        ("trash_days = 1.5", "trash_days must be an integer, not a number"),
        ('backup_days = "90"', "backup_days must be an integer, not a string"),
        ("trash_days = true", "trash_days must be a number, not True"),
        ("keep_days = 3", "unknown key: keep_days"),
    ],
)
def test_bad_retention_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    """Negative, fractional or non-numeric days are refused (exit 2), naming file and key."""
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, f"[retention]\n{text}\n")
    message = str(error.value)
    assert expected in message
    assert f"{tmp_path / 'jobsync.toml'}: [retention]" in message
    assert "\n" not in message
    assert error.value.exit_code == 2


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("a.jobs.20240131T235959.123456Z", datetime(2024, 1, 31, 23, 59, 59, 123456, timezone.utc)),
        ("a b.JOBS.20240131T235959.000001Z", datetime(2024, 1, 31, 23, 59, 59, 1, timezone.utc)),
        ("a.jobs.20241331T000000.000000Z", None),  # no month 13
        ("a.jobs.20240131T235959Z", None),
        ("a.jobs.2024-01-31", None),
        ("20240131T235959.123456Z", None),  # a time without a name
        ("a.jobs.20240131T235959.123456Z.corrupt", None),
        ("notes.txt", None),
    ],
)
def test_the_time_a_copy_was_kept_comes_from_its_name(name: str, kept: datetime | None) -> None:
    """Only ``<name>.<YYYYmmddTHHMMSS.ffffffZ>`` parses; anything else is not a kept copy."""
    assert kept_at(name) == kept


def test_expired_copies_are_those_older_than_the_days() -> None:
    """Older than the days: expired; younger, in the future, or unparseable: kept; 0: none."""
    files = [RemoteFile(n, 1, 0) for n in (OLD, RECENT, FUTURE, "notes.txt")]
    found = expired(files, folder=".jobsync/trash", kind="trash", days=30, now=NOW)
    assert [e.path for e in found] == [f".jobsync/trash/{OLD}"]
    assert found[0].age_days == pytest.approx(400, abs=0.1)
    assert expired(files, folder=".jobsync/trash", kind="trash", days=0, now=NOW) == []
    assert expired(files, folder=".jobsync/trash", kind="trash", days=401, now=NOW) == []


def test_the_agent_prunes_at_most_once_per_interval(local_cluster: Cluster) -> None:
    """A sync made with ``prune_every`` prunes on its first full pass, then not until due."""
    local_cluster.extra = "[retention]\ntrash_days = 30\n"
    local_cluster.write_job("a.jobs", b"a")
    config = load_config(local_cluster.config, environ=dict(os.environ))
    target = config.target_peers[0]
    trash = local_cluster.disk(target.name) / ".jobsync" / "trash"
    trash.mkdir(parents=True)
    clock = [1000.0]  # the monotonic clock the sync reads, moved by hand
    sync = PeerSync(
        target,
        config=config,
        options=PushOptions(),
        fence=LocalFence(config.source, config.node),
        prune_every=86_400,
        monotonic=lambda: clock[0],
    )
    peer = default_opener(target, 5)
    scan = scan_source(config.source, config.pattern)

    (trash / OLD).write_bytes(b"old")
    assert sync.sync(peer, scan).pruned == (f".jobsync/trash/{OLD}",)
    second = stamp_name("second.jobs", ANCIENT_STAMP)
    (trash / second).write_bytes(b"expired after the first pruning")
    assert sync.sync(peer, scan).pruned == ()
    assert (trash / second).exists()

    clock[0] += 86_399  # not yet a day since the first pruning
    assert sync.sync(peer, scan).pruned == ()
    clock[0] += 1  # a day later
    assert sync.sync(peer, scan).pruned == (f".jobsync/trash/{second}",)
    assert not (trash / second).exists()
