"""The Emails page's views of the outbox: rows by period, milestone and status, counts per
day, and the rows waiting for an admin's decision. The due rules are the domain's
(``dashboard.domain.emails.due``)."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.core.period import Period
from dashboard.core.schema import email_buckets, email_outbox
from dashboard.domain import overview as rollups

OUTBOX_LIMIT = 500
OUTBOX_COLUMNS = (
    "created_at",
    "milestone",
    "status",
    "recipient",
    "attempts",
    "next_attempt_at",
    "sent_at",
    "skip_reason",
    "last_error",
    "session_id",
    "id",
)


def _outbox_filter(period: Period, milestones: tuple[str, ...], statuses: tuple[str, ...]) -> list:
    start, end = period.bounds()
    where = [email_outbox.c.created_at >= start, email_outbox.c.created_at < end]
    if milestones:
        where.append(email_outbox.c.milestone.in_(milestones))
    if statuses:
        where.append(email_outbox.c.status.in_(statuses))
    return where


def outbox(
    conn: Connection,
    *,
    period: Period,
    milestones: tuple[str, ...] = (),
    statuses: tuple[str, ...] = (),
    limit: int = OUTBOX_LIMIT,
) -> pd.DataFrame:
    """The newest ``limit`` outbox rows created in the period, filtered by milestone and status
    (an empty filter means all); columns OUTBOX_COLUMNS."""
    query = (
        sa.select(*[email_outbox.c[name] for name in OUTBOX_COLUMNS])
        .where(*_outbox_filter(period, milestones, statuses))
        .order_by(email_outbox.c.created_at.desc(), email_outbox.c.id)
        .limit(limit)
    )
    return _utc(
        pd.DataFrame(conn.execute(query).mappings().all(), columns=list(OUTBOX_COLUMNS)),
        "created_at",
        "next_attempt_at",
        "sent_at",
    )


def status_counts_per_day(conn: Connection, *, period: Period, milestones: tuple[str, ...] = ()) -> pd.DataFrame:
    """Columns ``day`` (local date in the period's timezone), ``status`` and ``emails``:
    outbox rows created per day and status, only the (day, status) pairs that occur.
    Read from the 15-minute roll-up where it is exact (``dashboard.domain.overview``)."""
    parts = rollups.windows_rows(
        conn, [rollups.EMAIL_SOURCE], email_buckets, ["emails"], [rollups.by_local_day(period)]
    )
    where = [parts.c.milestone.in_(milestones)] if milestones else []
    query = (
        sa.select(parts.c.day, parts.c.status, sa.func.sum(parts.c.emails).label("emails"))
        .where(*where)
        .group_by(parts.c.day, parts.c.status)
        .order_by(parts.c.day, parts.c.status)
    )
    frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=["day", "status", "emails"])
    return frame.astype({"emails": "int64"})


DECISION_STATUSES = ("failed", "uncertain")  # the rows an admin acts on (Retry; Mark as sent / Send again)
DECISION_COLUMNS = [
    "id",
    "updated_at",
    "milestone",
    "recipient",
    "attempts",
    "last_error",
    "batch_started_at",
    "session_id",
]


def awaiting_decision(conn: Connection, *, status: str = "failed", limit: int = 200) -> pd.DataFrame:
    """The newest ``limit`` rows (of any date) of ``status`` (failed or uncertain) with their
    last error, newest change first; columns DECISION_COLUMNS."""
    if status not in DECISION_STATUSES:
        raise ValueError(f"status must be one of {', '.join(DECISION_STATUSES)}, got {status!r}")
    query = (
        sa.select(*[email_outbox.c[name] for name in DECISION_COLUMNS])
        .where(email_outbox.c.status == status)
        .order_by(email_outbox.c.updated_at.desc().nulls_last(), email_outbox.c.id)
        .limit(limit)
    )
    return _utc(
        pd.DataFrame(conn.execute(query).mappings().all(), columns=DECISION_COLUMNS), "updated_at", "batch_started_at"
    )


def _utc(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Timestamp columns as UTC datetimes, also when every value is missing."""
    return frame.assign(**{column: pd.to_datetime(frame[column], utc=True) for column in columns})
