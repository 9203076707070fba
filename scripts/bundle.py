"""Build the Windows bundle: one zip an offline Windows server installs jobsync from.

Run through scripts/bundle.sh. The wheels come from the Windows lock files
(requirements/windows-py3XX.txt, made by scripts/lock.sh for 64-bit Windows and each Python
version, so markers such as ``sys_platform == 'win32'`` were evaluated for Windows, not for this
machine), downloaded with pip for the Windows tags and checked against the lock's hashes.

The zip holds, at its root:
    install.ps1                      install, upgrade, removal (see docs/windows.md)
    requirements/windows-py3XX.txt   what install.ps1 installs for that Python, with hashes
    requirements/jobsync.txt         the jobsync wheel's name and hash
    wheels/                          every wheel those files name
    README.md, the reference (docs/configuration.md, commands.md, exit-codes.md, metrics.md),
    docs/ownership.md, safety.md, smb-servers.md, windows.md, failover.md, guarantees.md,
    status-page.png, docs/jobsync.example.toml, docs/prometheus/*.yml (alert rules and their
    tests), docs/grafana/jobsync-dashboard.json, CHANGELOG.md, LICENSE
    WinSW-x64.exe and .sha256        only with --winsw
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ROOT / "requirements"
DOCS = (
    "README.md",
    "docs/configuration.md",  # the configuration reference
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
    "LICENSE",
)
STAMP = (1980, 1, 1, 0, 0, 0)  # every entry gets the same time: the same inputs, the same zip
SOURCE_DATE_EPOCH = 315_532_800  # 1980-01-01, the earliest time a zip can hold
_LOCK_NAME = re.compile(r"windows-py3(\d+)\.txt")


def windows_locks() -> dict[str, Path]:
    """The Windows lock files by Python version ("3.10": path), from requirements/."""
    found = {f"3.{m.group(1)}": p for p in LOCKS.iterdir() if (m := _LOCK_NAME.fullmatch(p.name))}
    return dict(sorted(found.items(), key=lambda item: int(item[0].split(".")[1])))


def sha256(path: Path) -> str:
    """The file's SHA-256 as hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(*argv: str | Path) -> None:
    """Run a build step; stop with its own output when it fails."""
    # Archive times from a fixed date: the same checkout builds the same jobsync wheel.
    environment = os.environ | {"SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)}
    done = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, check=False, env=environment
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"bundle: {Path(str(argv[0])).name} {argv[1]} failed")


def build_wheel(work: Path) -> Path:
    """Build the jobsync wheel from this checkout, through an sdist.

    Built from the unpacked sdist, the wheel holds what the checkout holds now, never what a
    stale build/ folder in it kept.
    """
    out = work / "build"
    uv = Path(sys.executable).with_name("uv")
    python = ("--python", sys.executable, "--no-python-downloads")
    run(uv, "build", "--quiet", *python, "--out-dir", out, ROOT)
    (wheel,) = out.glob("jobsync-*.whl")
    return wheel


def download(version: str, lock: Path, work: Path) -> Path:
    """Every wheel the lock names, for 64-bit Windows and this Python, hash-checked."""
    wheels = work / f"wheels-{version}"
    run(
        *(sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"),
        *("--no-deps", "--require-hashes", "--only-binary=:all:"),
        *("--platform", "win_amd64", "--implementation", "cp", "--python-version", version),
        *("--dest", wheels, "--requirement", lock),
    )
    return wheels


def write_zip(zip_path: Path, files: dict[str, Path]) -> None:
    """The zip, entries sorted, each with the same time."""
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name in sorted(files):
            entry = zipfile.ZipInfo(name, date_time=STAMP)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            bundle.writestr(entry, files[name].read_bytes())


def main() -> int:
    """Build the bundle; prints its path and size."""
    parser = argparse.ArgumentParser(description="Build the Windows bundle of jobsync.")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="folder for the zip")
    parser.add_argument("--winsw", type=Path, help="WinSW-x64.exe to ship in the bundle")
    parser.add_argument("--winsw-sha256", help="its SHA-256, from WinSW's release page")
    args = parser.parse_args()
    if args.winsw and (args.winsw_sha256 or "").lower() != sha256(args.winsw):
        raise SystemExit("bundle: --winsw does not have the SHA-256 given by --winsw-sha256")

    with tempfile.TemporaryDirectory(prefix="jobsync-bundle-") as temp:
        work = Path(temp)
        wheels = work / "wheels"
        wheel = build_wheel(work)
        version = wheel.name.split("-")[1]
        with ThreadPoolExecutor() as pool:  # the downloads mostly wait on the network
            locks = windows_locks()
            folders = list(pool.map(download, locks, locks.values(), repeat(work)))
        wheels.mkdir()
        for folder in folders:
            for found in folder.iterdir():
                found.replace(wheels / found.name)  # the same file when two versions share it
        shutil.copy2(wheel, wheels / wheel.name)
        pin = work / "jobsync.txt"
        pin.write_text(f"jobsync=={version} --hash=sha256:{sha256(wheel)}\n", encoding="utf-8")

        files = {name: ROOT / name for name in DOCS}
        files["install.ps1"] = ROOT / "scripts" / "install.ps1"
        files |= {f"requirements/{lock.name}": lock for lock in windows_locks().values()}
        files["requirements/jobsync.txt"] = pin
        files |= {f"wheels/{w.name}": w for w in wheels.iterdir()}
        if args.winsw:
            files["WinSW-x64.exe"] = args.winsw
            (work / "winsw.sha256").write_text(sha256(args.winsw) + "\n", encoding="ascii")
            files["WinSW-x64.exe.sha256"] = work / "winsw.sha256"
        args.out.mkdir(parents=True, exist_ok=True)
        zip_path = args.out / f"jobsync-{version}-windows.zip"
        write_zip(zip_path, files)
    size = zip_path.stat().st_size
    print(f"{zip_path} ({size / 1e6:.1f} MB, {len(files)} files)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
