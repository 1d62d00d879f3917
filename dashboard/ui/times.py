"""Moments to the second, in the display timezone: for what a person did at a given time
(an answer recorded, an email sent) and for exports, where minutes are not enough to
match a row with a log."""

from __future__ import annotations

import pandas as pd

SECONDS = "%d %b %Y, %H:%M:%S"


def to_the_second(timestamp, tz: str, missing: str = "—") -> str:
    """A UTC instant in ``tz``, e.g. ``08 Jul 2026, 23:27:05``; ``missing`` when there is none."""
    if timestamp is None or pd.isna(timestamp):
        return missing
    return pd.Timestamp(timestamp).tz_convert(tz).strftime(SECONDS)


def column_to_the_second(values, tz: str, missing: str = "") -> list[str]:
    """``to_the_second`` of each value, for a table or an export column (blank when missing)."""
    return [to_the_second(value, tz, missing) for value in values]
