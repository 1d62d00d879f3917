"""Overview: the headline KPIs of a period against the period before, and the daily trend.

Periods are whole days in the display timezone (``dashboard.core.period.Period``):
filters compare ``timestamptz`` columns with the UTC instants of the local
midnights, and the trend groups by the local day with ``timezone(tz, ts)``,
which PostgreSQL and DuckDB both provide.

Definitions (each over ``[start, end)`` of the period):
- sessions completed: sessions with status ``completed`` whose ``ended_at`` is in the period;
- intake requests: requests that are not follow-ups, created in the period;
  converted: those of them with a completed session (at any time up to now);
- average rating: mean rating of the reviews created in the period that are published;
- upsell revenue: ``price_cents`` of upsell recommendations purchased in the period;
- emails failed: outbox rows created in the period whose status is ``failed``.
The period figures are defined once, in ``dashboard.domain.overview``, and read from its
15-minute roll-ups where they are exact (the raw rows elsewhere); upsell revenue is
``queries.upsells.revenue``, the same figure the Upsells page shows.
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
from queries import upsells
from queries.calendars import hour_grid

KPI_COLUMNS = (
    "sessions_completed",
    "intake_requests",
    "converted_requests",
    "reviews_published",
    "avg_rating",
    "upsell_revenue_cents",
    "emails_failed",
)


def kpis(conn: Connection, *, period: Period) -> pd.DataFrame:
    """Two rows, ``current`` (the period) and ``previous`` (the equal period before),
    indexed by ``period``: the columns of ``KPI_COLUMNS`` plus ``conversion_rate``
    (converted / intake requests; NaN without intake requests). ``avg_rating`` is NaN without reviews.

    One query: the roll-ups for the whole 15-minute buckets of both periods, the raw rows for
    the rest (``dashboard.domain.overview``). Upsell revenue is ``queries.upsells.revenue``.
    """
    windows = rollups.by_period(period)
    kpi = rollups.summed(
        rollups.windows_rows(conn, rollups.KPI_SOURCES, s.kpi_buckets, rollups.KPI_METRICS, windows),
        rollups.KPI_METRICS,
    )
    mail = rollups.windows_rows(
        conn, [rollups.EMAIL_SOURCE], s.email_buckets, ["emails"], windows, only={"status": ["failed"]}
    )
    failed = sa.select(mail.c.period, sa.func.sum(mail.c.emails)).group_by(mail.c.period)
    found = {row.period: row for row in conn.execute(kpi).mappings()}
    failed_by = dict(conn.execute(failed).all())
    revenue = upsells.revenue(conn, period=period)
    rows = []
    for p in ("current", "previous"):
        row = found.get(p, {})
        reviews = int(row.get("reviews_published") or 0)
        rows.append(
            {
                "period": p,
                "sessions_completed": row.get("sessions_completed") or 0,
                "intake_requests": row.get("intake_requests") or 0,
                "converted_requests": row.get("converted_requests") or 0,
                "reviews_published": reviews,
                "avg_rating": (int(row["rating_sum"]) / reviews) if reviews else float("nan"),
                "upsell_revenue_cents": revenue.loc[p, "revenue_cents"],
                "emails_failed": failed_by.get(p) or 0,
            }
        )
    frame = pd.DataFrame(rows).set_index("period")[list(KPI_COLUMNS)]
    frame = frame.astype({c: "int64" for c in KPI_COLUMNS if c != "avg_rating"}).astype({"avg_rating": "float64"})
    frame["conversion_rate"] = frame.converted_requests / frame.intake_requests.where(frame.intake_requests > 0)
    return frame


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
