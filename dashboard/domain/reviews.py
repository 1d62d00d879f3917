"""Reviews: intake rules, automatic flags, moderation, rating aggregates, helpful votes.

Intake (``submit_review``): a review is for a completed session, by that
session's customer, one per session, with an integer rating 1..5 and optional
text of at most ``REVIEW_TEXT_MAX`` characters. Each violation raises
``ReviewError`` (``NotFound`` for an unknown session) with a specific message and writes nothing.

Flags (``REVIEW_FLAGS`` in ``dashboard.core.schema``), stored with the review:

- ``personal_data``: an email address or a phone number (9 to 15 digits);
- ``link_or_promo``: a URL, a bare web domain, or a promo/coupon/referral code;
- ``profanity``: a term of profanex's curated word list;
- ``short_negative``: 1 or 2 stars with fewer than ``SHORT_NEGATIVE_MAX_CHARS``
  characters of text (or none);
- ``duplicate_text``: the same normalised text (at least ``DUPLICATE_MIN_CHARS``
  characters) as an earlier review;
- ``review_burst``: the customer already wrote ``BURST_LIMIT`` or more reviews in
  the last ``BURST_WINDOW``.

An unflagged review is published at once; a flagged one waits as ``pending``
in the moderation queue. The review setting ``moderate_all`` queues every
review.

Reviews the platform stores itself get the same checks and flags from the intake job
(``apply_review_rules``, run by ``dashboard/domain/intake.py``); ``rules_applied_at`` says when a
review's rules ran.

Moderation (``moderate``): support and admin staff publish, hide (with one of
``HIDE_REASONS``) or restore reviews; each change writes an audit row. The queue suggests an
action per review (``suggested_action``): hide, with the flag's reason, when a flag is
evidence of a broken rule (``HIDE_FLAGS``: personal data, a link or promo, profanity);
publish otherwise (a short negative review, a repeated text or a burst of reviews is
usually a customer's real experience). ``undo_moderation`` takes a moderation back: each
review returns to the state its last moderation found it in (a published or hidden review
from the queue: waiting again), unless it changed since.

Aggregates: ``mechanics.avg_rating`` and ``total_reviews`` count published
reviews only and are recomputed in the transaction that changes a review's
state, after locking the mechanic's row (so concurrent publishes for one
mechanic serialise and the figures stay exact).

Bayesian rating, used for ranking::

    score = (m * C + n * avg) / (m + n)

with ``n = total_reviews``, ``avg = avg_rating``, prior weight
``m = PRIOR_WEIGHT`` (10 reviews) and ``C`` the platform's mean rating: the mean
of all published reviews, ``sum(avg_rating * total_reviews) / sum(total_reviews)``
over all mechanics (0 while nothing is published). A mechanic with few reviews
is pulled towards C: one 5-star review scores (10C + 5) / 11, below two hundred
4.8s whenever C < 4.8. ``avg_rating`` is stored to two decimals, so the score
is within 0.005 of the one computed from the raw ratings.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import html
import json
import numbers
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from profanex import Filter
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from dashboard.core.audit import record_audit, unchanged_since_seen
from dashboard.core.auth import Actor, require_current_role, require_role
from dashboard.core.db import locking
from dashboard.core.errors import Invalid, NotFound
from dashboard.core.schema import (
    HIDE_REASONS,
    REVIEW_FLAGS,
    audit_log,
    mechanic_reviews,
    mechanics,
    review_helpful_votes,
    review_settings,
    sessions,
    users,
)
from dashboard.core.validation import parse_uuid

REVIEW_TEXT_MAX = 2000
SHORT_NEGATIVE_MAX_CHARS = 20
DUPLICATE_MIN_CHARS = 20
BURST_WINDOW = dt.timedelta(hours=24)
BURST_LIMIT = 3
PRIOR_WEIGHT = 10
MODERATORS = ("support", "admin")

FLAG_LABELS = {
    "personal_data": "Personal data",
    "link_or_promo": "Link or promo",
    "profanity": "Profanity",
    "short_negative": "Short negative",
    "duplicate_text": "Duplicate text",
    "review_burst": "Review burst",
}
HIDE_REASON_LABELS = {
    "harmful_or_illegal": "Harmful or illegal",
    "personal_information": "Personal information",
    "advertising": "Advertising",
    "not_genuine_experience": "Not a genuine experience",
    "off_topic": "Off topic",
    "profanity": "Profanity",
}
# The hide reason that usually fits a flag, offered first when hiding a flagged review.
SUGGESTED_REASONS = {
    "personal_data": "personal_information",
    "link_or_promo": "advertising",
    "profanity": "profanity",
    "duplicate_text": "not_genuine_experience",
    "review_burst": "not_genuine_experience",
}
# Flags that are evidence a review breaks the rules: the queue suggests hiding it.
HIDE_FLAGS = ("personal_data", "link_or_promo", "profanity")
# action -> (statuses it applies to, resulting status)
ACTIONS = {
    "publish": (("pending",), "published"),
    "hide": (("pending", "published"), "hidden"),
    "restore": (("hidden",), "published"),
}


class ReviewError(Invalid):
    """Bad input for a review write; the message says what is wrong. Nothing was written.
    (Its own class: the API answers it as ``review_rejected``.)"""


@dataclass(frozen=True)
class Span:
    """A part of a review's text that triggered ``flag``: ``text[start:end]``."""

    flag: str
    start: int
    end: int


