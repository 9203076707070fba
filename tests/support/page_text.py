"""The text of an HTML page, minus its style sheet: roughly what a person reads."""

from __future__ import annotations

from html.parser import HTMLParser


class _Text(HTMLParser):
    """Collects the text outside the style sheet, stripped, piece by piece."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, _attrs: object) -> None:
        self._in_style = tag == "style"

    def handle_endtag(self, _tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if not self._in_style and data.strip():
            self.parts.append(data.strip())


def page_text(page: bytes) -> str:
    """The words of an HTML page a person reads, one space apart."""
    parser = _Text()
    parser.feed(page.decode("utf-8"))
    return " ".join(parser.parts)
