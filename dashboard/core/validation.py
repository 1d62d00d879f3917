"""Input checks shared by the domain modules and the command line."""

from __future__ import annotations

import argparse
import math
import uuid
from collections.abc import Callable
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


def ranged(kind: type, low: float, high: float, *, above: bool = False) -> Callable[[str], float]:
    """An argparse type: a ``kind`` number from ``low`` (excluded when ``above``) to ``high``
    (the command line's options, the demo command's ``--scale``)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if math.isnan(value) or value > high or value < low or (above and value == low):
            raise argparse.ArgumentTypeError(
                f"must be {'more than' if above else 'from'} {low:g} "
                f"{'and at most' if above else 'to'} {high:g}, got {text}"
            )
        return value

    return parse
