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
