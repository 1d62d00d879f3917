"""The outbox: each due milestone enqueued once, batches claimed so that two
workers never send the same email, and Resend's answer recorded.

A row's life: ``pending`` -> ``sending`` -> ``sent`` or ``failed``, back to
``pending`` for a retry; ``skipped`` (with the reason) when it is enqueued or when
its batch is formed; ``uncertain`` when its batch may have reached Resend and can
no longer be re-sent safely (an admin decides on the Emails page). The unique key
(session, milestone, recipient) and ``INSERT ... ON CONFLICT DO NOTHING`` make
enqueueing safe to run twice or in two workers at once.

Batches and idempotency. A batch is sent as one Resend request whose idempotency
key (``pitwall-batch/<uuid>``) is stored in the rows' ``provider_message_id``
from the claim until Resend answers (then that column holds Resend's email id),
with the time of the claim in ``batch_started_at``. Every request under a key
lists its rows in outbox-id order, so a repeated request is the same request.
- A worker that dies between the request and the commit leaves its rows
  ``sending`` with an expired lease; a 5xx or network error may or may not have
  been processed. Either way the rows keep the key, and the next claim re-sends
  them under it: Resend answers as the first time without sending again.
- A re-send applies every rule again first. Rows the rules now hold back (opted
  out, cancelled, late, too old, out of attempts) are left out of the request;
  its answer says what became of them: a 200 means the first request was never
  processed (they are skipped or failed), a 409 ``invalid_idempotent_request``
  means it was (they were sent; the worker asks again with the first request's
  rows to get their ids back).
- A 429 was certainly not processed: a batch's first request drops the key and
  its rows may join any batch; a 429 costs no attempt.
- Resend remembers a key for 24 hours. A batch whose key is older than
  ``KEY_TRUSTED_FOR`` is never re-sent: its rows become ``uncertain``.
Attempts are counted per row: a row out of attempts fails alone, never its batch.
Claims lock rows with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; a batch is
claimed whole or not at all. The embedded DuckDB has one writer process, and
``dashboard.domain.emails.worker`` runs one job at a time in it.

Skip rules (``skip_reason``), applied when a row is enqueued and again whenever it
is claimed: no address; opted out (customer emails); cancelled; late (booking
confirmed, mechanic assigned and session starting once the session has started or
its time has passed; the nudge and the support alert more than an hour after the
scheduled time, or once resolved); older than the maximum age (every milestone).
"""

from __future__ import annotations

import collections
import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.engine import Connection, Engine

from dashboard.core.audit import record_audit
from dashboard.core.auth import Actor, require_current_role, require_role
from dashboard.core.db import locking
from dashboard.core.errors import ChangedMeanwhile, Conflict, Invalid, NotFound
from dashboard.core.schema import EMAIL_MILESTONES, email_outbox, sessions
from dashboard.domain.emails.due import (
    BEFORE_START,
    CUSTOMER_MILESTONES,
    EVENT_TIME,
    OPERATIONAL_WINDOW,
    due_select,
    facts_select,
)
from dashboard.domain.emails.failures import BY_CODE, classify
from dashboard.domain.emails.sender import Outcome
from dashboard.domain.emails.settings import EmailSettings

o = email_outbox
KEY_PREFIX = "pitwall-batch/"
IDEMPOTENCY_WINDOW = dt.timedelta(hours=24)  # how long Resend remembers an idempotency key
KEY_TRUSTED_FOR = IDEMPOTENCY_WINDOW - dt.timedelta(hours=1)  # margin for clock skew and a slow re-send
BACKOFF_BASE = dt.timedelta(seconds=60)
BACKOFF_CAP = dt.timedelta(hours=1)
INSERT_CHUNK = 1000


def recipient(milestone: str, facts, settings: EmailSettings) -> str:
    """Who gets the email: the customer, the mechanic (nudge) or the support inbox ('' if unknown)."""
    address = {"mechanic_nudge": facts["mechanic_email"], "support_alert": settings.support_email}.get(
        milestone, facts["customer_email"]
    )
    return (address or "").strip()


