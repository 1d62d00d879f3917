"""The outbox: each due milestone enqueued once, batches claimed so that two
workers never send the same email, and Resend's answer recorded.

A row's life: ``pending`` -> ``sending`` -> ``sent`` or ``failed``, back to
``pending`` for a retry; ``skipped`` (with the reason) when it is enqueued or when
its batch is formed. The unique key (session, milestone, recipient) and
``INSERT ... ON CONFLICT DO NOTHING`` make enqueueing safe to run twice or in two
workers at once.

Batches and idempotency. A batch is sent as one Resend request whose idempotency
key (``pitwall-batch/<uuid>``) is stored in the rows' ``provider_message_id``
from the claim until Resend answers; then that column holds Resend's email id.
The key stays with the rows:
- a worker that dies between the request and the commit leaves its rows
  ``sending`` with an expired lease; the next run claims the same rows and
  re-sends the same emails with the same key, and Resend answers as the first
  time without sending again; nothing is lost and nothing is sent twice;
- a 5xx or network error may or may not have been processed: the same;
- a 429 was certainly not processed: the rows drop the key and may join any batch.
Claims lock rows with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; a batch is
claimed whole or not at all. The embedded DuckDB has one writer process, and
``jobs.emails.worker`` runs one job at a time in it.
"""

from __future__ import annotations

import collections
import datetime as dt
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.engine import Connection, Engine

from dashboard.audit import record_audit
from dashboard.auth import Actor, require_role
from dashboard.schema import EMAIL_MILESTONES, email_outbox, sessions
from jobs.emails.sender import Outcome
from jobs.emails.settings import EmailSettings
from queries.emails import CUSTOMER_MILESTONES, EVENT_TIME, due_select, facts_select

o = email_outbox
KEY_PREFIX = "pitwall-batch/"
BACKOFF_BASE = dt.timedelta(seconds=60)
BACKOFF_CAP = dt.timedelta(hours=1)
INSERT_CHUNK = 1000


class RetryRefused(ValueError):
    """The row cannot be retried; the message says why."""


def recipient(milestone: str, facts, settings: EmailSettings) -> str:
    """Who gets the email: the customer, the mechanic (nudge) or the support inbox ('' if unknown)."""
    address = {"mechanic_nudge": facts["mechanic_email"], "support_alert": settings.support_email}.get(
        milestone, facts["customer_email"])
    return (address or "").strip()


def skip_reason(milestone: str, facts, now: dt.datetime, settings: EmailSettings) -> str | None:
    """Why this email must not be sent now, or None to send it."""
    if not recipient(milestone, facts, settings):
        return ("no support address configured (PITWALL_SUPPORT_EMAIL)" if milestone == "support_alert"
                else "no email address")
    if milestone in CUSTOMER_MILESTONES and facts["opted_out"]:
        return "customer opted out of emails"
    if facts["status"] == "cancelled":
        return "session cancelled"
    if milestone == "session_starting":
        if facts["started_at"] is not None or facts["status"] in ("live", "completed"):
            return "late: the session had already started"
        if facts["scheduled_at"] <= now:
            return "late: the scheduled time had passed"
    if milestone == "mechanic_nudge" and not facts["nudge_due"]:
        return "resolved: the session no longer waits for its mechanic"
    if milestone == "support_alert" and facts["problem"] is None:
        return "resolved: the problem is no longer detected"
    event = facts[EVENT_TIME[milestone]]
    if event is not None and now - event > settings.max_age:
        return f"older than the maximum age of {settings.max_age.total_seconds() / 3600:g} h"
    return None


# --- enqueue ----------------------------------------------------------------------


def enqueue(conn: Connection, now: dt.datetime, settings: EmailSettings) -> collections.Counter:
    """Add every due milestone to the outbox once: ``pending``, or ``skipped`` with the reason.
    Returns how many rows were added per status."""
    added = collections.Counter()
    since = now - settings.lookback
    insert = pg.insert(o).on_conflict_do_nothing(index_elements=[o.c.session_id, o.c.milestone, o.c.recipient])
    for milestone in EMAIL_MILESTONES:
        rows = {"pending": [], "skipped": []}
        for facts in conn.execute(due_select(milestone, now, since)).mappings():
            reason = skip_reason(milestone, facts, now, settings)
            status = "skipped" if reason else "pending"
            rows[status].append({"session_id": facts["session_id"], "milestone": milestone,
                                 "recipient": recipient(milestone, facts, settings), "status": status,
                                 "skip_reason": reason, "next_attempt_at": now, "updated_at": now})
        for status, group in rows.items():
            for start in range(0, len(group), INSERT_CHUNK):
                chunk = insert.values(group[start:start + INSERT_CHUNK]).returning(o.c.id)
                added[status] += len(conn.execute(chunk).all())
    return added