@dataclass(frozen=True)
class SubmittedReview:
    id: uuid.UUID
    status: str
    flags: tuple[str, ...]


# --- flag rules (pure) ----------------------------------------------------------

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d ().-]{6,}\d(?!\w)")
_LINK = re.compile(
    r"\b(?:https?://|www\.)[^\s<>\"]*[^\s<>\".,;:!?)\]]"
    r"|(?<![@\w.])[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|uk|biz|info|shop|store)(?![\w-])(?:/\S*)?",
    re.IGNORECASE,
)
_PROMO = re.compile(
    r"\b(?:promo|coupon|discount|voucher|referral)\s+code\b(?:\s*[:-]?\s*[A-Z0-9]{3,}\b)?"
    r"|\buse\s+code\s+[A-Z0-9]{3,}\b",
    re.IGNORECASE,
)


@functools.cache
def _profanity_filter() -> Filter:
    return Filter()  # built once: loading the word list takes ~50 ms


def find_spans(text: str | None) -> list[Span]:
    """The parts of ``text`` that carry personal data, links or promo codes, or profanity; by position."""
    if not text:
        return []
    spans = [Span("personal_data", m.start(), m.end()) for m in _EMAIL.finditer(text)]
    spans += [
        Span("personal_data", m.start(), m.end())
        for m in _PHONE.finditer(text)
        if 9 <= sum(ch.isdigit() for ch in m.group()) <= 15
    ]
    spans += [Span("link_or_promo", m.start(), m.end()) for regex in (_LINK, _PROMO) for m in regex.finditer(text)]
    spans += [Span("profanity", m.start, m.end) for m in _profanity_filter().find(text)]
    return sorted(spans, key=lambda s: (s.start, -s.end))


def flags_for(text: str | None, rating: int, *, duplicate: bool = False, recent_reviews: int = 0) -> list[str]:
    """The automatic flags of a review, in ``REVIEW_FLAGS`` order.

    ``duplicate``: another review has the same ``text_fingerprint``;
    ``recent_reviews``: reviews by the same customer within ``BURST_WINDOW`` before this one.
    """
    found = {span.flag for span in find_spans(text)}
    if rating <= 2 and len((text or "").strip()) < SHORT_NEGATIVE_MAX_CHARS:
        found.add("short_negative")
    if duplicate:
        found.add("duplicate_text")
    if recent_reviews >= BURST_LIMIT:
        found.add("review_burst")
    return [flag for flag in REVIEW_FLAGS if flag in found]


def suggested_reason(flags: Iterable[str]) -> str | None:
    """The hide reason of the first flag (in ``REVIEW_FLAGS`` order) that suggests one."""
    present = set(flags)
    return next((SUGGESTED_REASONS[f] for f in REVIEW_FLAGS if f in present and f in SUGGESTED_REASONS), None)


def suggested_action(flags: Iterable[str]) -> str:
    """ "hide" when a flag is evidence of a broken rule (``HIDE_FLAGS``), else "publish"."""
    return "hide" if set(flags) & set(HIDE_FLAGS) else "publish"


