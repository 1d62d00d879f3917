"""Reviews: the moderation queue and the recent reviews of a customer or a mechanic.

Every row carries the review, its flags (a list, empty when none), and who
wrote it about whom. Filters are whitelisted: statuses from
``REVIEW_STATUSES``, flags from ``REVIEW_FLAGS``, ratings 1..5.

The waiting queue, its filters and its flag counts are read from the partial index
``ix_mechanic_reviews_pending_queue`` alone. The published reviews of a period (or of all
time) are counted as Overview counts "reviews published": from its roll-up where it is
exact (``dashboard.domain.overview``), so the two figures are one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.core.period import Period
from dashboard.core.schema import (
    REVIEW_FLAGS,
    REVIEW_STATUSES,
    kpi_buckets,
    mechanic_reviews,
    mechanics,
    profiles,
    users,
)
from dashboard.domain import overview as rollups

QUEUE_LIMIT = 200
MAX_OFFSET = 10_000_000  # far beyond any backlog; a bigger one is a bad link
REVIEW_COLUMNS = (
    "id",
    "created_at",
    "status",
    "rating",
    "review_text",
    "flags",
    "hidden_reason",
    "helpful_count",
    "moderated_by",
    "moderated_at",
    "session_id",
    "mechanic_id",
    "mechanic_name",
    "customer_id",
    "customer_name",
    "customer_email",
)

TEXT_COLUMNS = ("review_text", "hidden_reason", "moderated_by", "mechanic_name", "customer_name", "customer_email")


def _checked(values: Sequence, allowed: Sequence, what: str) -> list:
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(f"unknown {what}: {', '.join(map(str, unknown))}")
    return list(values)


def _reviews_select(*extra: sa.ColumnElement) -> sa.Select:
    r = mechanic_reviews
    return sa.select(
        r.c.id,
        r.c.created_at,
        r.c.status,
        r.c.rating,
        r.c.review_text,
        r.c.flags,
        r.c.hidden_reason,
        r.c.helpful_count,
        r.c.moderated_by,
        r.c.moderated_at,
        r.c.session_id,
        r.c.mechanic_id,
        mechanics.c.display_name.label("mechanic_name"),
        r.c.customer_id,
        profiles.c.full_name.label("customer_name"),
        users.c.email.label("customer_email"),
        *extra,
    ).select_from(
        r.outerjoin(mechanics, mechanics.c.user_id == r.c.mechanic_id)
        .outerjoin(users, users.c.id == r.c.customer_id)
        .outerjoin(profiles, profiles.c.id == r.c.customer_id)
    )


def _frame(conn: Connection, query: sa.Select, columns: Sequence[str]) -> pd.DataFrame:
    """The rows as a frame: missing text is None (not NaN), flags a list (empty when none)."""
    frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=list(columns))
    for column in TEXT_COLUMNS:
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    frame["flags"] = [list(f) if f is not None else [] for f in frame["flags"]]
    return frame


def _queue_where(
    *,
    status: str = "pending",
    flags: Sequence[str] = (),
    ratings: Sequence[int] = (),
    mechanic_id=None,
    period: Period | None = None,
) -> list[sa.ColumnElement]:
    """The queue's filters: reviews in ``status``; with any of ``flags``; with any of
    ``ratings``; of ``mechanic_id``; written within ``period``."""
    _checked([status], REVIEW_STATUSES, "status")
    r = mechanic_reviews
    where = [r.c.status == status]
    if flags:
        where.append(r.c.flags.overlap(_checked(flags, REVIEW_FLAGS, "flag")))
    if ratings:
        where.append(r.c.rating.in_(_checked(ratings, range(1, 6), "rating")))
    if mechanic_id is not None:
        where.append(r.c.mechanic_id == mechanic_id)
    if period is not None:
        start, end = period.bounds()
        where += [r.c.created_at >= start, r.c.created_at < end]
    return where


def moderation_queue(
    conn: Connection, *, oldest_first: bool = True, limit: int = QUEUE_LIMIT, offset: int = 0, **filters
) -> pd.DataFrame:
    """One page of the reviews that match ``filters`` (``status``, default pending; ``flags``:
    any of these; ``ratings``: any of these; ``mechanic_id``; ``period``: written within it),
    oldest first (or newest first), at most ``limit`` after skipping ``offset``;
    ``REVIEW_COLUMNS`` plus ``matching`` (how many match the filters in all, as ``queue_size``).
    """
    if not 0 <= offset <= MAX_OFFSET or not 0 < limit <= QUEUE_LIMIT:
        raise ValueError(f"offset 0..{MAX_OFFSET:,} and limit 1..{QUEUE_LIMIT}, got {offset!r} and {limit!r}")
    where = _queue_where(**filters)
    r = mechanic_reviews
    # The page's ids first, then only those rows joined to names.
    order = (r.c.created_at, r.c.id) if oldest_first else (r.c.created_at.desc(), r.c.id.desc())
    page = sa.select(r.c.id).where(*where).order_by(*order).limit(limit).offset(offset)
    frame = _frame(conn, _reviews_select().where(r.c.id.in_(page)).order_by(*order), REVIEW_COLUMNS)
    return frame.assign(matching=_size(conn, **filters)[0])


def _size(conn: Connection, **filters) -> tuple[int, dt.datetime | None]:
    """How many reviews match ``filters`` (``_queue_where``) and the oldest one's created_at.
    Published reviews filtered by nothing but the period are Overview's "reviews published"
    between the first and the last of them."""
    r = mechanic_reviews
    where = _queue_where(**filters)
    by_period_only = not (filters.get("flags") or filters.get("ratings") or filters.get("mechanic_id") is not None)
    if filters.get("status") != "published" or not by_period_only:
        count, oldest = conn.execute(sa.select(sa.func.count(), sa.func.min(r.c.created_at)).where(*where)).one()
        return int(count), oldest
    oldest, newest = conn.execute(
        sa.select(sa.func.min(r.c.created_at), sa.func.max(r.c.created_at)).where(*where)
    ).one()
    if oldest is None:
        return 0, None
    window = rollups.Window(oldest, newest + dt.timedelta(microseconds=1), rollups.labelled("period"))
    parts = rollups.windows_rows(conn, [rollups.REVIEWS_SOURCE], kpi_buckets, ["reviews_published"], [window])
    return int(conn.execute(sa.select(sa.func.sum(parts.c.reviews_published))).scalar_one()), oldest


def queue_size(conn: Connection, **filters) -> pd.DataFrame:
    """How many reviews ``moderation_queue`` pages over with these ``filters`` (one row:
    ``reviews``) and, of those, the oldest one's ``created_at`` (None when there are none)."""
    count, oldest = _size(conn, **filters)
    return pd.DataFrame({"reviews": [count], "oldest": [oldest]})


