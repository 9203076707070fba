"""The manifest format and the naming rules: what is trusted, and what is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobsync.config.load import load_config
from jobsync.errors import ConfigError, ManifestTooNewError
from jobsync.jobs_folder import (
    Manifest,
    ManifestCorruptError,
    ManifestEntry,
    compile_pattern,
    is_job_temp_name,
    job_temp_name,
    manifest_from_bytes,
    manifest_to_bytes,
    pattern_problem,
    windows_name_problem,
)
from jobsync.transport.base import checked_parts

SHA = "a" * 64


def _doc(files: object) -> bytes:
    return json.dumps({"format": 1, "node": "n1", "updated": "", "files": files}).encode()


def test_manifest_round_trips() -> None:
    """What jobsync writes, it reads back unchanged."""
    entry = ManifestEntry("Report.jobs", SHA, 12, 1_700_000_000_000_000_100, "node1", "2026-01-01")
    manifest = Manifest(node="node1", updated="now", entries={"report.jobs": entry})
    again = manifest_from_bytes(manifest_to_bytes(manifest))
    assert again.get("REPORT.JOBS") == entry


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{not json",
        b"\xff\xfe",
        b"[]",
        json.dumps({"format": 0, "files": {}}).encode(),  # a later one is a newer jobsync's
        json.dumps({"format": True, "files": {}}).encode(),
        json.dumps({"files": {}}).encode(),
        _doc([]),
        _doc({"../evil.jobs": {"sha256": SHA, "size": 1, "mtime_ns": 1}}),
        _doc({"sub/dir.jobs": {"sha256": SHA, "size": 1, "mtime_ns": 1}}),
        _doc({"sub\\dir.jobs": {"sha256": SHA, "size": 1, "mtime_ns": 1}}),
        _doc({"..": {"sha256": SHA, "size": 1, "mtime_ns": 1}}),
        _doc({"a.jobs": {"sha256": "zz", "size": 1, "mtime_ns": 1}}),
        _doc({"a.jobs": {"sha256": SHA, "size": -1, "mtime_ns": 1}}),
        _doc({"a.jobs": {"sha256": SHA, "size": True, "mtime_ns": 1}}),
        _doc({"a.jobs": {"sha256": SHA, "size": 1, "mtime_ns": "1"}}),
        _doc({"a.jobs": "not an object"}),
        _doc(
            {  # names that differ only in case: one record would silently hide the other
                "Report.jobs": {"sha256": SHA, "size": 1, "mtime_ns": 1},
                "report.jobs": {"sha256": SHA, "size": 1, "mtime_ns": 1},
            }
        ),
    ],
)
def test_corrupt_or_hostile_manifests_are_refused(data: bytes) -> None:
    """A manifest that is truncated, malformed or names paths outside the folder is never used."""
    with pytest.raises(ManifestCorruptError):
        manifest_from_bytes(data)


@pytest.mark.parametrize(
    ("name", "matches"),
    [("a.jobs", True), ("X.JOBS", True), ("a.Jobs", True), ("a.jobs.tmp", False), ("jobs", False)],
)
def test_pattern_matches_case_insensitively(name: str, matches: bool) -> None:
    """`*.jobs` matches `X.JOBS` as it does on Windows, and never a temp name."""
    assert bool(compile_pattern("*.jobs").fullmatch(name)) is matches


@pytest.mark.parametrize(
    "name", ["CON", "con.jobs", "LPT1.jobs", "a<b.jobs", "a:b.jobs", "tab\t.jobs", "dot.", "space "]
)
def test_names_windows_cannot_store_are_flagged(name: str) -> None:
    """Reserved device names, forbidden characters and trailing dots or spaces are refused."""
    assert windows_name_problem(name) is not None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty name"),
        ("bad\udcff.jobs", "not valid Unicode text"),
        ("a|b.jobs", "character Windows does not allow"),
        ("report.jobs.", "ends with a dot or a space"),
        ("nul .jobs", "NUL is a reserved device name"),
        ("a" * 251 + ".jobs", "longer than 255 characters"),
        ("a" * 250 + ".jobs", None),
    ],
)
def test_each_name_rule_says_what_is_wrong(name: str, problem: str | None) -> None:
    """Every rule reports its own reason; 255 characters is still a valid name."""
    found = windows_name_problem(name)
    assert found == problem if problem is None else problem in (found or "")


@pytest.mark.parametrize("name", ["a.jobs", "Weekly Report (v2).jobs", "été.jobs", "CONSOLE.jobs"])
def test_ordinary_names_are_fine(name: str) -> None:
    """Spaces, unicode and names that merely start like a device name are valid."""
    assert windows_name_problem(name) is None


@pytest.mark.parametrize("path", ["../x", "a/../b", "/abs", "a//b", "a\\b", "C:x", "."])
def test_transport_paths_cannot_leave_the_jobs_folder(path: str) -> None:
    """Whatever asks, a transport refuses a path that could reach outside the jobs folder."""
    with pytest.raises(Exception, match="would leave the jobs folder"):
        checked_parts(path)


@pytest.mark.parametrize("pattern", ["*", "*.tmp", ".jobsync-*", "*.TMP", ".*"])
def test_a_pattern_matching_temp_names_is_refused(tmp_path: Path, pattern: str) -> None:
    """Jobs are written as .jobsync-<run>-<n>.tmp beside the jobs: the pattern must never match."""
    config = tmp_path / "jobsync.toml"
    config.write_text(
        "node = 'node1'\nnode_differs_from_host = true\n"
        f"source = '{tmp_path}'\npattern = '{pattern}'\n"
        f"[[peers]]\nname = 'node2'\npath = '{tmp_path}'\n"
    )
    with pytest.raises(ConfigError, match=r"also matches the names jobs are written under"):
        load_config(config)
    assert pattern_problem("*.jobs") is None
    assert is_job_temp_name(job_temp_name("0a1b2c3d", 7))
    assert not is_job_temp_name("jobsync-0a1b2c3d-7.tmp")


def test_a_later_format_is_told_apart_from_a_corrupt_manifest() -> None:
    """Format 3 is a newer jobsync's (left alone), not damage (set aside and rebuilt)."""
    later = b'{"format": 3, "files": {}, "deleted": {}}'
    with pytest.raises(ManifestTooNewError, match="manifest format 3; this one reads formats up"):
        manifest_from_bytes(later)
    with pytest.raises(ManifestCorruptError):
        manifest_from_bytes(b'{"format": "3", "files": {}}')
