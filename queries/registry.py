"""Queries registered for ``python -m dashboard.tools.bench.queries``.

A query module registers one benchmark case per page query::

    register("reviews.queue", lambda conn, ctx: moderation_queue(conn, since=ctx.start))

``ctx`` is a ``BenchContext`` describing the loaded demo data (its period and
a few sample ids), so cases can pass realistic filters.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd
from sqlalchemy.engine import Connection

from dashboard.core.period import Period


@dataclass(frozen=True)
class BenchContext:
    start: dt.datetime  # first day of the demo period, UTC
    end: dt.datetime  # the demo's "now", UTC
    sample: dict = field(default_factory=dict)  # e.g. {"mechanic_id": ..., "customer_id": ...}

    @property
    def period(self) -> Period:
        """The benchmark's period as whole UTC days, the filter most pages take."""
        return Period(self.start.date(), self.end.date(), "UTC")


BenchCase = Callable[[Connection, BenchContext], pd.DataFrame]
CASES: dict[str, BenchCase] = {}


def register(name: str, case: BenchCase) -> None:
    if name in CASES:
        raise ValueError(f"benchmark case {name!r} registered twice")
    CASES[name] = case
