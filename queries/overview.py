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
Open follow-ups is a snapshot (follow-up requests open or matched now), not a period value.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.core.period import Period
from dashboard.core.schema import email_outbox, mechanic_reviews, requests, sessions, upsell_recommendations
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


def _between(column: sa.ColumnElement, start: dt.datetime, end: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.and_(column >= start, column < end)


def _count(table: sa.Table, *where: sa.ColumnElement[bool]) -> sa.ScalarSelect:
    return sa.select(sa.func.count()).select_from(table).where(*where).scalar_subquery()


def kpis(conn: Connection, *, period: Period) -> pd.DataFrame:
    """Two rows, ``current`` (the period) and ``previous`` (the equal period before),
    indexed by ``period``: the columns of ``KPI_COLUMNS`` plus ``conversion_rate``
    (converted / intake requests; NaN without intake requests). ``avg_rating`` is NaN without reviews.

    Each table is read once for both periods (aggregates with FILTER), which halves the
    scans of a query per period.
    """
    windows = {"current": period.bounds(), "previous": period.previous().bounds()}
    first, last = windows["previous"][0], windows["current"][1]

    def per_period(metric: str, column: sa.ColumnElement, aggregate) -> list[sa.Label]:
        return [aggregate().filter(_between(column, *windows[p])).label(f"{p}_{metric}") for p in windows]

    count = sa.func.count
    intake = sa.and_(sa.not_(requests.c.is_follow_up), _between(requests.c.created_at, first, last))
    has_completed_session = sa.exists().where(sessions.c.request_id == requests.c.id, sessions.c.status == "completed")
    parts = [
        sa.select(*per_period("sessions_completed", sessions.c.ended_at, count)).where(
            sessions.c.status == "completed", _between(sessions.c.ended_at, first, last)
        ),
        sa.select(*per_period("intake_requests", requests.c.created_at, count)).where(intake),
        sa.select(*per_period("converted_requests", requests.c.created_at, count)).where(intake, has_completed_session),
        sa.select(
            *per_period("reviews_published", mechanic_reviews.c.created_at, count),
            *per_period(
                "avg_rating",
                mechanic_reviews.c.created_at,
                lambda: sa.func.avg(sa.cast(mechanic_reviews.c.rating, sa.Double)),
            ),
        ).where(mechanic_reviews.c.status == "published", _between(mechanic_reviews.c.created_at, first, last)),
        sa.select(
            *per_period(
                "upsell_revenue_cents",
                upsell_recommendations.c.purchased_at,
                lambda: sa.func.sum(upsell_recommendations.c.price_cents),
            )
        ).where(_between(upsell_recommendations.c.purchased_at, first, last)),
        sa.select(*per_period("emails_failed", email_outbox.c.created_at, count)).where(
            email_outbox.c.status == "failed", _between(email_outbox.c.created_at, first, last)
        ),
    ]
    subqueries = [part.subquery(f"part{i}") for i, part in enumerate(parts)]
    one_row_each = subqueries[0]
    for sub in subqueries[1:]:
        one_row_each = one_row_each.join(sub, sa.true())
    row = conn.execute(sa.select(*[c for sub in subqueries for c in sub.c]).select_from(one_row_each)).mappings().one()
    frame = pd.DataFrame([{"period": p, **{m: row[f"{p}_{m}"] for m in KPI_COLUMNS}} for p in windows]).set_index(
        "period"
    )
    frame["upsell_revenue_cents"] = frame["upsell_revenue_cents"].fillna(0)
    frame = frame.astype({c: "int64" for c in KPI_COLUMNS if c != "avg_rating"}).astype({"avg_rating": "float64"})
    frame["conversion_rate"] = frame.converted_requests / frame.intake_requests.where(frame.intake_requests > 0)
    return frame


def open_follow_ups(conn: Connection) -> pd.DataFrame:
    """One row, column ``open_follow_ups``: follow-up requests waiting now (open or matched)."""
    query = sa.select(
        _count(requests, requests.c.is_follow_up, requests.c.status.in_(("open", "matched"))).label("open_follow_ups")
    )
    return pd.DataFrame(conn.execute(query).mappings().all()).astype("int64")


def sessions_completed_per_day(conn: Connection, *, period: Period) -> pd.DataFrame:
    """Columns ``day`` (local date in the period's timezone) and ``sessions``,
    one row for every day of the period, zero where none were completed."""
    start, end = period.bounds()
    local_day = sa.cast(sa.func.timezone(period.tz, sessions.c.ended_at), sa.Date).label("day")
    days = (
        sa.select(local_day)
        .where(sessions.c.status == "completed", _between(sessions.c.ended_at, start, end))
        .subquery("completed")
    )
    query = sa.select(days.c.day, sa.func.count().label("sessions")).group_by(days.c.day)
    counts = {row.day: row.sessions for row in conn.execute(query)}
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
