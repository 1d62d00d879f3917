"""The Emails page's views of the outbox: rows by period, milestone and status (with who
each email is for), counts per day, the failures grouped by cause, the rows waiting for an
admin's decision, and whether a run has anything to do. The due rules are the domain's
(``dashboard.domain.emails.due``), the causes of failure too (``dashboard.domain.emails.failures``).

Who an email is for: the session's customer for the customer milestones, its mechanic for
the nudge, the support inbox for the alert (``recipient_kind``), with their name and id when
the address is still theirs (``recipient_name``, ``recipient_id``)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.core.period import Period
from dashboard.core.schema import EMAIL_MILESTONES, email_buckets, email_outbox, mechanics, profiles, sessions, users
from dashboard.domain import overview as rollups
from dashboard.domain.emails.due import CUSTOMER_MILESTONES, due_ids

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
RECIPIENT_COLUMNS = ("recipient_kind", "recipient_id", "recipient_name")
o = email_outbox


def _recipient(query: sa.Select) -> sa.Select:
    """``query`` over the outbox with ``RECIPIENT_COLUMNS``: who the email is for."""
    customer_user, mechanic_user = users.alias("customer_user"), users.alias("mechanic_user")
    kind = sa.case(
        (o.c.milestone.in_(CUSTOMER_MILESTONES), "customer"),
        (o.c.milestone == "mechanic_nudge", "mechanic"),
        else_="support",
    )
    is_customer = o.c.milestone.in_(CUSTOMER_MILESTONES) & (customer_user.c.email == o.c.recipient)
    is_mechanic = (o.c.milestone == "mechanic_nudge") & (mechanic_user.c.email == o.c.recipient)
    return (
        query.add_columns(
            kind.label("recipient_kind"),
            sa.case((is_customer, sessions.c.customer_id), (is_mechanic, sessions.c.mechanic_id)).label("recipient_id"),
            sa.case(
                (is_customer, sa.func.coalesce(profiles.c.full_name, customer_user.c.email)),
                (is_mechanic, mechanics.c.display_name),
            ).label("recipient_name"),
        )
        .select_from(o)
        .outerjoin(sessions, sessions.c.id == o.c.session_id)
        .outerjoin(customer_user, customer_user.c.id == sessions.c.customer_id)
        .outerjoin(profiles, profiles.c.id == sessions.c.customer_id)
        .outerjoin(mechanic_user, mechanic_user.c.id == sessions.c.mechanic_id)
        .outerjoin(mechanics, mechanics.c.user_id == sessions.c.mechanic_id)
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
    (an empty filter means all); columns OUTBOX_COLUMNS and RECIPIENT_COLUMNS."""
    chosen = (
        sa.select(o.c.id)
        .where(*_outbox_filter(period, milestones, statuses))
        .order_by(o.c.created_at.desc(), o.c.id)
        .limit(limit)
        .subquery("chosen")
    )
    query = (
        _recipient(sa.select(*[o.c[name] for name in OUTBOX_COLUMNS]))
        .join(chosen, chosen.c.id == o.c.id)
        .order_by(o.c.created_at.desc(), o.c.id)
    )
    columns = [*OUTBOX_COLUMNS, *RECIPIENT_COLUMNS]
    return _utc(
        pd.DataFrame(conn.execute(query).mappings().all(), columns=columns),
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
    "cause",
    *RECIPIENT_COLUMNS,
]


def awaiting_decision(
    conn: Connection, *, status: str = "failed", cause: str | None = None, limit: int = 200
) -> pd.DataFrame:
    """The newest ``limit`` rows (of any date) of ``status`` (failed or uncertain), of one
    ``cause`` of failure if given, with their last error and its cause, newest change first;
    columns DECISION_COLUMNS."""
    if status not in DECISION_STATUSES:
        raise ValueError(f"status must be one of {', '.join(DECISION_STATUSES)}, got {status!r}")
    where = [o.c.status == status] + ([] if cause is None else [o.c.failure_cause == cause])
    chosen = (
        sa.select(o.c.id)
        .where(*where)
        .order_by(o.c.updated_at.desc().nulls_last(), o.c.id)
        .limit(limit)
        .subquery("chosen")
    )
    query = (
        _recipient(sa.select(*[o.c[name] for name in DECISION_COLUMNS[:8]], o.c.failure_cause.label("cause")))
        .join(chosen, chosen.c.id == o.c.id)
        .order_by(o.c.updated_at.desc().nulls_last(), o.c.id)
    )
    return _utc(
        pd.DataFrame(conn.execute(query).mappings().all(), columns=DECISION_COLUMNS), "updated_at", "batch_started_at"
    )


def failure_groups(conn: Connection) -> pd.DataFrame:
    """The failed emails (of any date) per cause (``dashboard.domain.emails.failures``), most
    first: ``cause``, ``emails``, ``latest_at`` (the latest change among them: what a bulk retry
    checks it still sees) and ``example`` (the error of the latest of them). Counted from the
    index of the failed rows by cause; only the example is read from the table."""
    groups = (
        sa.select(
            o.c.failure_cause.label("cause"),
            sa.func.count().label("emails"),
            sa.func.max(o.c.updated_at).label("latest_at"),
        )
        .where(o.c.status == "failed")
        .group_by(o.c.failure_cause)
        .subquery("groups")
    )
    latest = o.alias("latest")
    example = (
        sa.select(latest.c.last_error)
        .where(latest.c.status == "failed", latest.c.failure_cause == groups.c.cause)
        .order_by(latest.c.updated_at.desc().nulls_last(), latest.c.id)
        .limit(1)
        .scalar_subquery()
    )
    query = sa.select(groups, example.label("example")).order_by(groups.c.emails.desc(), groups.c.cause)
    frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=["cause", "emails", "latest_at", "example"])
    return frame.astype({"emails": "int64"})


def job_state(conn: Connection, *, now: dt.datetime, lookback: dt.timedelta) -> pd.DataFrame:
    """One row: ``due`` (outbox rows a run would send now: waiting and due, or a batch to re-send),
    ``in_flight`` (rows a worker is sending under a lease that has not run out), ``new`` (1 if a
    milestone of the last ``lookback`` is due and not queued yet, else 0: a run would queue it)."""
    waiting = o.c.status.in_(("pending", "sending"))
    # The first due milestone answers: the nudge and the alert look back an hour only, so they are asked first.
    operational_first = sorted(EMAIL_MILESTONES, key=lambda m: m in CUSTOMER_MILESTONES)
    new = sa.or_(*[due_ids(m, now, now - lookback).exists() for m in operational_first])
    query = sa.select(
        sa.func.count().filter(waiting & (o.c.next_attempt_at <= now)).label("due"),
        sa.func.count().filter((o.c.status == "sending") & (o.c.next_attempt_at > now)).label("in_flight"),
        sa.case((new, 1), else_=0).label("new"),
    ).where(waiting)
    return pd.DataFrame(conn.execute(query).mappings().all(), columns=["due", "in_flight", "new"]).astype("int64")


def _utc(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Timestamp columns as UTC datetimes, also when every value is missing; a missing name is None."""
    names = frame["recipient_name"].astype(object).where(frame["recipient_name"].notna(), None)
    return frame.assign(recipient_name=names, **{column: pd.to_datetime(frame[column], utc=True) for column in columns})
