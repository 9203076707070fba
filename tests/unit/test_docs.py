"""What the README and docs/ show agrees with the code, and shows no path of this machine."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path, PureWindowsPath

import pytest

import jobsync
from jobsync.config.load import load_config
from jobsync.windows.install import service_xml
from jobsync.windows.tasks import task_xml

ROOT = Path(__file__).resolve().parents[2]
TEST_FOLDERS = (ROOT / "tests" / "unit", ROOT / "tests" / "integration")  # basenames unique
TEXT = {".md", ".toml", ".yml", ".yaml", ".json", ".txt"}  # pictures cannot show a path
DOCS = [
    ROOT / "README.md",
    ROOT / "CONTRIBUTING.md",
    ROOT / "benchmarks" / "README.md",
    *sorted(p for p in (ROOT / "docs").rglob("*") if p.suffix in TEXT),
]
WINDOWS_CONFIG = PureWindowsPath(r"C:\ProgramData\jobsync\jobsync.toml")
WINDOWS_PYTHON = r"C:\Program Files\jobsync\venv-0.3.0\Scripts\python.exe"
# Shapes of build-machine paths: temp folders, home folders, macOS and Windows temp folders.
MACHINE_PATHS = re.compile(
    r"(?<![\w.])/(?:tmp|var/tmp|home/[\w.-]+|root|Users/[\w.-]+|var/folders)/"
    r"|\\Users\\[^\\\s]+\\AppData\\Local\\Temp"
)


def _machine_paths() -> list[str]:
    """The paths of the machine running the tests, which no document may show."""
    paths = {str(ROOT), str(Path.home()) + "/", sys.prefix}
    return sorted(p for p in paths if len(p) > 2)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_document_shows_a_path_of_the_build_machine(doc: Path) -> None:
    """README.md and docs/ show Windows paths and placeholders, never where they were written.

    Neither the checkout's own path, nor a temp or home folder (of this machine or in general).
    """
    text = doc.read_text(encoding="utf-8")
    for path in _machine_paths():
        assert path not in text, f"{doc.name} shows {path}"
    temp = re.compile(r"(?<![\w.])" + re.escape(tempfile.gettempdir()) + r"[/\\]")
    for pattern in (MACHINE_PATHS, temp):
        found = pattern.search(text)
        assert found is None, f"{doc.name} shows {found.group(0) if found else ''}"


def test_the_check_itself_finds_such_a_path() -> None:
    """The patterns above catch what they are meant to (so the test above can fail)."""
    for bad in (
        "see /tmp/pytest-of-root/x",
        "in /home/dev/jobsync",
        r"C:\Users\ann\AppData\Local\Temp\x",
    ):
        assert MACHINE_PATHS.search(bad), bad
    for good in (r"C:\ProgramData\jobsync", "`.jobsync/tmp/`", r"\\node2\integrify$\jobs"):
        assert not MACHINE_PATHS.search(good), good


def _xml_samples() -> list[str]:
    text = (ROOT / "docs" / "windows.md").read_text(encoding="utf-8")
    return [block.strip() for block in re.findall(r"```xml\n(.*?)```", text, re.DOTALL)]


def test_the_windows_samples_are_what_jobsync_renders_on_windows() -> None:
    """docs/windows.md shows the example config rendered in the ProgramData folder."""
    config = load_config(ROOT / "docs" / "jobsync.example.toml", environ={})
    on_windows = replace(
        config,
        path=WINDOWS_CONFIG,  # type: ignore[arg-type]
        service=replace(config.service, python=WINDOWS_PYTHON),
    )
    assert _xml_samples() == [service_xml(on_windows).strip(), task_xml(on_windows).strip()]


def test_the_version_is_the_changelogs_latest_release() -> None:
    """One version: jobsync.__version__, `jobsync version`, and the CHANGELOG's newest release.

    Above it, an [Unreleased] section collects what comes next.
    """
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", changelog, re.MULTILINE)
    assert headings[0][0] == "Unreleased"
    assert headings[1][0] == jobsync.__version__
    assert headings[1][1], "a release heading carries its date"
    printed = subprocess.run(
        [sys.executable, "-m", "jobsync", "version"], capture_output=True, text=True, check=True
    )
    assert printed.stdout.strip() == f"jobsync {jobsync.__version__}"


def _tests_named_in(text: str) -> list[tuple[str, str | None]]:
    """Each `test_file.py::test_name` (or `::test_name` after one) a table cell names, in order."""
    named: list[tuple[str, str | None]] = []
    for line in text.splitlines():
        current = None
        for file, test in re.findall(r"`(test_\w+\.py)?(?:::(\w+))?[^`]*`", line):
            current = file or current
            if current:
                named.append((current, test or None))
    return named


def test_every_test_the_guarantees_name_exists() -> None:
    """docs/guarantees.md points each promise at its tests; a renamed test must not orphan one."""
    named = _tests_named_in((ROOT / "docs" / "guarantees.md").read_text(encoding="utf-8"))
    assert len(named) > 50, "the table names its tests"
    missing = []
    for file, test in named:
        source = next((d / file for d in TEST_FOLDERS if (d / file).exists()), None)
        if source is None:
            missing.append(file)
        elif test and f"def {test}(" not in source.read_text(encoding="utf-8"):
            missing.append(f"{file}::{test}")
    assert missing == []


def test_the_guarantees_check_reads_both_forms_of_reference() -> None:
    """A cell names `file::test` first and may go on with `::test` in the same file."""
    assert _tests_named_in("| x | `test_plan.py::test_a`, `::test_b` |") == [
        ("test_plan.py", "test_a"),
        ("test_plan.py", "test_b"),
    ]
