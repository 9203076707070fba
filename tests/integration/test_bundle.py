"""The Windows bundle: what an offline Windows server installs.

The bundle is built once per session by scripts/bundle.sh (it reaches the package index, as CI
can); the tests then unpack it and resolve jobsync from its wheels alone, for Windows and each
Python version it serves, with the Windows markers evaluated for Windows, not for this machine.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

import jobsync

from support.locks import PYTHONS, read_pins

ROOT = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).with_name("uv")
WINDOWS_ONLY = {"pywin32-ctypes", "sspilib", "colorama"}  # keyring, pyspnego (SSPI), click
LINUX_ONLY = {"jeepney", "secretstorage"}  # keyring's Secret Service backend


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scripts/bundle.sh's zip, unpacked; the zip itself sits beside the folder."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "bundle.sh"), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/bundle.sh failed:\n{done.stdout}{done.stderr}")
    (zip_path,) = out.glob("*.zip")
    unpacked = out / "unpacked"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(unpacked)
    return unpacked


def test_the_bundle_is_named_for_the_version_and_holds_what_an_install_needs(
    bundle: Path,
) -> None:
    """jobsync-<version>-windows.zip: install.ps1 at its root, the docs, locks and wheels."""
    (zip_path,) = bundle.parent.glob("*.zip")
    assert zip_path.name == f"jobsync-{jobsync.__version__}-windows.zip"
    for name in (
        "install.ps1",
        "README.md",
        "docs/configuration.md",
        "docs/commands.md",
        "docs/exit-codes.md",
        "docs/metrics.md",
        "docs/ownership.md",
        "docs/safety.md",
        "docs/smb-servers.md",
        "docs/status-page.png",
        "docs/windows.md",
        "docs/failover.md",
        "docs/guarantees.md",
        "docs/jobsync.example.toml",
        "docs/prometheus/jobsync.rules.yml",
        "docs/prometheus/jobsync.rules.test.yml",
        "docs/grafana/jobsync-dashboard.json",
        "CHANGELOG.md",
        "requirements/jobsync.txt",
        f"wheels/jobsync-{jobsync.__version__}-py3-none-any.whl",
        *(f"requirements/windows-py{p.replace('.', '')}.txt" for p in PYTHONS),
    ):
        assert (bundle / name).is_file(), name
    wheels = [w.name for w in (bundle / "wheels").iterdir()]
    assert all(w.endswith(("-none-any.whl", "-win_amd64.whl")) for w in wheels), wheels
    assert not {canonicalize_name(w.split("-")[0]) for w in wheels} & LINUX_ONLY


@pytest.mark.parametrize("python", PYTHONS)
def test_the_wheels_alone_resolve_jobsync_for_windows(bundle: Path, python: str) -> None:
    """With no index, uv resolves jobsync from the bundle for 64-bit Windows and ``python``.

    Markers are evaluated for Windows (pywin32-ctypes and sspilib are in, jeepney and
    secretstorage out; tomli only below 3.11), every wheel has a tag that Python accepts, and
    the result is exactly the lock install.ps1 installs, plus jobsync.
    """
    resolved = subprocess.run(
        [
            str(UV),
            "pip",
            "compile",
            str(bundle / "requirements" / "jobsync.txt"),
            *("--no-index", "--find-links", str(bundle / "wheels"), "--no-cache"),
            # This interpreter runs uv's resolver; the target is the one named below. Without
            # it, uv would try to download a CPython of the target version.
            *("--python", sys.executable, "--no-python-downloads"),
            *("--python-platform", "x86_64-pc-windows-msvc", "--python-version", python),
            *("--only-binary", ":all:", "--no-header", "--no-annotate", "--quiet"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert resolved.returncode == 0, resolved.stderr
    pins = read_pins(resolved.stdout)
    lock = (bundle / "requirements" / f"windows-py{python.replace('.', '')}.txt").read_text()
    assert pins == {**read_pins(lock), "jobsync": jobsync.__version__}
    assert set(pins) >= WINDOWS_ONLY
    assert not set(pins) & LINUX_ONLY
    assert ("tomli" in pins) == (python == "3.10")


@pytest.mark.parametrize("python", PYTHONS)
def test_pip_finds_every_locked_wheel_with_its_hash(
    bundle: Path, python: str, tmp_path: Path
) -> None:
    """What install.ps1 asks pip for (no index, hashes required) is all there, for Windows."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--dry-run", "--quiet"),
            *("--ignore-installed", "--no-deps", "--no-index", "--require-hashes"),
            *("--find-links", str(bundle / "wheels"), "--only-binary=:all:"),
            *("--platform", "win_amd64", "--implementation", "cp", "--python-version", python),
            *("--target", str(tmp_path / "target")),
            "--requirement",
            str(bundle / "requirements" / f"windows-py{python.replace('.', '')}.txt"),
            *("--requirement", str(bundle / "requirements" / "jobsync.txt")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_install_ps1_reads_the_bundles_version_as_the_bundle_writes_it(bundle: Path) -> None:
    """install.ps1 names each version's environment after requirements/jobsync.txt's pin."""
    script = (bundle / "install.ps1").read_text(encoding="utf-8")
    pattern = re.search(r"\[regex\]::Match\(\$pin, '([^']+)'\)", script)
    assert pattern is not None
    pin = (bundle / "requirements" / "jobsync.txt").read_text(encoding="utf-8").splitlines()[0]
    found = re.match(pattern.group(1), pin)
    assert found is not None
    assert found.group(1) == jobsync.__version__
