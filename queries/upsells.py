"""Upsell performance: shown -> clicked -> purchased, revenue, trend, by mechanic; the catalogue.

Cohort view: each function takes the recommendations **shown** in the period (whole days in
the display timezone) and counts what became of them up to now, so a recommendation
shown on the last day can still be clicked or bought later.

Upsell revenue of a period is one figure for every page: ``revenue``, the price of the
purchases **made** in the period (``dashboard.domain.overview``), which does not change
after the period ends. The cohort's ``revenue_cents`` (purchases of what was shown in the
period) is the basis of revenue per shown only.

The cohort is read from its roll-ups (per type and service title, and per mechanic; per 15
minutes and per UTC day, ``dashboard.domain.overview``) where they are exact, and from the raw
rows elsewhere, so the figures are the raw rows' in any display timezone.

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

COUNTS = list(rollups.UPSELL_COHORT_METRICS)
GROUPS = {"recommendation_type": "Recommendation type", "service": "Service"}


def _cohort(
    conn: Connection,
    windows: list[rollups.Window],
    by: list[str],
    source: rollups.Source = rollups.UPSELL_SERVICE_SOURCE,
    rollup: sa.Table = s.upsell_service_buckets,
) -> sa.Subquery:
    """COUNTS of the recommendations shown in ``windows``, per the key columns ``by``; from the
    cohort's roll-ups where they are exact (``dashboard.domain.overview``)."""
    parts = rollups.windows_rows(conn, [source], rollup, COUNTS, windows)
    keys = [parts.c[name] for name in by]
    sums = [sa.cast(sa.func.sum(parts.c[c]), sa.BigInteger).label(c) for c in COUNTS]
    return sa.select(*keys, *sums).group_by(*keys).subquery("cohort")


def _whole(period: Period) -> rollups.Window:
    return rollups.Window(*period.bounds(), rollups.labelled("period"))  # no inner boundary: any zone


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
    found = {row[0]: row[1:] for row in conn.execute(sa.select(_cohort(conn, rollups.by_period(period), ["period"])))}
    frame = pd.DataFrame(
        [(label, *found.get(label, (0,) * len(COUNTS))) for label in ("current", "previous")],
        columns=["period", *COUNTS],
    )
    return _with_rates(frame).set_index("period")


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
    keys = ["recommendation_type"] + (["service_title"] if by == "service" else [])
    cohort = _cohort(conn, [_whole(period)], keys)
    query = sa.select(cohort).order_by(cohort.c.revenue_cents.desc(), *[cohort.c[k] for k in keys])
    return _with_rates(pd.DataFrame(conn.execute(query).all(), columns=keys + COUNTS))


def trend(conn: Connection, *, period: Period, grain: str = "week") -> pd.DataFrame:
    """Metrics per local day, week (from Monday) or month of ``shown_at``, every bucket of the period listed."""
    if grain not in GRAINS:
        raise ValueError(f"Unknown grain {str(grain)[:20]!r}; choose from {', '.join(GRAINS)}.")
    starts = bucket_starts(period, grain)

    def bucket(ts: sa.ColumnElement) -> list[sa.ColumnElement]:
        return [sa.cast(sa.func.date_trunc(grain, sa.func.timezone(period.tz, ts)), sa.Date).label("bucket")]

    inner = rollups.local_midnights([day for day in starts if day > period.start], period.tz)
    found = {
        row[0]: row[1:]
        for row in conn.execute(sa.select(_cohort(conn, [rollups.Window(*period.bounds(), bucket, inner)], ["bucket"])))
    }
    frame = pd.DataFrame([found.get(day, (0, 0, 0, 0)) for day in starts], columns=COUNTS)
    return _with_rates(frame).assign(bucket=starts)[
        ["bucket", *COUNTS, "ctr", "conversion", "click_to_purchase", "revenue_per_shown"]
    ]


def by_mechanic(conn: Connection, *, period: Period) -> pd.DataFrame:
    """Metrics per mechanic who held the session a recommendation followed, most revenue first:
    every active mechanic (zeros when none of theirs was shown in the period) and any inactive
    one with recommendations in it (recommendations without a session or mechanic are left out)."""
    m = s.mechanics
    per_mechanic = _cohort(
        conn, [_whole(period)], ["mechanic_id"], rollups.UPSELL_MECHANIC_SOURCE, s.upsell_mechanic_buckets
    )
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
