"""Upsell performance: shown -> clicked -> purchased, revenue, trend, by mechanic; the catalogue.

Cohort view: each function takes the recommendations **shown** in the period (whole days in
the display timezone) and counts what became of them up to now, so a recommendation
shown on the last day can still be clicked or bought later.

Upsell revenue of a period is one figure for every page: ``revenue``, the price of the
purchases **made** in the period (``dashboard.domain.overview``), which does not change
after the period ends. The cohort's ``revenue_cents`` (purchases of what was shown in the
period) is the basis of revenue per shown only.

Metrics of a group: shown, clicked, purchased, revenue_cents (price of the purchased ones),
ctr (clicked / shown), conversion (purchased / shown), click_to_purchase (purchased /
clicked) and revenue_per_shown (cents); ratios are NaN for an empty group.

For the customer: ``customer_cards`` (their open recommendations) and
``recommended_next_service`` (the one to offer first, as the customer lookup shows it).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.core import schema as s
from dashboard.core.errors import Invalid
from dashboard.core.period import Period
from dashboard.core.validation import parse_uuid
from dashboard.domain import overview as rollups
from queries.customers import open_recommendations, recommended_next
from queries.funnel import GRAINS, bucket_starts

COUNTS = ["shown", "clicked", "purchased", "revenue_cents"]
GROUPS = {"recommendation_type": "Recommendation type", "service": "Service"}


def _shown_in(period: Period) -> sa.ColumnElement[bool]:
    start, end = period.bounds()
    rec = s.upsell_recommendations
    return sa.and_(rec.c.shown_at >= start, rec.c.shown_at < end)


def _counts(rec: sa.FromClause = s.upsell_recommendations) -> list[sa.ColumnElement]:
    """The counts of COUNTS over ``rec`` (recommendations, or rows with their column names)."""
    return [
        sa.func.count().label("shown"),
        sa.func.count(rec.c.clicked_at).label("clicked"),
        sa.func.count(rec.c.purchased_at).label("purchased"),
        sa.cast(
            sa.func.coalesce(sa.func.sum(rec.c.price_cents).filter(rec.c.purchased_at.isnot(None)), 0), sa.BigInteger
        ).label("revenue_cents"),
    ]


def _with_rates(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype({column: "int64" for column in COUNTS})
    shown, clicked = frame.shown.where(frame.shown > 0), frame.clicked.where(frame.clicked > 0)
    return frame.assign(
        ctr=frame.clicked / shown,
        conversion=frame.purchased / shown,
        click_to_purchase=frame.purchased / clicked,
        revenue_per_shown=frame.revenue_cents / shown,
    )


def summary(conn: Connection, *, period: Period) -> pd.DataFrame:
    """Two rows indexed by ``period``: ``current`` and ``previous`` (the equal period before)."""
    parts = [
        sa.select(sa.literal(label, sa.Text).label("period"), *_counts()).where(_shown_in(p))
        for label, p in (("current", period), ("previous", period.previous()))
    ]
    frame = pd.DataFrame(conn.execute(sa.union_all(*parts)).mappings().all())
    return _with_rates(frame).set_index("period").loc[["current", "previous"]]


def revenue(conn: Connection, *, period: Period) -> pd.DataFrame:
    """Upsell revenue: two rows indexed by ``period`` (``current`` and ``previous``, the equal
    period before) with ``purchases`` and ``revenue_cents`` of the upsells purchased in them.
    Overview and the Upsells page both show this figure."""
    metrics = ["upsell_purchases", "upsell_revenue_cents"]
    parts = rollups.windows_rows(conn, [rollups.UPSELL_SOURCE], s.kpi_buckets, metrics, rollups.by_period(period))
    found = {row[0]: row[1:] for row in conn.execute(rollups.summed(parts, metrics))}
    return pd.DataFrame(
        [(p, *[int(v or 0) for v in found.get(p, (0, 0))]) for p in ("current", "previous")],
        columns=["period", "purchases", "revenue_cents"],
    ).set_index("period")


def performance(conn: Connection, *, period: Period, by: str = "recommendation_type") -> pd.DataFrame:
    """Metrics per recommendation type, or per service (``by="service"``: type and title),
    most revenue first."""
    if by not in GROUPS:
        raise ValueError(f"Unknown grouping {str(by)[:40]!r}; choose from {', '.join(GROUPS)}.")
    rec = s.upsell_recommendations
    keys = [rec.c.recommendation_type] + ([rec.c.service_title] if by == "service" else [])
    query = (
        sa.select(*keys, *_counts())
        .where(_shown_in(period))
        .group_by(*keys)
        .order_by(sa.literal_column("revenue_cents").desc(), *keys)
    )
    return _with_rates(pd.DataFrame(conn.execute(query).all(), columns=[k.name for k in keys] + COUNTS))


def trend(conn: Connection, *, period: Period, grain: str = "week") -> pd.DataFrame:
    """Metrics per local day, week (from Monday) or month of ``shown_at``, every bucket of the period listed."""
    if grain not in GRAINS:
        raise ValueError(f"Unknown grain {str(grain)[:20]!r}; choose from {', '.join(GRAINS)}.")
    rec = s.upsell_recommendations
    bucketed = (
        sa.select(
            sa.cast(sa.func.date_trunc(grain, sa.func.timezone(period.tz, rec.c.shown_at)), sa.Date).label("bucket"),
            rec.c.clicked_at,
            rec.c.purchased_at,
            rec.c.price_cents,
        )
        .where(_shown_in(period))
        .subquery("bucketed")
    )
    query = sa.select(bucketed.c.bucket, *_counts(bucketed)).group_by(bucketed.c.bucket)
    found = {row[0]: row[1:] for row in conn.execute(query)}
    starts = bucket_starts(period, grain)
    frame = pd.DataFrame([found.get(day, (0, 0, 0, 0)) for day in starts], columns=COUNTS)
    return _with_rates(frame).assign(bucket=starts)[
        ["bucket", *COUNTS, "ctr", "conversion", "click_to_purchase", "revenue_per_shown"]
    ]


def by_mechanic(conn: Connection, *, period: Period) -> pd.DataFrame:
    """Metrics per mechanic who held the session a recommendation followed, most revenue first:
    every active mechanic (zeros when none of theirs was shown in the period) and any inactive
    one with recommendations in it (recommendations without a session or mechanic are left out).
    Read from the 15-minute cohort roll-up where it is exact (``dashboard.domain.overview``)."""
    m, metrics = s.mechanics, list(rollups.UPSELL_MECHANIC_METRICS)
    window = rollups.Window(*period.bounds(), rollups.labelled("period"))  # no inner boundary: any zone
    parts = rollups.windows_rows(conn, [rollups.UPSELL_MECHANIC_SOURCE], s.upsell_mechanic_buckets, metrics, [window])
    per_mechanic = sa.select(parts.c.mechanic_id, *[sa.func.sum(parts.c[c]).label(c) for c in metrics])
    per_mechanic = per_mechanic.group_by(parts.c.mechanic_id).subquery("per_mechanic")
    query = (
        sa.select(
            sa.cast(m.c.user_id, sa.Text),
            m.c.display_name,
            *[sa.cast(sa.func.coalesce(per_mechanic.c[c], 0), sa.BigInteger).label(c) for c in COUNTS],
        )
        .select_from(m.outerjoin(per_mechanic, per_mechanic.c.mechanic_id == m.c.user_id))
        .where(sa.or_(m.c.is_active, per_mechanic.c.mechanic_id.isnot(None)))
        .order_by(sa.literal_column("revenue_cents").desc(), m.c.display_name, m.c.user_id)
    )
    return _with_rates(pd.DataFrame(conn.execute(query).all(), columns=["mechanic_id", "display_name", *COUNTS]))


def customer_cards(conn: Connection, customer_id, *, now: dt.datetime | None = None) -> list[dict]:
    """The customer's open recommendations as cards (clicked first, then the latest shown):
    id, kind, title, description, price_cents, reason."""
    cid = parse_uuid(customer_id, "Customer", Invalid)
    rec = s.upsell_recommendations
    query = open_recommendations(
        cid,
        now or dt.datetime.now(dt.UTC),
        rec.c.id,
        rec.c.recommendation_type.label("kind"),
        rec.c.service_title.label("title"),
        rec.c.service_description.label("description"),
        rec.c.price_cents,
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def recommended_next_service(conn: Connection, customer_id, *, now: dt.datetime | None = None) -> dict | None:
    """The next service to offer the customer (``queries.customers.recommended_next``):
    kind, title, price_cents, reason; None when there is nothing to offer."""
    found = recommended_next(conn, customer_id=customer_id, now=now)
    if found.empty:
        return None
    row = found.iloc[0]
    return {
        "kind": row["recommendation_type"],
        "title": row["service_title"],
        "price_cents": int(row["price_cents"]),
        "reason": row["reason"],
    }


CATALOGUE_COLUMNS = [
    "service_id",
    "recommendation_type",
    "title",
    "description",
    "price_cents",
    "is_active",
    "updated_by",
    "updated_at",
]


def catalogue(conn: Connection) -> pd.DataFrame:
    """Every catalogue service, active first, by type and title."""
    svc = s.upsell_services
    query = sa.select(
        sa.cast(svc.c.id, sa.Text),
        svc.c.recommendation_type,
        svc.c.title,
        svc.c.description,
        svc.c.price_cents,
        svc.c.is_active,
        svc.c.updated_by,
        svc.c.updated_at,
    ).order_by(svc.c.is_active.desc(), svc.c.recommendation_type, svc.c.title)
    return pd.DataFrame(conn.execute(query).all(), columns=CATALOGUE_COLUMNS)
