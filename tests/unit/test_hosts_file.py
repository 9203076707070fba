"""The services name's line in a Windows hosts file: one marked line, nothing else lost."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from jobsync.failover.repoint import MARK, SET_ASIDE, addresses_for, point_name

NAME = "integrify-services.example.com"
STOCK = b"# Copyright (c) 1993-2009 Microsoft Corp.\r\n#\r\n127.0.0.1       localhost\r\n"


def test_a_stock_file_gains_one_marked_line_with_windows_line_ends() -> None:
    """The stock lines stay byte for byte; the new one ends the file, with CRLF."""
    edit = point_name(STOCK, NAME, "10.0.0.12")
    assert edit.changed
    assert edit.previous == ()
    assert edit.data == STOCK + f"10.0.0.12 {NAME} {MARK}\r\n".encode()


def test_another_line_for_the_name_is_set_aside_not_deleted() -> None:
    """A hand-made line for the name would race the marked one: commented out, still there."""
    data = STOCK + f"10.0.0.11   {NAME}   # old services node\r\n".encode()
    edit = point_name(data, NAME.upper() + ".", "10.0.0.12")
    assert edit.previous == ("10.0.0.11",)
    assert edit.set_aside == 1
    text = edit.data.decode()
    assert f"{SET_ASIDE}10.0.0.11   {NAME}   # old services node\r\n" in text
    assert addresses_for(edit.data, NAME) == ("10.0.0.12",)


def test_the_marked_line_is_replaced_in_place_and_a_second_edit_changes_nothing() -> None:
    """The marked line keeps its place; the same address again gives the same bytes."""
    first = point_name(STOCK, NAME, "10.0.0.12")
    data = first.data + b"10.0.0.99 other.example.com\r\n"
    moved = point_name(data, NAME, "10.0.0.13")
    assert moved.previous == ("10.0.0.12",)
    assert moved.data == STOCK + f"10.0.0.13 {NAME} {MARK}\r\n".encode() + (
        b"10.0.0.99 other.example.com\r\n"
    )
    again = point_name(moved.data, NAME, "10.0.0.13")
    assert not again.changed
    assert again.data == moved.data


def test_a_name_on_a_line_with_other_names_is_found() -> None:
    """Windows reads every name after the address."""
    data = f"10.0.0.11 web1 {NAME} # both\r\n".encode()
    assert addresses_for(data, NAME) == ("10.0.0.11",)


_LINE = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=255, blacklist_characters="\r\n"),
    max_size=40,
)


@given(st.lists(_LINE, max_size=12), st.sampled_from(["10.0.0.12", "192.0.2.7"]))
def test_every_line_not_about_the_name_survives_and_the_name_ends_up_there(
    lines: list[str], address: str
) -> None:
    """Whatever the file holds, the name resolves to the address and nothing else is lost."""
    assume(all(NAME not in line.casefold() for line in lines))
    data = "\r\n".join(lines).encode("latin-1")
    edit = point_name(data, NAME, address)
    assert addresses_for(edit.data, NAME) == (address,)
    kept = edit.data.decode("latin-1").split("\r\n")
    for line in lines:
        if line.strip():
            assert line in kept
