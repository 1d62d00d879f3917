"""Mechanics: the leaderboard, a mechanic's profile, ratings and measured response times.

Ranking uses the Bayesian rating of ``dashboard.domain.reviews`` (see its docstring):
``(m * C + n * avg_rating) / (m + n)`` with ``m = PRIOR_WEIGHT`` and ``C`` the
mean of all published reviews, taken from the stored aggregates of every
mechanic. Both are computed here in SQL, the same on PostgreSQL and DuckDB.

Response time is the time from the request's creation to the session's
acceptance (``sessions.accepted_at - requests.created_at``), in minutes,
counted against the mechanic's ``response_sla_minutes``.

For customers: ``public_profile`` (an active mechanic's public details, ratings and rank)
and ``published_reviews_page`` (their published reviews, newest first, a page at a time
with an opaque cursor over ``(created_at, id)``, so pages never skip or repeat a review
while new ones arrive).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.core.errors import Invalid
from dashboard.core.period import Period
from dashboard.core.schema import mechanic_reviews, mechanics, requests, sessions
from dashboard.core.validation import parse_uuid
from dashboard.domain.reviews import PRIOR_WEIGHT

REVIEWS_PAGE_MAX = 100
m = mechanics


def _global_mean() -> sa.ScalarSelect:
    """C: the mean rating of all published reviews (0 when there are none)."""
    total = sa.func.sum(m.c.total_reviews)
    weighted = sa.func.sum(sa.cast(m.c.avg_rating, sa.Double) * m.c.total_reviews)
    return sa.select(sa.func.coalesce(weighted / sa.cast(sa.func.nullif(total, 0), sa.Double), 0.0)).scalar_subquery()


def _bayesian(mean: sa.ColumnElement) -> sa.ColumnElement:
    return (PRIOR_WEIGHT * mean + m.c.total_reviews * sa.cast(m.c.avg_rating, sa.Double)) / sa.cast(
        PRIOR_WEIGHT + m.c.total_reviews, sa.Double
    )


def _ranked(specialty: str | None = None) -> sa.Subquery:
    """Active mechanics (with ``specialty`` if given) with their Bayesian rating and rank."""
    mean = _global_mean()
    score = _bayesian(mean)
    query = sa.select(
        m.c.user_id,
        m.c.display_name,
        m.c.specialties,
        m.c.avg_rating,
        m.c.total_reviews,
        m.c.response_sla_minutes,
        m.c.years_experience,
        m.c.is_active,
        score.label("bayesian_rating"),
        mean.label("global_mean"),
        sa.func.rank().over(order_by=score.desc()).label("rank"),
    ).where(m.c.is_active)
    if specialty:
        query = query.where(m.c.specialties.any(specialty))
    return query.subquery("ranked")


def _frame(conn: Connection, query: sa.Select) -> pd.DataFrame:
    """The rows as a frame; ``specialties`` a list (empty when none), ratings as floats."""
    frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=list(query.selected_columns.keys()))
    frame["specialties"] = [list(s) if isinstance(s, (list, tuple)) else [] for s in frame["specialties"]]
    return frame.astype({"avg_rating": "float64", "bayesian_rating": "float64", "global_mean": "float64"})


def leaderboard(conn: Connection, *, specialty: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """Active mechanics ranked by Bayesian rating (ties: more reviews first, then name): all of
    them, or the first ``limit``. All time: the ratings are the stored aggregates.

    Columns: rank, user_id, display_name, specialties, avg_rating, total_reviews,
    bayesian_rating, response_sla_minutes, years_experience, global_mean (C).
    """
    ranked = _ranked(specialty)
    query = (
        sa.select(
            ranked.c.rank,
            ranked.c.user_id,
            ranked.c.display_name,
            ranked.c.specialties,
            ranked.c.avg_rating,
            ranked.c.total_reviews,
            ranked.c.bayesian_rating,
            ranked.c.response_sla_minutes,
            ranked.c.years_experience,
            ranked.c.global_mean,
        )
        .order_by(ranked.c.rank, ranked.c.total_reviews.desc(), ranked.c.display_name, ranked.c.user_id)
        .limit(limit)
    )
    return _frame(conn, query)


def specialties(conn: Connection) -> list[str]:
    """Every specialty any mechanic lists, alphabetically."""
    listed = sa.select(sa.func.unnest(m.c.specialties).label("specialty")).subquery("listed")
    return list(conn.execute(sa.select(listed.c.specialty).distinct().order_by(listed.c.specialty)).scalars())


def mechanic_options(conn: Connection) -> pd.DataFrame:
    """Columns user_id, display_name, is_active of every mechanic, by name (for pickers)."""
    query = sa.select(m.c.user_id, m.c.display_name, m.c.is_active).order_by(m.c.display_name, m.c.user_id)
    return pd.DataFrame(conn.execute(query).mappings().all(), columns=["user_id", "display_name", "is_active"])


def profile(conn: Connection, *, mechanic_id) -> pd.DataFrame:
    """One row (none for an unknown id): the mechanic's details, aggregates, Bayesian
    rating, the global mean C, and rank among active mechanics (empty for an inactive one)."""
    ranked = _ranked()
    mean = _global_mean()
    query = (
        sa.select(
            m.c.user_id,
            m.c.display_name,
            m.c.bio,
            m.c.years_experience,
            m.c.specialties,
            m.c.timezone,
            m.c.is_active,
            m.c.avg_rating,
            m.c.total_reviews,
            m.c.response_sla_minutes,
            _bayesian(mean).label("bayesian_rating"),
            mean.label("global_mean"),
            ranked.c.rank,
            sa.select(sa.func.count()).select_from(ranked).scalar_subquery().label("ranked_mechanics"),
        )
        .select_from(m.outerjoin(ranked, ranked.c.user_id == m.c.user_id))
        .where(m.c.user_id == mechanic_id)
    )
    return _frame(conn, query)


def rating_distribution(conn: Connection, *, mechanic_id) -> pd.DataFrame:
    """Published reviews per star: columns ``stars`` (1..5, all present) and ``reviews``."""
    r = mechanic_reviews
    query = (
        sa.select(r.c.rating, sa.func.count())
        .where(r.c.mechanic_id == mechanic_id, r.c.status == "published")
        .group_by(r.c.rating)
    )
    counts = dict(conn.execute(query).all())
    return pd.DataFrame({"stars": range(1, 6), "reviews": [counts.get(star, 0) for star in range(1, 6)]})


def is_public(conn: Connection, mechanic_id: uuid.UUID) -> bool:
    """Whether customers may see the mechanic (known and active), without ranking anyone."""
    return conn.execute(sa.select(m.c.user_id).where(m.c.user_id == mechanic_id, m.c.is_active)).first() is not None


def public_profile(conn: Connection, mechanic_id) -> dict | None:
    """What customers see of an active mechanic (None for an unknown or inactive one): name,
    bio, years_experience, specialties, average_rating and review_count (published reviews),
    ranking_score (the Bayesian rating), rank, and rating_distribution ``{1: n, ..., 5: n}``."""
    mechanic = parse_uuid(mechanic_id, "Mechanic", Invalid)
    if not is_public(conn, mechanic):
        return None
    frame = profile(conn, mechanic_id=mechanic)
    row = frame.iloc[0]
    distribution = rating_distribution(conn, mechanic_id=mechanic)
    return {
        "mechanic_id": mechanic,
        "name": row["display_name"],
        "bio": row["bio"],
        "years_experience": None if pd.isna(row["years_experience"]) else int(row["years_experience"]),
        "specialties": list(row["specialties"]),
        "average_rating": round(float(row["avg_rating"]), 2),
        "review_count": int(row["total_reviews"]),
        "ranking_score": round(float(row["bayesian_rating"]), 4),
        "rank": int(row["rank"]),
        "rating_distribution": dict(zip(distribution["stars"].tolist(), distribution["reviews"].tolist())),
    }


def _cursor(created_at: dt.datetime, review_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{review_id}".encode()).decode()


def _after(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    problem = Invalid("The cursor is not one this list gave out; start again without it.")
    if not isinstance(cursor, str) or len(cursor) > 200:
        raise problem
    try:
        at, review_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        created_at = dt.datetime.fromisoformat(at)
        if created_at.tzinfo is None:
            raise ValueError
        return created_at, uuid.UUID(review_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise problem from None


def published_reviews_page(
    conn: Connection, mechanic_id, *, after: str | None = None, limit: int = 20
) -> tuple[list[dict], str | None]:
    """A mechanic's published reviews, newest first: up to ``limit`` (1 to ``REVIEWS_PAGE_MAX``)
    rows of id, rating, review_text, helpful_count, created_at, and the cursor of the next page
    (None on the last). ``after``: the cursor a previous page returned."""
    mechanic = parse_uuid(mechanic_id, "Mechanic", Invalid)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= REVIEWS_PAGE_MAX:
        raise Invalid(f"The page size must be a whole number from 1 to {REVIEWS_PAGE_MAX}.")
    r = mechanic_reviews
    query = (
        sa.select(r.c.id, r.c.rating, r.c.review_text, r.c.helpful_count, r.c.created_at)
        .where(r.c.mechanic_id == mechanic, r.c.status == "published")
        .order_by(r.c.created_at.desc(), r.c.id.desc())
        .limit(limit + 1)
    )
    if after is not None:
        created_at, review_id = _after(after)
        query = query.where(sa.tuple_(r.c.created_at, r.c.id) < sa.tuple_(created_at, review_id))
    rows = [dict(row) for row in conn.execute(query).mappings()]
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, _cursor(rows[-1]["created_at"], rows[-1]["id"])


def _responses(mechanic_id, period: Period) -> sa.Subquery:
    start, end = period.bounds()
    minutes = sa.cast(sa.extract("epoch", sessions.c.accepted_at - requests.c.created_at), sa.Double) / 60.0
    return (
        sa.select(
            sa.cast(sa.func.date_trunc("week", sa.func.timezone(period.tz, sessions.c.accepted_at)), sa.Date).label(
                "week"
            ),
            minutes.label("minutes"),
            (minutes <= m.c.response_sla_minutes).label("within_sla"),
        )
        .select_from(
            sessions.join(requests, requests.c.id == sessions.c.request_id).join(
                m, m.c.user_id == sessions.c.mechanic_id
            )
        )
        .where(sessions.c.mechanic_id == mechanic_id, sessions.c.accepted_at >= start, sessions.c.accepted_at < end)
        .subquery("responses")
    )


def _response_stats(responses: sa.Subquery) -> list:
    return [
        sa.func.count().label("sessions"),
        sa.func.percentile_cont(0.5).within_group(responses.c.minutes).label("median_minutes"),
        sa.func.avg(sa.case((responses.c.within_sla, 1.0), else_=0.0)).label("within_sla_share"),
    ]


def response_times(conn: Connection, *, mechanic_id, period: Period) -> pd.DataFrame:
    """Weekly response times of sessions accepted in the period: columns ``week`` (Monday,
    in the period's timezone), ``sessions``, ``median_minutes``, ``within_sla_share``."""
    responses = _responses(mechanic_id, period)
    query = (
        sa.select(responses.c.week, *_response_stats(responses)).group_by(responses.c.week).order_by(responses.c.week)
    )
    frame = pd.DataFrame(
        conn.execute(query).mappings().all(), columns=["week", "sessions", "median_minutes", "within_sla_share"]
    )
    return frame.astype({"sessions": "int64", "median_minutes": "float64", "within_sla_share": "float64"})


def response_summary(conn: Connection, *, mechanic_id, period: Period) -> pd.DataFrame:
    """One row over the whole period: ``sessions``, ``median_minutes``, ``within_sla_share``
    (NaN without accepted sessions)."""
    responses = _responses(mechanic_id, period)
    frame = pd.DataFrame(conn.execute(sa.select(*_response_stats(responses))).mappings().all())
    return frame.astype({"sessions": "int64", "median_minutes": "float64", "within_sla_share": "float64"})