def skip_reason(milestone: str, facts, now: dt.datetime, settings: EmailSettings) -> str | None:
    """Why this email must not be sent now, or None to send it (see the module docstring)."""
    if not recipient(milestone, facts, settings):
        return (
            "no support address configured (PITWALL_SUPPORT_EMAIL)"
            if milestone == "support_alert"
            else "no email address"
        )
    if milestone in CUSTOMER_MILESTONES and facts["opted_out"]:
        return "customer opted out of emails"
    if facts["status"] == "cancelled":
        return "session cancelled"
    if milestone in BEFORE_START:
        if facts["started_at"] is not None or facts["status"] in ("live", "completed"):
            return "late: the session had already started"
        if facts["scheduled_at"] <= now:
            return "late: the scheduled time had passed"
    if milestone == "mechanic_nudge" and not facts["nudge_due"]:
        return "resolved: the session no longer waits for its mechanic"
    if milestone == "support_alert" and facts["problem"] is None:
        return "resolved: the problem is no longer detected"
    if milestone not in CUSTOMER_MILESTONES and now - facts["scheduled_at"] > OPERATIONAL_WINDOW:
        return f"late: more than {OPERATIONAL_WINDOW.total_seconds() / 3600:g} h after the scheduled time"
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
            rows[status].append(
                {
                    "session_id": facts["session_id"],
                    "milestone": milestone,
                    "recipient": recipient(milestone, facts, settings),
                    "status": status,
                    "skip_reason": reason,
                    "next_attempt_at": now,
                    "updated_at": now,
                }
            )
        for status, group in rows.items():
            for start in range(0, len(group), INSERT_CHUNK):
                chunk = insert.values(group[start : start + INSERT_CHUNK]).returning(o.c.id)
                added[status] += len(conn.execute(chunk).all())
    return added


# --- claim ------------------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """A row of a re-sent batch that the rules now hold back: ``status`` (skipped or failed)
    and ``reason`` become its record unless the answer shows that its first request was processed."""

    row: sa.Row
    status: str
    reason: str


@dataclass
class Batch:
    """Claimed rows to send as one request under ``key``: ``rows`` (outbox rows, in id order) and
    the ``facts`` of their sessions by id; ``held`` the rows a re-send leaves out; ``resend``
    whether the key was used before; ``finished`` counts the rows the claim itself settled."""

    key: str
    rows: list
    facts: dict
    finished: collections.Counter
    held: list[Held] = field(default_factory=list)
    resend: bool = False

    @property
    def first_rows(self) -> list:
        """The rows of the key's first request, in its order."""
        return sorted([*self.rows, *(h.row for h in self.held)], key=lambda row: row.id)