def queue_flag_counts(conn: Connection) -> pd.DataFrame:
    """Pending reviews per flag: columns ``flag`` (every one of ``REVIEW_FLAGS``) and ``reviews``."""
    flag = sa.func.unnest(mechanic_reviews.c.flags).label("flag")
    flagged = sa.select(flag).where(mechanic_reviews.c.status == "pending").subquery("flagged")
    counts = dict(conn.execute(sa.select(flagged.c.flag, sa.func.count()).group_by(flagged.c.flag)).all())
    return pd.DataFrame({"flag": list(REVIEW_FLAGS), "reviews": [counts.get(f, 0) for f in REVIEW_FLAGS]})


def recent_reviews(
    conn: Connection,
    *,
    mechanic_id=None,
    customer_id=None,
    statuses: Sequence[str] = REVIEW_STATUSES,
    limit: int = 10,
) -> pd.DataFrame:
    """The newest reviews of a mechanic and/or by a customer in ``statuses``; ``REVIEW_COLUMNS``."""
    if mechanic_id is None and customer_id is None:
        raise ValueError("give a mechanic_id or a customer_id")
    r = mechanic_reviews
    query = _reviews_select().where(r.c.status.in_(_checked(statuses, REVIEW_STATUSES, "status")))
    if mechanic_id is not None:
        query = query.where(r.c.mechanic_id == mechanic_id)
    if customer_id is not None:
        query = query.where(r.c.customer_id == customer_id)
    return _frame(conn, query.order_by(r.c.created_at.desc(), r.c.id).limit(limit), REVIEW_COLUMNS)
