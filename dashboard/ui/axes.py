"""Axes of counts: whole numbers with thousands separators ("2,560"), one tick per unit when
the counts are small, so that an axis never shows 2.5 emails or the same label twice."""

from __future__ import annotations

SMALL = 8  # up to this many, a tick at every whole number


def count_axis(largest) -> dict:
    """The plotly axis settings of a count axis whose largest value is ``largest``."""
    axis = {"tickformat": ",d", "rangemode": "tozero"}
    if largest is not None and largest == largest and largest <= SMALL:
        axis["dtick"] = 1
    return axis