def text_fingerprint(text: str | None) -> str | None:
    """A hash of the text with case, punctuation and spacing removed; None for short texts."""
    normalised = " ".join(re.findall(r"\w+", (text or "").casefold()))
    if len(normalised) < DUPLICATE_MIN_CHARS:
        return None
    return hashlib.sha256(normalised.encode()).hexdigest()


def highlight_html(text: str | None, spans: Iterable[Span] = ()) -> str:
    """Review text as safe HTML: every part escaped, flagged spans wrapped in ``<mark>``.

    Overlapping spans keep the first (by start). Nothing of ``text`` is ever markup.
    """
    text = text or ""
    out, pos = [], 0
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if span.start < pos:
            continue
        out.append(html.escape(text[pos : span.start]))
        label = html.escape(FLAG_LABELS.get(span.flag, span.flag))
        out.append(
            f'<mark class="flag-{html.escape(span.flag)}" title="{label}">'
            f"{html.escape(text[span.start : span.end])}</mark>"
        )
        pos = span.end
    out.append(html.escape(text[pos:]))
    return "".join(out)


def bayesian_rating(
    avg_rating: float, total_reviews: int, global_mean: float, prior_weight: int = PRIOR_WEIGHT
) -> float:
    """(m * C + n * avg) / (m + n); see the module docstring."""
    return (prior_weight * float(global_mean) + total_reviews * float(avg_rating)) / (prior_weight + total_reviews)


# --- validation -----------------------------------------------------------------


def _check_rating(rating) -> int:
    if isinstance(rating, bool) or not isinstance(rating, numbers.Integral) or not 1 <= rating <= 5:
        raise ReviewError(f"Rating must be a whole number from 1 to 5, got {rating!r}.")
    return int(rating)


def _check_text(text) -> str | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise ReviewError(f"Review text must be text, got {type(text).__name__}.")
    if "\x00" in text:
        raise ReviewError("Review text contains a NUL character.")
    text = text.strip()
    if len(text) > REVIEW_TEXT_MAX:
        raise ReviewError(f"Review text is {len(text):,} characters; the limit is {REVIEW_TEXT_MAX:,}.")
    return text or None


# --- writes ---------------------------------------------------------------------


def _lock_mechanics(conn: Connection, mechanic_ids: Iterable) -> list:
    """Lock the mechanics' rows (PostgreSQL) so writers of their aggregates take turns. NO KEY
    UPDATE: inserting a row that references a mechanic (the platform's reviews, sessions)
    is not held up by it, nor does it hold up the lock."""
    ids = sorted({m for m in mechanic_ids if m is not None})  # one order everywhere: no deadlocks
    if ids:
        query = sa.select(mechanics.c.user_id).where(mechanics.c.user_id.in_(ids)).order_by(mechanics.c.user_id)
        conn.execute(locking(conn, query, key_share=True)).all()
    return ids


def refresh_aggregates(conn: Connection, mechanic_ids: Iterable | None = None) -> None:
    """Recompute ``avg_rating`` and ``total_reviews`` from published reviews (all mechanics if None).

    Writers call it after locking the mechanics' rows, inside their transaction.
    """
    r, m = mechanic_reviews, mechanics
    query = (
        sa.select(m.c.user_id, sa.func.count(r.c.id), sa.func.coalesce(sa.func.sum(r.c.rating), 0))
        .select_from(m.outerjoin(r, sa.and_(r.c.mechanic_id == m.c.user_id, r.c.status == "published")))
        .group_by(m.c.user_id)
    )
    if mechanic_ids is not None:
        ids = list(mechanic_ids)
        if not ids:
            return
        query = query.where(m.c.user_id.in_(ids))
    rows = [
        {
            "b_id": uid,
            "b_total": count,
            "b_avg": (Decimal(total) / count).quantize(Decimal("0.01"), ROUND_HALF_UP) if count else Decimal(0),
        }
        for uid, count, total in conn.execute(query)
    ]
    if rows:
        conn.execute(
            m.update()
            .where(m.c.user_id == sa.bindparam("b_id"))
            .values(total_reviews=sa.bindparam("b_total"), avg_rating=sa.bindparam("b_avg")),
            rows,
        )


def moderation_required(conn: Connection) -> bool:
    """True when the setting sends every new review to the queue."""
    return bool(conn.execute(sa.select(review_settings.c.moderate_all).where(review_settings.c.id == 1)).scalar())


