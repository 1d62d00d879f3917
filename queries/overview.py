"""Overview: the headline KPIs of a period against the period before, and the daily trend.

Periods are whole days in the display timezone (``dashboard.period.Period``):
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

from dashboard.period import Period
from dashboard.schema import email_outbox, mechanic_reviews, requests, sessions, upsell_recommendations
from queries.registry import BenchContext, register

KPI_COLUMNS = (
    "sessions_completed", "intake_requests", "converted_requests", "reviews_published",
    "avg_rating", "upsell_revenue_cents", "emails_failed",
)


def _between(column: sa.ColumnElement, start: dt.datetime, end: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.and_(column >= start, column < end)


def _count(table: sa.Table, *where: sa.ColumnElement[bool]) -> sa.ScalarSelect:
    return sa.select(sa.func.count()).select_from(table).where(*where).scalar_subquery()


def _period_values(label: str, start: dt.datetime, end: dt.datetime) -> sa.Select:
    intake = sa.and_(sa.not_(requests.c.is_follow_up), _between(requests.c.created_at, start, end))
    completed_session = sa.exists().where(sessions.c.request_id == requests.c.id, sessions.c.status == "completed")
    published = sa.and_(mechanic_reviews.c.status == "published",
                        _between(mechanic_reviews.c.created_at, start, end))
    return sa.select(
        sa.literal(label, sa.Text).label("period"),
        _count(sessions, sessions.c.status == "completed", _between(sessions.c.ended_at, start, end))
        .label("sessions_completed"),
        _count(requests, intake).label("intake_requests"),
        _count(requests, intake, completed_session).label("converted_requests"),
        _count(mechanic_reviews, published).label("reviews_published"),
        sa.select(sa.cast(sa.func.avg(mechanic_reviews.c.rating), sa.Double)).where(published)
        .scalar_subquery().label("avg_rating"),
        sa.select(sa.cast(sa.func.coalesce(sa.func.sum(upsell_recommendations.c.price_cents), 0), sa.BigInteger))
        .where(_between(upsell_recommendations.c.purchased_at, start, end))
        .scalar_subquery().label("upsell_revenue_cents"),
        _count(email_outbox, email_outbox.c.status == "failed", _between(email_outbox.c.created_at, start, end))
        .label("emails_failed"),
    )


def kpis(conn: Connection, *, period: Period) -> pd.DataFrame:
    """Two rows, ``current`` (the period) and ``previous`` (the equal period before),
    indexed by ``period``: the columns of ``KPI_COLUMNS`` plus ``conversion_rate``
    (converted / intake requests; NaN without intake requests). ``avg_rating`` is NaN without reviews.
    """
    values = sa.union_all(
        _period_values("current", *period.bounds()),
        _period_values("previous", *period.previous().bounds()),
    ).subquery("kpis")
    query = sa.select(
        values,
        (sa.cast(values.c.converted_requests, sa.Double)
         / sa.cast(sa.func.nullif(values.c.intake_requests, 0), sa.Double))
        .label("conversion_rate"),
    )
    frame = pd.DataFrame(conn.execute(query).mappings().all())
    frame = frame.astype({c: "int64" for c in KPI_COLUMNS if c != "avg_rating"})
    frame = frame.astype({"avg_rating": "float64", "conversion_rate": "float64"})
    return frame.set_index("period").loc[["current", "previous"]]


def open_follow_ups(conn: Connection) -> pd.DataFrame:
    """One row, column ``open_follow_ups``: follow-up requests waiting now (open or matched)."""
    query = sa.select(_count(requests, requests.c.is_follow_up, requests.c.status.in_(("open", "matched")))
                      .label("open_follow_ups"))
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


def _bench_period(ctx: BenchContext) -> Period:
    return Period(ctx.start.date(), ctx.end.date(), "UTC")


register("overview.kpis", lambda conn, ctx: kpis(conn, period=_bench_period(ctx)))
register("overview.open_follow_ups", lambda conn, ctx: open_follow_ups(conn))
register("overview.sessions_per_day",
         lambda conn, ctx: sessions_completed_per_day(conn, period=_bench_period(ctx)))
