"""Count axes with few values: ``ui.chart(..., y_format="count")`` formats the ticks as whole
numbers with separators; when the counts are small, plotly would still put ticks at 0.5,
1.5 …, so ``whole_ticks`` puts one at every whole number instead."""

from __future__ import annotations

import plotly.graph_objects as go

SMALL = 8  # up to this many, a tick at every whole number


def whole_ticks(fig: go.Figure, largest, axis: str = "y") -> None:
    """A tick at every whole number on ``axis`` when its largest count is at most ``SMALL``."""
    if largest is not None and largest == largest and largest <= SMALL:
        fig.update_layout({f"{axis}axis": {"dtick": 1}})