def set_moderation_required(engine: Engine, actor: Actor, required: bool) -> None:
    """Admins switch 'every review waits for moderation' on or off; audited."""
    require_role(actor, "admin")
    if not isinstance(required, bool):
        raise ReviewError(f"The moderation setting is on or off (true or false), not {str(required)[:20]!r}.")
    with engine.begin() as conn:
        actor = require_current_role(conn, actor, "admin")
        before = moderation_required(conn)
        values = {"moderate_all": bool(required), "updated_by": actor.email, "updated_at": sa.func.now()}
        if conn.execute(review_settings.update().where(review_settings.c.id == 1).values(**values)).rowcount == 0:
            conn.execute(review_settings.insert().values(id=1, **values))
        record_audit(
            conn,
            actor,
            "review_settings.update",
            "review_settings",
            1,
            before={"moderate_all": before},
            after={"moderate_all": bool(required)},
        )


def _reviewable_session(conn: Connection, session_id: uuid.UUID, customer_id: uuid.UUID | None):
    """The session a review is about, if the customer may review it; NotFound or ReviewError otherwise."""
    session = conn.execute(
        sa.select(sessions.c.customer_id, sessions.c.mechanic_id, sessions.c.status).where(sessions.c.id == session_id)
    ).first()
    if session is None:
        raise NotFound(f"No session with id {session_id}.")
    if session.status != "completed":
        raise ReviewError(f"Session {session_id} is {session.status}; only completed sessions can be reviewed.")
    if session.customer_id != customer_id:
        raise ReviewError("Only the session's customer can review it.")
    if session.mechanic_id is None:
        raise ReviewError(f"Session {session_id} has no mechanic to review.")
    return session


def _judge(
    conn: Connection,
    *,
    customer_id: uuid.UUID,
    rating: int,
    text: str | None,
    at: dt.datetime,
    exclude: uuid.UUID | None = None,
) -> tuple[list[str], str, str | None]:
    """(flags, status, text fingerprint) of a review written at ``at`` by the flag rules and the
    moderation setting; ``exclude``: the review itself, when it is stored already."""
    r = mechanic_reviews
    others = [r.c.id != exclude] if exclude is not None else []
    fingerprint = text_fingerprint(text)
    duplicate = (
        fingerprint is not None
        and conn.execute(sa.select(r.c.id).where(r.c.text_fingerprint == fingerprint, *others).limit(1)).first()
        is not None
    )
    recent = conn.execute(
        sa.select(sa.func.count())
        .select_from(r)
        .where(r.c.customer_id == customer_id, r.c.created_at >= at - BURST_WINDOW, r.c.created_at <= at, *others)
    ).scalar_one()
    flags = flags_for(text, rating, duplicate=duplicate, recent_reviews=recent)
    status = "pending" if flags or moderation_required(conn) else "published"
    return flags, status, fingerprint


def submit_review(engine: Engine, *, session_id, customer_id, rating, text=None) -> SubmittedReview:
    """Store a customer's review of a session, with its flags; publish it unless flagged.

    Raises (nothing written) NotFound for an unknown session, ReviewError for a bad
    rating or text, a session that is not completed or has no mechanic, a customer
    who is not the session's, or a session that already has a review.
    """
    rating = _check_rating(rating)
    text = _check_text(text)
    session_id = parse_uuid(session_id, "Session", ReviewError)
    customer_id = parse_uuid(customer_id, "Customer", ReviewError)
    try:
        with engine.begin() as conn:
            session = _reviewable_session(conn, session_id, customer_id)
            if conn.execute(
                sa.select(mechanic_reviews.c.id).where(mechanic_reviews.c.session_id == session_id)
            ).first():
                raise ReviewError(f"Session {session_id} already has a review.")
            now = dt.datetime.now(dt.UTC)
            flags, status, fingerprint = _judge(conn, customer_id=customer_id, rating=rating, text=text, at=now)
            if status == "published":
                _lock_mechanics(conn, [session.mechanic_id])
            review_id = conn.execute(
                mechanic_reviews.insert()
                .values(
                    session_id=session_id,
                    mechanic_id=session.mechanic_id,
                    customer_id=customer_id,
                    rating=rating,
                    review_text=text,
                    status=status,
                    flags=flags,
                    text_fingerprint=fingerprint,
                    rules_applied_at=now,
                )
                .returning(mechanic_reviews.c.id)
            ).scalar_one()
            if status == "published":
                refresh_aggregates(conn, [session.mechanic_id])
    except sa.exc.IntegrityError as exc:  # a concurrent review of the same session won the race
        raise ReviewError(f"Session {session_id} already has a review.") from exc
    return SubmittedReview(review_id, status, tuple(flags))


