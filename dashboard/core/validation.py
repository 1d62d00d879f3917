"""Input checks shared by the domain modules."""

from __future__ import annotations

import uuid
from typing import Any


def parse_uuid(value: Any, what: str, error: type[Exception] = ValueError) -> uuid.UUID:
    """``value`` as a UUID, or ``error`` saying which id is malformed (the text cut to 40 characters)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        raise error(f"{what} {str(value)[:40]!r} is not a valid id.") from None


def parse_text(
    value: Any, what: str, limit: int, error: type[Exception] = ValueError, *, required: bool = True
) -> str | None:
    """Text from a form or a request, stripped: a string with no NUL character (PostgreSQL
    cannot store one) and at most ``limit`` characters; None when blank and not ``required``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise error(f"{what} is required.")
        return None
    if not isinstance(value, str):
        raise error(f"{what} must be text, not {type(value).__name__}.")
    if "\x00" in value:
        raise error(f"{what} contains a NUL character.")
    text = value.strip()
    if len(text) > limit:
        raise error(f"{what} is {len(text):,} characters; the limit is {limit:,}.")
    return text
