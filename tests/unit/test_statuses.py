"""NT statuses read as words, with their code kept for whoever searches for it."""

from __future__ import annotations

import pytest
from smbprotocol.header import NtStatus

from jobsync.transport.smb import statuses


@pytest.mark.parametrize("status", sorted(statuses.known_statuses()))
def test_every_status_jobsync_names_is_explained_in_words(status: int) -> None:
    """Each status has words of its own and its hex code, never the code alone."""
    text = statuses.describe(status)
    assert text.endswith(f"(0x{status:08X})")
    assert len(text) > len("(0x00000000)") + 3


def test_the_statuses_of_the_issue_read_as_words() -> None:
    """The two statuses administrators met as bare numbers."""
    assert statuses.describe(0xC000000D).startswith("the server refused a parameter")
    assert statuses.describe(0xC000035C).startswith("the logon session expired")


def test_every_status_smbprotocol_raises_as_an_error_is_explained() -> None:
    """Smbprotocol knows these statuses well enough to give them exception classes."""
    named = {v for k, v in vars(NtStatus).items() if k.startswith("STATUS_")}
    missing = sorted(f"0x{s:08X}" for s in named - statuses.known_statuses())
    assert missing == []


def test_an_unknown_status_says_so_and_keeps_its_code() -> None:
    """A status jobsync has no words for is still shown, and says it is unexplained."""
    assert statuses.describe(0xC0DEC0DE) == (
        "refused with NT status 0xC0DEC0DE, which jobsync has no words for"
    )