def apply_review_rules(conn: Connection, review_id: uuid.UUID, actor) -> str | None:
    """Pitwall's intake rules on a review the platform stored itself (``rules_applied_at``
    NULL), in the caller's transaction: the same checks and flags as ``submit_review``, then
    published or queued, aggregates updated, an audit row. A review that breaks a rule
    (unknown session, another customer's, bad text) waits in the queue as pending, its
    reason in the audit row. A review a moderator (or the platform, hiding it) decided on keeps
    its status. Returns "published", "queued", "hidden" or "rejected"; None when the
    review is not waiting for the rules (handled already, or by another worker right now)."""
    r = mechanic_reviews
    waiting = sa.select(r).where(r.c.id == review_id, r.c.rules_applied_at.is_(None))
    seen = conn.execute(waiting).first()
    if seen is None:
        return None
    _lock_mechanics(conn, [seen.mechanic_id])  # before the review, in the order moderation locks them
    # DuckDB has no row locks: a racing worker's commit fails instead
    review = conn.execute(locking(conn, waiting, skip_locked=True)).first()
    if review is None or review.mechanic_id != seen.mechanic_id:
        return None  # another worker has it, or the platform is changing it: a later run takes it
    now = dt.datetime.now(dt.UTC)
    decided = review.moderated_at is not None or review.status == "hidden"  # by a moderator or the platform
    try:
        if review.session_id is None:
            raise ReviewError("The review names no session.")
        session = _reviewable_session(conn, review.session_id, review.customer_id)
        if review.mechanic_id != session.mechanic_id:
            raise ReviewError(
                f"The review names mechanic {review.mechanic_id}, the session's is {session.mechanic_id}."
            )
        text = _check_text(review.review_text)
    except (ReviewError, NotFound) as exc:
        status = review.status if decided else "pending"
        conn.execute(r.update().where(r.c.id == review_id).values(status=status, rules_applied_at=now))
        _refresh_if_published(conn, review, status)
        record_audit(
            conn,
            actor,
            "review.intake_rejected",
            "mechanic_review",
            review_id,
            before={"status": review.status},
            after={"status": status},
            reason=str(exc),
        )
        return "rejected"
    flags, status, fingerprint = _judge(
        conn, customer_id=review.customer_id, rating=review.rating, text=text, at=review.created_at, exclude=review_id
    )
    if decided:  # the flags inform, the status stays
        status = review.status
    conn.execute(
        r.update()
        .where(r.c.id == review_id)
        .values(status=status, flags=flags, text_fingerprint=fingerprint, rules_applied_at=now)
    )
    _refresh_if_published(conn, review, status)
    record_audit(
        conn,
        actor,
        "review.intake",
        "mechanic_review",
        review_id,
        before={"status": review.status},
        after={"status": status, "flags": flags},
    )
    return {"published": "published", "hidden": "hidden"}.get(status, "queued")


def _refresh_if_published(conn: Connection, review, status: str) -> None:
    """Recompute the (locked) mechanic's aggregates when the review is or was published."""
    if "published" in (review.status, status) and review.mechanic_id is not None:
        refresh_aggregates(conn, [review.mechanic_id])


@dataclass(frozen=True)
class Moderation:
    """What ``moderate`` (or ``undo_moderation``) did: ``action`` on ``seen``'s reviews;
    ``seen`` maps each review id to its ``moderated_at`` after the change, what
    ``undo_moderation`` checks to refuse taking back a review that changed since."""

    action: str
    seen: dict[uuid.UUID, dt.datetime | None]

    @property
    def count(self) -> int:
        return len(self.seen)

    @property
    def review_ids(self) -> list[uuid.UUID]:
        return list(self.seen)


def _moderation_marks(conn: Connection, ids: list[uuid.UUID]) -> dict[uuid.UUID, dt.datetime | None]:
    r = mechanic_reviews
    return dict(conn.execute(sa.select(r.c.id, r.c.moderated_at).where(r.c.id.in_(ids)).order_by(r.c.id)).all())


