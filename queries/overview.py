"""Overview: the headline KPIs of a period against the period before, and the daily trend.

Periods are whole days in the display timezone (``dashboard.core.period.Period``):
filters compare ``timestamptz`` columns with the UTC instants of the local
midnights, and the trend groups by the local day with ``timezone(tz, ts)``,
which PostgreSQL and DuckDB both provide.

Definitions (each over ``[start, end)`` of the period):
- sessions completed: sessions with status ``completed`` whose ``ended_at`` is in the period;
- average rating: mean rating of the reviews created in the period that are published.
The period figures are defined once, in ``dashboard.domain.overview``, and read from its
15-minute roll-ups where they are exact (the raw rows elsewhere). The role homes' tiles read
the queries of the pages they open instead (``pages/overview.py``).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.core import schema as s
from dashboard.core.period import Period
from dashboard.core.schema import email_outbox
from dashboard.domain import overview as rollups
from queries.calendars import hour_grid

KPI_COLUMNS = ("sessions_completed", "reviews_published", "avg_rating")


def kpis(conn: Connection, *, period: Period) -> pd.DataFrame:
    """Two rows, ``current`` (the period) and ``previous`` (the equal period before),
    indexed by ``period``: the columns of ``KPI_COLUMNS``; ``avg_rating`` is NaN without reviews.

    One query: the roll-ups for the whole 15-minute buckets of both periods, the raw rows for
    the rest (``dashboard.domain.overview``)."""
    metrics = ["sessions_completed", "reviews_published", "rating_sum"]
    parts = rollups.windows_rows(
        conn, [rollups.SESSIONS_SOURCE, rollups.REVIEWS_SOURCE], s.kpi_buckets, metrics, rollups.by_period(period)
    )
    found = {row.period: row for row in conn.execute(rollups.summed(parts, metrics)).mappings()}
    rows = []
    for p in ("current", "previous"):
        row = found.get(p, {})
        reviews = int(row.get("reviews_published") or 0)
        rows.append(
            {
                "period": p,
                "sessions_completed": int(row.get("sessions_completed") or 0),
                "reviews_published": reviews,
                "avg_rating": (int(row["rating_sum"]) / reviews) if reviews else float("nan"),
            }
        )
    frame = pd.DataFrame(rows).set_index("period")[list(KPI_COLUMNS)]
    return frame.astype({"sessions_completed": "int64", "reviews_published": "int64", "avg_rating": "float64"})


def sessions_completed_per_day(conn: Connection, *, period: Period) -> pd.DataFrame:
    """Columns ``day`` (local date in the period's timezone) and ``sessions``,
    one row for every day of the period, zero where none were completed."""
    parts = rollups.windows_rows(
        conn, [rollups.SESSIONS_SOURCE], s.kpi_buckets, ["sessions_completed"], [rollups.by_local_day(period)]
    )
    counts = dict(conn.execute(rollups.summed(parts, ["sessions_completed"])).all())
    all_days = [period.start + dt.timedelta(days=i) for i in range(period.days)]
    sessions_per_day = pd.Series([counts.get(day, 0) for day in all_days], dtype="int64")
    return pd.DataFrame({"day": all_days, "sessions": sessions_per_day})


# --- figures of the role homes that no page's query gives -----------------------------------


def uncertain_emails(conn: Connection) -> pd.DataFrame:
    """One row, a snapshot of every date: ``uncertain``, the outbox rows that may have reached
    Resend and wait for an admin's decision now (the Emails page's Uncertain tab; the failed
    ones are counted by ``queries.emails.failure_groups``, as the Failed tab shows them)."""
    query = sa.select(sa.func.count().label("uncertain")).where(email_outbox.c.status == "uncertain")
    return pd.DataFrame(conn.execute(query).mappings().all()).astype("int64")


def week_capacity(
    conn: Connection, *, week_start: dt.date, tz: str, session_minutes: int, now: dt.datetime
) -> pd.DataFrame:
    """One row for the week from ``week_start`` over every active mechanic, from the calendars
    page's hour grid (``queries.calendars.hour_grid``, so utilisation is the same figure there):
    ``available_hours``, ``booked_hours``, ``utilisation`` (booked / available, NaN without
    availability) and ``unfilled_peak_hours``: hours still open for booking from ``now`` on at a
    peak price (an hour whose mean multiplier is above 1), available minus booked."""
    grid = hour_grid(conn, mechanic_ids=None, week_start=week_start, tz=tz, session_minutes=session_minutes)
    available, booked = grid.available_minutes.sum(), grid.booked_minutes.sum()
    local_now = pd.Timestamp(now).tz_convert(tz)
    ahead = (grid.local_date > local_now.date()) | (
        (grid.local_date == local_now.date()) & (grid.hour >= local_now.hour)
    )
    peak = ahead & (grid.multiplier > 1)
    unfilled = (grid.available_minutes - grid.booked_minutes).clip(lower=0)[peak].sum()
    return pd.DataFrame(
        {
            "available_hours": [available / 60],
            "booked_hours": [booked / 60],
            "utilisation": [booked / available if available else float("nan")],
            "unfilled_peak_hours": [unfilled / 60],
        }
    )
