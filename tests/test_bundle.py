"""The Windows bundle and the lock files: what an offline Windows server installs.

The bundle is built once per session by scripts/bundle.sh (it reaches the package index, as CI
can); the tests then unpack it and resolve jobsync from its wheels alone, for Windows and each
Python version it serves, with the Windows markers evaluated for Windows, not for this machine.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import jobsync

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
UV = Path(sys.executable).with_name("uv")
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
WINDOWS_ONLY = {"pywin32-ctypes", "sspilib", "colorama"}  # keyring, pyspnego (SSPI), click
LINUX_ONLY = {"jeepney", "secretstorage"}  # keyring's Secret Service backend
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)(?:\s*;\s*([^\\#\n]+))?", re.MULTILINE)


def _pins(text: str, environment: dict[str, str] | None = None) -> dict[str, str]:
    """``name==version`` lines as {canonical name: version}, markers evaluated if given."""
    pins = {}
    for name, pinned, marker in _PIN.findall(text):
        if marker and environment is not None and not Marker(marker).evaluate(environment):
            continue
        pins[canonicalize_name(name)] = pinned
    return pins


def _windows(python: str) -> dict[str, str]:
    """The marker environment of 64-bit CPython ``python`` on Windows."""
    return {
        "sys_platform": "win32",
        "platform_system": "Windows",
        "os_name": "nt",
        "platform_machine": "AMD64",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "python_version": python,
        "python_full_version": f"{python}.0",
    }


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
    pins = _pins(resolved.stdout)
    lock = (bundle / "requirements" / f"windows-py{python.replace('.', '')}.txt").read_text()
    assert pins == {**_pins(lock), "jobsync": jobsync.__version__}
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


def test_the_locks_pin_every_dependency_pyproject_asks_for() -> None:
    """Each lock satisfies pyproject.toml, for each Python version it serves.

    Linux with the test and kerberos extras, Windows without extras.
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    locks = {f"windows-py{p.replace('.', '')}.txt": (_windows(p), wanted) for p in PYTHONS}
    linux_wanted = wanted + [Requirement(r) for r in extras["test"] + extras["kerberos"]]
    for python in PYTHONS:
        linux = {
            "sys_platform": "linux",
            "platform_system": "Linux",
            "os_name": "posix",
            "platform_machine": "x86_64",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "python_version": python,
            "python_full_version": f"{python}.0",
        }
        locks[f"linux.txt {python}"] = (linux, linux_wanted)
    for name, (environment, requirements) in locks.items():
        text = (ROOT / "requirements" / name.split()[0]).read_text()
        pins = _pins(text, environment)
        for requirement in requirements:
            if requirement.marker and not requirement.marker.evaluate(environment):
                continue
            pinned = pins.get(canonicalize_name(requirement.name))
            assert pinned is not None, f"{name}: {requirement.name} is not pinned"
            assert requirement.specifier.contains(pinned), f"{name}: {requirement} vs {pinned}"


def test_the_venv_holds_the_versions_the_linux_lock_pins() -> None:
    """scripts/_setup.sh installs from the lock: whatever it installed has the pinned version."""
    environment = {
        "sys_platform": sys.platform,
        "python_version": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "python_full_version": ".".join(str(n) for n in sys.version_info[:3]),
        "platform_python_implementation": "CPython",
        "implementation_name": sys.implementation.name,
    }
    pins = _pins((ROOT / "requirements" / "linux.txt").read_text(), environment)
    checked = 0
    for name, pinned in pins.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue
        assert installed == pinned, f"{name} {installed} installed, {pinned} locked"
        checked += 1
    assert checked > 20  # jobsync's own dependencies and the test tools at least


def test_install_ps1_reads_the_bundles_version_as_the_bundle_writes_it(bundle: Path) -> None:
    """install.ps1 names each version's environment after requirements/jobsync.txt's pin."""
    script = (bundle / "install.ps1").read_text(encoding="utf-8")
    pattern = re.search(r"\[regex\]::Match\(\$pin, '([^']+)'\)", script)
    assert pattern is not None
    pin = (bundle / "requirements" / "jobsync.txt").read_text(encoding="utf-8").splitlines()[0]
    found = re.match(pattern.group(1), pin)
    assert found is not None
    assert found.group(1) == jobsync.__version__