def _moderation_ids(review_ids: Iterable) -> list[uuid.UUID]:
    if isinstance(review_ids, (str, bytes)) or not isinstance(review_ids, Iterable):
        raise ReviewError("Give the reviews as a list of ids.")
    ids = sorted({parse_uuid(rid, "Review", ReviewError) for rid in review_ids})
    if not ids:
        raise ReviewError("Select at least one review.")
    return ids


def _lock_reviews(conn: Connection, ids: list[uuid.UUID], *columns) -> tuple[list, dict]:
    """Lock the reviews' mechanics, then the reviews (NotFound naming the unknown ids):
    (the mechanics' ids, {review id: row of ``columns``})."""
    r = mechanic_reviews
    owners = dict(conn.execute(sa.select(r.c.id, r.c.mechanic_id).where(r.c.id.in_(ids))).all())
    missing = [str(rid) for rid in ids if rid not in owners]
    if missing:
        raise NotFound(f"No review with id {', '.join(missing)}.")
    mechanic_ids = _lock_mechanics(conn, owners.values())
    query = sa.select(r.c.id, *columns).where(r.c.id.in_(ids)).order_by(r.c.id)
    return mechanic_ids, {row.id: row for row in conn.execute(locking(conn, query))}


def moderate(engine: Engine, actor: Actor, review_ids: Iterable, action: str, reason: str | None = None) -> Moderation:
    """Publish, hide (with a reason from HIDE_REASONS) or restore reviews, all or none.

    Only support and admin staff may moderate. Each review changed gets an
    audit row with the actor, the reason and its state before and after; the
    mechanics' aggregates change in the same transaction. Returns what changed
    (``Moderation``: its ``count``, and what ``undo_moderation`` needs).
    """
    require_role(actor, *MODERATORS)
    if action not in ACTIONS:
        raise ReviewError(f"Unknown moderation action {action!r}; use one of {', '.join(ACTIONS)}.")
    if action == "hide" and reason not in HIDE_REASONS:
        raise ReviewError(f"Hiding needs a reason: one of {', '.join(HIDE_REASONS)}.")
    if action != "hide" and reason is not None:
        raise ReviewError("Only hiding takes a reason.")
    ids = _moderation_ids(review_ids)
    allowed_from, new_status = ACTIONS[action]
    r = mechanic_reviews
    with engine.begin() as conn:
        actor = require_current_role(conn, actor, *MODERATORS)
        mechanic_ids, before = _lock_reviews(conn, ids, r.c.status, r.c.hidden_reason)
        wrong = [f"{rid} is {row.status}" for rid, row in before.items() if row.status not in allowed_from]
        if wrong:
            raise ReviewError(f"Cannot {action}: review {'; '.join(wrong)}.")
        hidden_reason = reason if action == "hide" else None
        conn.execute(
            r.update()
            .where(r.c.id.in_(ids))
            .values(
                status=new_status,
                hidden_reason=hidden_reason,
                moderated_by=actor.email,
                moderated_at=sa.func.now(),
            )
        )
        refresh_aggregates(conn, mechanic_ids)
        for rid, row in before.items():
            record_audit(
                conn,
                actor,
                f"review.{action}",
                "mechanic_review",
                rid,
                before={"status": row.status, "hidden_reason": row.hidden_reason},
                after={"status": new_status, "hidden_reason": hidden_reason},
                reason=reason,
            )
        return Moderation(action, _moderation_marks(conn, ids))


UNDOABLE = tuple(f"review.{action}" for action in ACTIONS)


def _last_moderations(conn: Connection, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict]:
    """The latest moderation audit row (action, before, after) of each review that has one."""
    a = audit_log
    rows = conn.execute(
        sa.select(a.c.entity_id, a.c.action, a.c.before, a.c.after)
        .where(
            a.c.entity_type == "mechanic_review",
            a.c.entity_id.in_([str(rid) for rid in ids]),
            a.c.action.in_((*UNDOABLE, "review.undo")),
        )
        .order_by(a.c.created_at, a.c.id)
    ).all()
    last = {uuid.UUID(row.entity_id): row for row in rows}  # the newest wins
    return {
        rid: {"action": row.action, "before": _snapshot(row.before), "after": _snapshot(row.after)}
        for rid, row in last.items()
        if row.action in UNDOABLE
    }