def _due(now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.and_(o.c.status.in_(("pending", "sending")), o.c.next_attempt_at <= now)


def claim(conn: Connection, now: dt.datetime, settings: EmailSettings) -> Batch | None:
    """Claim the next batch (a batch waiting to be re-sent first, else fresh rows), mark it
    ``sending`` under a lease, and return it; None when nothing is due. Call in a transaction."""
    return _claim_resend(conn, now, settings) or _claim_fresh(conn, now, settings)


def _claim_resend(conn: Connection, now: dt.datetime, settings: EmailSettings) -> Batch | None:
    waiting = sa.and_(_due(now), o.c.provider_message_id.like(f"{KEY_PREFIX}%"))
    first = sa.select(o.c.provider_message_id).where(waiting).limit(1)
    key = conn.execute(locking(conn, first, skip_locked=True)).scalar()
    if key is None:
        return None
    in_batch = sa.and_(waiting, o.c.provider_message_id == key)
    rows = conn.execute(locking(conn, sa.select(o).where(in_batch).order_by(o.c.id), skip_locked=True)).all()
    if len(rows) != conn.execute(sa.select(sa.func.count()).where(in_batch)).scalar_one():
        return None  # another worker holds part of this batch
    started = min(row.batch_started_at or row.created_at for row in rows)
    if now - started > KEY_TRUSTED_FOR:
        _set(
            conn,
            [r.id for r in rows],
            now,
            status="uncertain",
            last_error=(
                f"Its batch may have reached Resend (first sent {started:%Y-%m-%d %H:%M} UTC, no answer recorded), "
                "and Resend forgets the batch's idempotency key after "
                f"{IDEMPOTENCY_WINDOW.total_seconds() / 3600:g} h: "
                "sending it again could deliver it twice. Check Resend's log, then mark it as sent or send it again."
            ),
        )
        return Batch(key, [], {}, collections.Counter(uncertain=len(rows)))
    facts = _facts(conn, rows, now)
    to_send, held = [], []
    for row in rows:
        reason = _claim_skip_reason(row, facts, now, settings)
        if reason:
            held.append(Held(row, "skipped", reason))
        elif row.attempts >= settings.max_attempts:
            error = row.last_error or "no answer recorded: the worker stopped while sending"
            held.append(Held(row, "failed", f"gave up after {row.attempts} attempts: {error}"))
        else:
            to_send.append(row)
    if not to_send:  # nothing left to ask Resend with: the rules decide
        finished = _settle_held(conn, held, now)
        return Batch(key, [], facts, finished)
    _set(
        conn,
        [r.id for r in to_send],
        now,
        status="sending",
        attempts=o.c.attempts + 1,
        next_attempt_at=now + settings.lease,
    )
    _set(conn, [h.row.id for h in held], now, status="sending", next_attempt_at=now + settings.lease)
    return Batch(key, to_send, facts, collections.Counter(), held, resend=True)


def _claim_fresh(conn: Connection, now: dt.datetime, settings: EmailSettings) -> Batch | None:
    fresh = sa.and_(o.c.status == "pending", o.c.next_attempt_at <= now, o.c.provider_message_id.is_(None))
    rows = conn.execute(
        locking(
            conn, sa.select(o).where(fresh).order_by(o.c.next_attempt_at).limit(settings.batch_size), skip_locked=True
        )
    ).all()
    if not rows:
        return None
    facts = _facts(conn, rows, now)
    skipped = collections.defaultdict(list)
    to_send = []
    for row in sorted(rows, key=lambda r: r.id):
        reason = _claim_skip_reason(row, facts, now, settings)
        if reason:
            skipped[reason].append(row.id)
        else:
            to_send.append(row)
    for reason, ids in skipped.items():
        _set(conn, ids, now, status="skipped", skip_reason=reason)
    key = f"{KEY_PREFIX}{uuid.uuid4()}"
    _set(
        conn,
        [r.id for r in to_send],
        now,
        status="sending",
        attempts=o.c.attempts + 1,
        next_attempt_at=now + settings.lease,
        provider_message_id=key,
        batch_started_at=now,
    )
    return Batch(key, to_send, facts, collections.Counter(skipped=sum(map(len, skipped.values()))))


def _claim_skip_reason(row, facts: dict, now: dt.datetime, settings: EmailSettings) -> str | None:
    if row.session_id not in facts:
        return "session not found"
    return skip_reason(row.milestone, facts[row.session_id], now, settings)


def _settle_held(conn: Connection, held: list[Held], now: dt.datetime) -> collections.Counter:
    """Record the held rows as what the rules made them (skipped or failed), out of their batch."""
    for item in held:
        values = {"status": "skipped", "skip_reason": item.reason} if item.status == "skipped" else _failed(item.reason)
        _set(conn, [item.row.id], now, provider_message_id=None, **values)
    return collections.Counter(item.status for item in held)


def _failed(error: str) -> dict:
    """The values of a row that failed with ``error``: its cause is read from the error once, here."""
    return {"status": "failed", "last_error": error, "failure_cause": classify(error).code}


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


def record(
    conn: Connection, batch: Batch, outcome: Outcome, render_errors: dict, now: dt.datetime, settings: EmailSettings
) -> collections.Counter:
    """Write Resend's answer for ``batch`` (rows that could not be rendered fail with their error).
    Only rows still ``sending`` under this batch's key are touched. Returns rows per new status
    (``pending``: to be retried)."""
    mine = sa.and_(o.c.status == "sending", o.c.provider_message_id == batch.key)
    done = collections.Counter()

    def update(ids: list, **values) -> None:
        if ids:
            conn.execute(o.update().where(mine, o.c.id.in_(ids)).values(updated_at=now, **values))
            done[values["status"]] += len(ids)

    if outcome.kind == "sent" and outcome.earlier:
        sent_rows = batch.first_rows  # the key's first request was processed: it held these rows
    else:
        for error, ids in _group(render_errors).items():
            update(ids, **_failed(f"could not render: {error}"), provider_message_id=None)
        sent_rows = [row for row in batch.rows if row.id not in render_errors]
        if outcome.kind == "retry":
            _record_retry(conn, mine, batch, sent_rows, outcome, now, settings, update, done)
            return done
        done.update(_settle_held(conn, batch.held, now))
        if outcome.kind == "failed":
            update([row.id for row in sent_rows], **_failed(outcome.message), provider_message_id=None)
            return done
    refused = {sent_rows[i].id: message for i, message in outcome.errors.items()}
    for error, refused_ids in _group(refused).items():
        update(refused_ids, **_failed(f"rejected by Resend: {error}"), provider_message_id=None)
    ids = outcome.ids or [None] * len(sent_rows)
    accepted = [(row, email_id) for row, email_id in zip(sent_rows, ids) if row.id not in refused]
    _record_sent(conn, mine, accepted, outcome.message, now, done)
    return done


def _record_retry(
    conn: Connection,
    mine,
    batch: Batch,
    sent_rows: list,
    outcome: Outcome,
    now: dt.datetime,
    settings: EmailSettings,
    update,
    done: collections.Counter,
) -> None:
    """Not answered (5xx, network) or rate-limited (429): back to ``pending`` after a backoff,
    or ``failed`` when every row's attempts are used up."""
    ids = [row.id for row in sent_rows]
    tried = {row.id: row.attempts + (0 if outcome.rate_limited else 1) for row in sent_rows}
    if not outcome.rate_limited and all(n >= settings.max_attempts for n in tried.values()):
        update(
            ids,
            **_failed(f"gave up after {max(tried.values(), default=0)} attempts: {outcome.message}"),
            provider_message_id=None,
        )
        done.update(_settle_held(conn, batch.held, now))
        return
    keep_key = batch.resend or not outcome.rate_limited  # a 429 on a first request: never processed
    next_at = now + backoff(max(tried.values(), default=1), outcome.retry_after)
    update(
        ids,
        status="pending",
        last_error=outcome.message,
        next_attempt_at=next_at,
        attempts=o.c.attempts - (1 if outcome.rate_limited else 0),
        **({} if keep_key else {"provider_message_id": None, "batch_started_at": None}),
    )
    held_ids = [h.row.id for h in batch.held]
    if held_ids:  # still undecided: they wait with their batch, due at the same time
        conn.execute(
            o.update()
            .where(mine, o.c.id.in_(held_ids))
            .values(status="pending", updated_at=now, next_attempt_at=next_at)
        )


def _record_sent(
    conn: Connection, mine, accepted: list, message: str, now: dt.datetime, done: collections.Counter
) -> None:
    """Mark the rows of ``accepted`` (row, Resend's id or None) sent."""
    if not accepted:
        return
    conn.execute(
        o.update()
        .where(mine, o.c.id == sa.bindparam("row_id"))
        .values(
            status="sent",
            sent_at=now,
            updated_at=now,
            provider_message_id=sa.bindparam("email_id"),
            last_error=message or None,
        ),
        [{"row_id": row.id, "email_id": email_id} for row, email_id in accepted],
    )
    done["sent"] += len(accepted)


def _group(errors: dict) -> dict[str, list]:
    grouped = collections.defaultdict(list)
    for row_id, error in errors.items():
        grouped[error].append(row_id)
    return grouped


# --- the Emails page's decisions ------------------------------------------------------

DECISIONS = {
    # decision: (the status it applies to, audit action, the row's new values)
    "retry": ("failed", "email.retry", {"status": "pending", "attempts": 0}),
    "send_again": ("uncertain", "email.send_again", {"status": "pending", "attempts": 0}),
    "mark_sent": ("uncertain", "email.mark_sent", {"status": "sent"}),
}


def decide(engine: Engine, actor: Actor | None, outbox_id: uuid.UUID, decision: str, now: dt.datetime) -> None:
    """An admin's decision on one email (admin only, audited): ``retry`` a failed email or
    ``send_again`` an uncertain one (``pending`` with fresh attempts: the job's next batch applies
    the rules again and sends it under a new key), or ``mark_sent`` an uncertain one. A retry of
    an email whose failure a retry cannot cure (``failures.classify``: a suppressed or invalid
    address) is refused."""
    require_role(actor, "admin")
    if decision not in DECISIONS:
        raise Invalid(f"Unknown decision {decision!r}.")
    try:
        outbox_id = uuid.UUID(str(outbox_id))
    except ValueError:
        raise Invalid(f"{str(outbox_id)[:40]!r} is not an email id.") from None
    with engine.begin() as conn:
        actor = require_current_role(conn, actor, "admin")
        _decide(conn, actor, outbox_id, decision, now)


def retry_cause(engine: Engine, actor: Actor | None, cause: str, *, seen: tuple[int, Any], now: dt.datetime) -> int:
    """Retry every failed email of ``cause`` at once (a cause offered in bulk: a Resend outage,
    a rate limit), each through ``decide``'s rule and audited as its own retry, all or none.
    ``seen``: (how many, the latest ``updated_at``) the admin saw in the group; if the group is no
    longer so (the job or another admin changed it), ChangedMeanwhile and nothing changes.
    Returns how many were queued again."""
    require_role(actor, "admin")
    group = BY_CODE.get(cause) if isinstance(cause, str) else None
    if group is None:
        raise Invalid(f"Unknown cause of failure {str(cause)[:40]!r}.")
    if not group.bulk:
        raise Invalid(f"{group.label}: these emails are retried one by one, after a look at each, not all at once.")
    if not (isinstance(seen, tuple) and len(seen) == 2 and isinstance(seen[0], int) and not isinstance(seen[0], bool)):
        raise Invalid("Say how many emails of the group you saw, and the latest change among them.")
    with engine.begin() as conn:
        actor = require_current_role(conn, actor, "admin")
        in_group = sa.and_(o.c.status == "failed", o.c.failure_cause == group.code)
        rows = conn.execute(locking(conn, sa.select(o.c.id, o.c.updated_at).where(in_group).order_by(o.c.id))).all()
        latest = max((row.updated_at for row in rows if row.updated_at is not None), default=None)
        if (len(rows), latest) != seen or not rows:
            raise ChangedMeanwhile(
                f"The group “{group.label}” changed meanwhile (now {len(rows):,} emails, you saw {seen[0]:,}): "
                "nothing was retried. Look at it again, then retry."
            )
        for row in rows:
            _decide(conn, actor, row.id, "retry", now)
    return len(rows)


def _decide(conn: Connection, actor: Actor, outbox_id: uuid.UUID, decision: str, now: dt.datetime) -> None:
    """``decide``'s rule and write in the caller's transaction (the role already checked)."""
    status, action, values = DECISIONS[decision]
    row = conn.execute(sa.select(o).where(o.c.id == outbox_id)).mappings().one_or_none()
    if row is None:
        raise NotFound(f"There is no email {outbox_id} in the outbox.")
    if row["status"] != status:
        raise Conflict(
            f"Only {status} emails can be {'retried' if decision == 'retry' else 'decided on'}; "
            f"this one is {row['status']}."
        )
    if decision == "retry" and not classify(row["last_error"]).retry:
        cause = classify(row["last_error"])
        raise Conflict(f"{cause.label}: {cause.sentence}")
    change = {**values, "next_attempt_at": now, "provider_message_id": None, "batch_started_at": None}
    if decision == "mark_sent":
        change = {
            **values,
            "sent_at": row["batch_started_at"] or now,
            "provider_message_id": None,
            "last_error": "Marked as sent by an admin after checking Resend's log.",
        }
    changed = conn.execute(
        o.update().where(o.c.id == outbox_id, o.c.status == status).values(updated_at=now, **change)
    ).rowcount
    if changed != 1:  # the job or another admin changed it meanwhile
        raise ChangedMeanwhile("This email changed meanwhile: reload the page and decide again.")
    record_audit(
        conn,
        actor,
        action,
        "email_outbox",
        outbox_id,
        before={k: row[k] for k in ("status", "attempts", "last_error")},
        after=dict(values),
    )
