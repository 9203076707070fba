"""A peer's password sealed for this machine (``password_file``, ``jobsync secret set``).

DPAPI exists on Windows only; here a reversible stand-in seals and unseals, so the file, its
access list, the binding to the user name and every refusal are tested; the call into
``CryptProtectData`` itself is not run on this system.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jobsync.config.load import load_config
from jobsync.config.model import Config
from jobsync.errors import ConfigError
from jobsync.windows.install import secret_peer, store_secret

from support.cluster import run_jobsync
from support.windows_fake import FakeWindows

GMSA = "CORP\\gmsa-jobsync$"
TYPED = "Dr-site passw0rd!"


def _seal(data: bytes, extra: bytes) -> bytes:
    return b"SEALED:" + extra + b"|" + bytes(b ^ 0x5A for b in data)


def _unseal(sealed: bytes, extra: bytes) -> bytes:
    head = b"SEALED:" + extra + b"|"
    if not sealed.startswith(head):
        raise OSError(87, "The parameter is incorrect")  # what DPAPI says to a wrong entropy
    return bytes(b ^ 0x5A for b in sealed[len(head) :])


def _write(tmp_path: Path, peer_keys: str) -> Path:
    (tmp_path / "jobs").mkdir(exist_ok=True)
    path = tmp_path / "jobsync.toml"
    path.write_text(
        f"source = '{tmp_path / 'jobs'}'\n"
        f"[[peers]]\nname = 'dr-site'\npath = '\\\\dr1\\jobs$\\jobs'\n{peer_keys}"
        f"[service]\naccount = '{GMSA}'\n",
        encoding="utf-8",
    )
    return path


def _stored(tmp_path: Path, user: str = "DR1\\jobsync") -> Config:
    path = _write(tmp_path, f"username = '{user}'\npassword_file = 'secrets\\dr-site.dpapi'\n")
    return load_config(path, environ={}, secrets=False)


def test_a_sealed_password_is_read_back_by_the_service_and_by_no_one_else(
    tmp_path: Path,
) -> None:
    """Stored sealed (never in the clear), readable by SYSTEM, Administrators and the gMSA."""
    config = _stored(tmp_path)
    windows = FakeWindows()
    stored = store_secret(
        config, secret_peer(config, "DR-SITE"), TYPED, windows.tools(), seal=_seal
    )
    assert stored == tmp_path / "secrets\\dr-site.dpapi"
    assert TYPED.encode() not in stored.read_bytes()
    assert windows.commands == [
        [
            "icacls.exe",
            str(stored),
            "/inheritance:r",
            "/grant:r",
            "*S-1-5-18:F",
            "*S-1-5-32-544:F",
            f"{GMSA}:R",
        ]
    ]
    loaded = load_config(config.path, environ={}, unseal=_unseal)
    password = loaded.peers[0].password
    assert password is not None
    assert password.value == TYPED
    assert TYPED not in repr(loaded)


def test_a_file_sealed_for_another_user_does_not_open(tmp_path: Path) -> None:
    """The user name is part of the seal: a renamed user's old file is refused, in words."""
    config = _stored(tmp_path)
    store_secret(config, config.peers[0], TYPED, FakeWindows().tools(), seal=_seal)
    renamed = _write(
        tmp_path, "username = 'DR1\\other'\npassword_file = 'secrets\\dr-site.dpapi'\n"
    )
    with pytest.raises(ConfigError, match="does not open on this machine for DR1\\\\other"):
        load_config(renamed, environ={}, unseal=_unseal)


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ("username = 'u'\npassword_file = 'missing.dpapi'\n", "does not exist: store the password"),
        (
            "username = 'u'\npassword_file = 'x.dpapi'\npassword_env = 'P'\n",
            "each a source for one password: keep one",
        ),
        ("password_file = 'x.dpapi'\n", "a password source is set but username is not"),
    ],
)
def test_a_password_file_is_refused_where_it_cannot_serve(
    tmp_path: Path, keys: str, problem: str
) -> None:
    """A missing file, two sources, or no user: exit 2 with the reason."""
    with pytest.raises(ConfigError, match=problem):
        load_config(_write(tmp_path, keys), environ={"P": "x"}, unseal=_unseal)


def test_off_windows_a_password_file_says_it_needs_windows(tmp_path: Path) -> None:
    """Without DPAPI there is nothing that can open the file."""
    config = _stored(tmp_path)
    assert config.peers[0].password_file is not None
    config.peers[0].password_file.parent.mkdir(parents=True, exist_ok=True)
    config.peers[0].password_file.write_bytes(b"sealed elsewhere")
    with pytest.raises(ConfigError, match="password_file needs Windows"):
        load_config(config.path, environ={})


def test_secret_set_names_what_it_needs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Off Windows the command says it needs DPAPI (exit 2); a peer without a file is named."""
    config = _stored(tmp_path)
    ran = run_jobsync(capsys, ["secret", "set", "dr-site", "-c", str(config.path)])
    assert ran.code == 2, ran
    assert "needs Windows" in ran.err
    plain = _write(tmp_path, "")
    with pytest.raises(ConfigError, match="needs username and password_file"):
        secret_peer(load_config(plain, environ={}, secrets=False), "dr-site")
