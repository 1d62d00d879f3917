"""Paging over a long list: which page a link asks for, and "21–40 of 29,775".

``page_of(raw, total, size)`` reads the ``page`` a URL carries (text, maybe missing or bad)
against the list's size, and says what it did when the link asked for something that does
not exist; ``Page`` gives the offset to query with and the range to show.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    """Page ``number`` (1-based) of ``total`` items, ``size`` a page."""

    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def first(self) -> int:
        return self.offset + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.offset + self.size, self.total)

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    def range_text(self, noun: str | None = None) -> str:
        """``1–20 of 29,775``; ``1 of 1``; ``0 of 0`` for an empty list; with ``noun``
        ("review"): ``1–20 of 29,775 reviews``, ``1 of 1 review``."""
        shown = f"{self.last:,}" if self.first == self.last else f"{self.first:,}–{self.last:,}"
        if noun is None:
            return f"{shown} of {self.total:,}"
        return f"{shown} of {self.total:,} {noun}{'' if self.total == 1 else 's'}"


def page_of(raw: object, total: int, size: int) -> tuple[Page, str | None]:
    """The page ``raw`` (a URL's text) asks for among ``total`` items, and a notice when it
    is not a page there is: not a whole number (page 1), or past the end (the last page)."""
    pages = Page(1, size, total).pages
    if raw is None or raw == "":
        return Page(1, size, total), None
    text = str(raw).strip()
    if not text.isdecimal() or len(text) > 9 or int(text) < 1:
        return Page(1, size, total), f"The link's page {text[:20]!r} is not a page number: showing page 1."
    number = int(text)
    if number > pages:
        return (
            Page(pages, size, total),
            f"There is no page {number:,} (the list has {pages:,} page{'' if pages == 1 else 's'}): showing the last.",
        )
    return Page(number, size, total), None