# --- claim ------------------------------------------------------------------------


@dataclass
class Batch:
    """Claimed rows to send as one request under ``key``: ``rows`` (outbox rows) and the
    ``facts`` of their sessions by id; ``finished`` counts the rows the claim itself
    settled (skipped, or failed after too many attempts) by status."""

    key: str
    rows: list
    facts: dict
    finished: collections.Counter


def _locked(conn: Connection, query: sa.Select) -> sa.Select:
    return query.with_for_update(skip_locked=True) if conn.dialect.name == "postgresql" else query


def _due(now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.and_(o.c.status.in_(("pending", "sending")), o.c.next_attempt_at <= now)


def claim(conn: Connection, now: dt.datetime, settings: EmailSettings) -> Batch | None:
    """Claim the next batch (a batch waiting to be re-sent first, else fresh rows), mark it
    ``sending`` under a lease, and return it; None when nothing is due. Call in a transaction."""
    return _claim_resend(conn, now, settings) or _claim_fresh(conn, now, settings)


def _claim_resend(conn: Connection, now: dt.datetime, settings: EmailSettings) -> Batch | None:
    waiting = sa.and_(_due(now), o.c.provider_message_id.like(f"{KEY_PREFIX}%"))
    key = conn.execute(_locked(conn, sa.select(o.c.provider_message_id).where(waiting).limit(1))).scalar()
    if key is None:
        return None
    in_batch = sa.and_(waiting, o.c.provider_message_id == key)
    rows = conn.execute(_locked(conn, sa.select(o).where(in_batch).order_by(o.c.id))).all()
    if len(rows) != conn.execute(sa.select(sa.func.count()).where(in_batch)).scalar_one():
        return None  # another worker holds part of this batch
    attempts = max(row.attempts for row in rows)
    if attempts >= settings.max_attempts:
        error = rows[0].last_error or "no answer recorded: the worker stopped while sending"
        _set(conn, [r.id for r in rows], now, status="failed", provider_message_id=None,
             last_error=f"gave up after {attempts} attempts: {error}")
        return Batch(key, [], {}, collections.Counter(failed=len(rows)))
    _set(conn, [r.id for r in rows], now, status="sending", attempts=o.c.attempts + 1,
         next_attempt_at=now + settings.lease)
    return Batch(key, rows, _facts(conn, rows, now), collections.Counter())


def _claim_fresh(conn: Connection, now: dt.datetime, settings: EmailSettings) -> Batch | None:
    fresh = sa.and_(o.c.status == "pending", o.c.next_attempt_at <= now, o.c.provider_message_id.is_(None))
    rows = conn.execute(_locked(conn, sa.select(o).where(fresh).order_by(o.c.next_attempt_at)
                                .limit(settings.batch_size))).all()
    if not rows:
        return None
    facts = _facts(conn, rows, now)
    skipped = collections.defaultdict(list)
    to_send = []
    for row in rows:
        reason = ("session not found" if row.session_id not in facts
                  else skip_reason(row.milestone, facts[row.session_id], now, settings))
        if reason:
            skipped[reason].append(row.id)
        else:
            to_send.append(row)
    for reason, ids in skipped.items():
        _set(conn, ids, now, status="skipped", skip_reason=reason)
    key = f"{KEY_PREFIX}{uuid.uuid4()}"
    _set(conn, [r.id for r in to_send], now, status="sending", attempts=o.c.attempts + 1,
         next_attempt_at=now + settings.lease, provider_message_id=key)
    return Batch(key, to_send, facts, collections.Counter(skipped=sum(map(len, skipped.values()))))


def _facts(conn: Connection, rows: list, now: dt.datetime) -> dict:
    ids = sorted({row.session_id for row in rows})
    return {f["session_id"]: f for f in conn.execute(facts_select(now).where(sessions.c.id.in_(ids))).mappings()}


def _set(conn: Connection, ids: list, now: dt.datetime, **values) -> None:
    if ids:
        conn.execute(o.update().where(o.c.id.in_(ids)).values(updated_at=now, **values))


# --- record -----------------------------------------------------------------------


def backoff(attempts: int, retry_after: float | None) -> dt.timedelta:
    """Exponential backoff (1, 2, 4 ... minutes, at most an hour), never shorter than retry-after."""
    delay = min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
    return max(delay, dt.timedelta(seconds=retry_after or 0))


def record(conn: Connection, batch: Batch, outcome: Outcome, render_errors: dict, now: dt.datetime,
           settings: EmailSettings) -> collections.Counter:
    """Write Resend's answer for ``batch`` (rows that could not be rendered fail with their error).
    Only rows still ``sending`` under this batch's key are touched. Returns rows per new status
    (``pending``: to be retried)."""
    mine = sa.and_(o.c.status == "sending", o.c.provider_message_id == batch.key)
    done = collections.Counter()

    def update(ids: list, **values) -> None:
        if ids:
            conn.execute(o.update().where(mine, o.c.id.in_(ids)).values(updated_at=now, **values))
            done[values["status"]] += len(ids)

    for error, ids in _group(render_errors).items():
        update(ids, status="failed", last_error=f"could not render: {error}", provider_message_id=None)
    sent_rows = [row for row in batch.rows if row.id not in render_errors]
    if outcome.kind == "sent":
        refused = {sent_rows[i].id: message for i, message in outcome.errors.items()}
        for error, ids in _group(refused).items():
            update(ids, status="failed", last_error=f"rejected by Resend: {error}", provider_message_id=None)
        accepted = [(row, email_id) for row, email_id in zip(sent_rows, outcome.ids) if row.id not in refused]
        if accepted:
            conn.execute(
                o.update().where(mine, o.c.id == sa.bindparam("row_id")).values(
                    status="sent", sent_at=now, updated_at=now, provider_message_id=sa.bindparam("email_id"),
                    last_error=outcome.message or None),
                [{"row_id": row.id, "email_id": email_id} for row, email_id in accepted],
            )
            done["sent"] += len(accepted)
        return done
    ids = [row.id for row in sent_rows]
    attempts = max((row.attempts + 1 for row in sent_rows), default=0)  # the claim added one
    if outcome.kind == "failed" or attempts >= settings.max_attempts:
        prefix = "" if outcome.kind == "failed" else f"gave up after {attempts} attempts: "
        update(ids, status="failed", last_error=prefix + outcome.message, provider_message_id=None)
    else:
        update(ids, status="pending", last_error=outcome.message,
               next_attempt_at=now + backoff(attempts, outcome.retry_after),
               provider_message_id=None if outcome.rate_limited else batch.key)
    return done


def _group(errors: dict) -> dict[str, list]:
    grouped = collections.defaultdict(list)
    for row_id, error in errors.items():
        grouped[error].append(row_id)
    return grouped


# --- the Emails page's retry --------------------------------------------------------


def retry(engine: Engine, actor: Actor | None, outbox_id: uuid.UUID, now: dt.datetime) -> None:
    """Send a failed email again (admin only, audited): it becomes ``pending`` with fresh attempts
    and joins the job's next batch."""
    require_role(actor, "admin")
    with engine.begin() as conn:
        row = conn.execute(sa.select(o).where(o.c.id == outbox_id)).mappings().one_or_none()
        if row is None:
            raise RetryRefused(f"There is no email {outbox_id} in the outbox.")
        if row["status"] != "failed":
            raise RetryRefused(f"Only failed emails can be retried; this one is {row['status']}.")
        conn.execute(o.update().where(o.c.id == outbox_id).values(
            status="pending", attempts=0, next_attempt_at=now, provider_message_id=None, updated_at=now))
        record_audit(conn, actor, "email.retry", "email_outbox", outbox_id,
                     before={k: row[k] for k in ("status", "attempts", "last_error")},
                     after={"status": "pending", "attempts": 0})