def _snapshot(value) -> dict:
    """An audit row's before/after as a dict (DuckDB hands JSON back as text)."""
    if isinstance(value, str):
        value = json.loads(value)
    return value or {}


def undo_moderation(engine: Engine, actor: Actor, review_ids: Iterable, *, seen) -> Moderation:
    """Take back the last moderation of each review, all or none: it returns to the status
    (and hidden reason) its last publish, hide or restore found it in, from the audit trail;
    a review from the queue waits again (no moderator on it). ``seen``: each review's
    ``moderated_at`` as that moderation left it (``Moderation.seen``).

    Only support and admin staff may (role re-read). Refused, nothing written: an unknown id
    (NotFound), a review without a moderation to take back or with nothing said of what was
    seen (ReviewError), one moderated or changed since (ChangedMeanwhile, saying by whom).
    Each review gets a ``review.undo`` audit row; the mechanics' aggregates are recomputed.
    """
    require_role(actor, *MODERATORS)
    ids = _moderation_ids(review_ids)
    if not isinstance(seen, Mapping):
        raise ReviewError("Say what you saw: each review's moderation time, by review id.")
    seen = {parse_uuid(rid, "Review", ReviewError): at for rid, at in seen.items()}
    r = mechanic_reviews
    with engine.begin() as conn:
        actor = require_current_role(conn, actor, *MODERATORS)
        mechanic_ids, now = _lock_reviews(conn, ids, r.c.status, r.c.hidden_reason, r.c.moderated_at)
        last = _last_moderations(conn, ids)
        for rid in ids:
            if rid not in seen:
                raise ReviewError(f"Say what you saw of review {rid}: its moderation time.")
            expected = last[rid]["after"].get("status") if rid in last else now[rid].status
            unchanged_since_seen(
                conn,
                (seen[rid], expected),
                (now[rid].moderated_at, now[rid].status),
                f"Review {rid}",
                "mechanic_review",
                rid,
            )
            if rid not in last:
                raise ReviewError(f"Review {rid} has no moderation to undo.")
        for rid in ids:
            before = last[rid]["before"]
            status, hidden_reason = before.get("status", "pending"), before.get("hidden_reason")
            decided = status != "pending"  # back in the queue: no moderator on it
            conn.execute(
                r.update()
                .where(r.c.id == rid)
                .values(
                    status=status,
                    hidden_reason=hidden_reason,
                    moderated_by=actor.email if decided else None,
                    moderated_at=sa.func.now() if decided else None,
                )
            )
            record_audit(
                conn,
                actor,
                "review.undo",
                "mechanic_review",
                rid,
                before={"status": now[rid].status, "hidden_reason": now[rid].hidden_reason},
                after={"status": status, "hidden_reason": hidden_reason},
                reason=f"undo {last[rid]['action']}",
            )
        refresh_aggregates(conn, mechanic_ids)
        return Moderation("undo", _moderation_marks(conn, ids))


def vote_helpful(engine: Engine, *, review_id, voter_id) -> bool:
    """Count ``voter_id``'s helpful vote on a published review; False if they had already voted."""
    review_id = parse_uuid(review_id, "Review", ReviewError)
    voter_id = parse_uuid(voter_id, "Voter", ReviewError)
    r = mechanic_reviews
    with engine.begin() as conn:
        review = conn.execute(sa.select(r.c.status, r.c.customer_id).where(r.c.id == review_id)).first()
        if review is None:
            raise NotFound(f"No review with id {review_id}.")
        if review.status != "published":
            raise ReviewError(f"Review {review_id} is {review.status}; only published reviews take votes.")
        if review.customer_id == voter_id:
            raise ReviewError("Customers cannot vote for their own review.")
        if conn.execute(sa.select(users.c.id).where(users.c.id == voter_id)).first() is None:
            raise NotFound(f"No user with id {voter_id}.")
        inserted = conn.execute(
            pg_insert(review_helpful_votes)
            .values(review_id=review_id, voter_id=voter_id)
            .on_conflict_do_nothing()
            .returning(review_helpful_votes.c.voter_id)
        ).first()
        if inserted is None:
            return False
        conn.execute(r.update().where(r.c.id == review_id).values(helpful_count=r.c.helpful_count + 1))
    return True
