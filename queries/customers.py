"""Customer lookup: search by email or name, one customer's profile, their whole timeline,
and the next service to recommend to them.

Search text is a bound parameter; its ``%`` and ``_`` match themselves (escaped with ``!``). A customer is
any account that is not a mechanic. Times come back in UTC.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.core import schema as s
from dashboard.core.errors import Invalid
from dashboard.core.validation import parse_uuid
from dashboard.domain.upsells import OPEN_DAYS, new_recommendations
from queries.followups import answer_events

SEARCH_MIN, SEARCH_MAX, SEARCH_LIMIT = 3, 100, 50
SEARCH_COLUMNS = ["customer_id", "email", "full_name", "plan", "acquisition_channel", "created_at", "last_activity"]


def _like(text: str) -> str:
    """``text`` as a LIKE pattern (escape character ``!``) that matches it anywhere."""
    return "%" + text.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"


def search(conn: Connection, *, text: str, limit: int = SEARCH_LIMIT) -> pd.DataFrame:
    """Customers whose email or name contains ``text`` (case-insensitive), an exact email
    first, then by email; at most ``limit``. ``last_activity``: their latest interaction
    (None without any).

    The emails that match and the names that match are each found with their trigram index on
    PostgreSQL; only the accounts matched by name alone are looked up for their email, and only
    the ``limit`` chosen are joined to their profile and latest interaction."""
    term = " ".join(str(text or "").split())
    if not SEARCH_MIN <= len(term) <= SEARCH_MAX:
        raise Invalid(f"Type {SEARCH_MIN} to {SEARCH_MAX} characters of an email or name.")
    if not term.isprintable():
        raise Invalid("Search for letters, digits and punctuation only; the text holds a control character.")
    u, p, m, i = s.users, s.profiles, s.mechanics, s.crm_interactions
    pattern = _like(term)
    # Materialized: the planner would otherwise look up every name match's email before
    # dropping those the email search already found (most of them, as emails hold names).
    by_email = (
        sa.select(u.c.id, u.c.email, u.c.created_at)
        .where(u.c.email.ilike(pattern, escape="!"))
        .cte("by_email")
        .prefix_with("MATERIALIZED")
    )
    by_name_only = (
        sa.select(p.c.id)
        .where(p.c.full_name.ilike(pattern, escape="!"), ~sa.exists().where(by_email.c.id == p.c.id))
        .cte("by_name_only")
        .prefix_with("MATERIALIZED")
    )
    found = sa.union_all(
        sa.select(by_email),
        sa.select(u.c.id, u.c.email, u.c.created_at).join(by_name_only, by_name_only.c.id == u.c.id),
    ).subquery("found")

    def exact_first(email: sa.ColumnElement) -> tuple:
        return (sa.func.lower(email) == term.lower()).desc(), email

    chosen = (
        sa.select(found)
        .where(~sa.exists().where(m.c.user_id == found.c.id))
        .order_by(*exact_first(found.c.email))
        .limit(limit)
        .subquery("chosen")
    )
    latest = sa.select(sa.func.max(i.c.created_at)).where(i.c.customer_id == chosen.c.id).scalar_subquery()
    query = (
        sa.select(
            sa.cast(chosen.c.id, sa.Text),
            chosen.c.email,
            p.c.full_name,
            p.c.plan,
            p.c.acquisition_channel,
            chosen.c.created_at,
            latest.label("last_activity"),
        )
        .select_from(chosen.outerjoin(p, p.c.id == chosen.c.id))
        .order_by(*exact_first(chosen.c.email))
    )
    frame = pd.DataFrame(conn.execute(query).all(), columns=SEARCH_COLUMNS)
    frame["last_activity"] = pd.to_datetime(frame["last_activity"], utc=True)
    return frame


def _count(table: sa.Table, *where) -> sa.ScalarSelect:
    return sa.select(sa.func.count()).select_from(table).where(*where).scalar_subquery()


def customer(conn: Connection, *, customer_id) -> pd.DataFrame:
    """One row (none if unknown): email, full_name, plan, acquisition_channel, timezone,
    created_at, requests, sessions_completed, reviews, upsells_bought, upsell_spend_cents."""
    cid = parse_uuid(customer_id, "Customer", Invalid)
    u, p, r, ses, rev, rec = (s.users, s.profiles, s.requests, s.sessions, s.mechanic_reviews, s.upsell_recommendations)
    bought = sa.and_(rec.c.customer_id == cid, rec.c.purchased_at.isnot(None))
    query = (
        sa.select(
            u.c.email,
            p.c.full_name,
            p.c.plan,
            p.c.acquisition_channel,
            p.c.timezone,
            u.c.created_at,
            _count(r, r.c.customer_id == cid).label("requests"),
            _count(ses, ses.c.customer_id == cid, ses.c.status == "completed").label("sessions_completed"),
            _count(rev, rev.c.customer_id == cid).label("reviews"),
            _count(rec, bought).label("upsells_bought"),
            sa.select(sa.func.coalesce(sa.func.sum(rec.c.price_cents), 0))
            .where(bought)
            .scalar_subquery()
            .label("upsell_spend_cents"),
        )
        .select_from(u.outerjoin(p, p.c.id == u.c.id))
        .where(u.c.id == cid)
    )
    return pd.DataFrame(conn.execute(query).mappings().all())


TIMELINE_COLUMNS = [
    "happened_at",
    "kind",
    "category",
    "subtype",
    "status",
    "title",
    "mechanic_id",
    "mechanic_name",
    "detail",
    "amount_cents",
]


def _words(*parts: sa.ColumnElement, sep: str = " ") -> sa.ColumnElement:
    """The non-null, non-empty parts joined by ``sep``; NULL when there are none."""
    return sa.func.nullif(sa.func.concat_ws(sep, *[sa.func.nullif(part, "") for part in parts]), "")


def timeline(conn: Connection, *, customer_id) -> pd.DataFrame:
    """Everything about a customer, latest first: requests, follow-ups, sessions, summaries,
    reviews, interactions, recommendations shown/clicked/purchased and emails to them.

    Columns: happened_at, kind ("Request", "Follow-up question", "Follow-up answered" (who
    answered and who recorded it, the answer as written: ``queries.followups.answer_events``),
    "Session", "Summary", "Review", "Interaction", "Upsell shown|clicked|purchased", "Email"), the stored codes
    ``category`` (a request's), ``subtype`` (follow-up type, session type, interaction type,
    recommendation type or email milestone) and ``status``; ``title`` (a vehicle, a rating,
    a service), ``mechanic_id``/``mechanic_name`` (who held the session or was reviewed),
    ``detail`` (what was written) and ``amount_cents``."""
    cid = parse_uuid(customer_id, "Customer", Invalid)
    u, r, ses, m, rev = s.users, s.requests, s.sessions, s.mechanics, s.mechanic_reviews
    i, rec, mail = s.crm_interactions, s.upsell_recommendations, s.email_outbox
    none = sa.null().cast(sa.Text)

    def row(at, kind, *, category=none, subtype=none, status=none, title=none, mechanic=None, detail=none, amount=None):
        kind = sa.literal(kind, sa.Text) if isinstance(kind, str) else kind
        return [
            at.label("happened_at"),
            kind.label("kind"),
            sa.cast(category, sa.Text).label("category"),
            sa.cast(subtype, sa.Text).label("subtype"),
            sa.cast(status, sa.Text).label("status"),
            sa.cast(title, sa.Text).label("title"),
            sa.cast(none if mechanic is None else mechanic.c.user_id, sa.Text).label("mechanic_id"),
            sa.cast(none if mechanic is None else mechanic.c.display_name, sa.Text).label("mechanic_name"),
            sa.cast(detail, sa.Text).label("detail"),
            sa.cast(sa.null() if amount is None else amount, sa.Integer).label("amount_cents"),
        ]

    vehicle = _words(sa.cast(r.c.vehicle_year, sa.Text), r.c.vehicle_make, r.c.vehicle_model)
    with_mechanic = ses.outerjoin(m, m.c.user_id == ses.c.mechanic_id)
    summary = _words(
        sa.literal("Findings: ") + ses.c.findings,
        sa.literal("Parts: ") + ses.c.parts_needed,
        sa.literal("Next steps: ") + ses.c.next_steps,
        sep=" | ",
    )
    answers = answer_events(cid).subquery("answers")
    parts = [
        sa.select(*row(answers.c.happened_at, "Follow-up answered", title=answers.c.title, detail=answers.c.detail)),
        sa.select(
            *row(
                r.c.created_at,
                sa.case((r.c.is_follow_up, "Follow-up question"), else_="Request"),
                category=r.c.category,
                subtype=r.c.follow_up_type,
                status=r.c.status,
                title=vehicle,
                detail=r.c.description,
            )
        ).where(r.c.customer_id == cid),
        sa.select(
            *row(
                sa.func.coalesce(ses.c.ended_at, ses.c.started_at, ses.c.scheduled_at, ses.c.created_at),
                "Session",
                subtype=ses.c.session_type,
                status=ses.c.status,
                mechanic=m,
                amount=ses.c.price_cents,
            )
        )
        .select_from(with_mechanic)
        .where(ses.c.customer_id == cid),
        sa.select(*row(ses.c.summary_submitted_at, "Summary", mechanic=m, detail=summary))
        .select_from(with_mechanic)
        .where(ses.c.customer_id == cid, ses.c.summary_submitted_at.isnot(None)),
        sa.select(
            *row(
                rev.c.created_at,
                "Review",
                status=rev.c.status,
                title=sa.cast(rev.c.rating, sa.Text) + sa.literal(" of 5"),
                mechanic=m,
                detail=rev.c.review_text,
            )
        )
        .select_from(rev.outerjoin(m, m.c.user_id == rev.c.mechanic_id))
        .where(rev.c.customer_id == cid),
        sa.select(*row(i.c.created_at, "Interaction", subtype=i.c.interaction_type)).where(i.c.customer_id == cid),
        *[
            sa.select(
                *row(
                    at,
                    f"Upsell {what}",
                    subtype=rec.c.recommendation_type,
                    title=rec.c.service_title,
                    amount=rec.c.price_cents,
                )
            ).where(rec.c.customer_id == cid, at.isnot(None))
            for what, at in (
                ("shown", rec.c.shown_at),
                ("clicked", rec.c.clicked_at),
                ("purchased", rec.c.purchased_at),
            )
        ],
        sa.select(
            *row(
                sa.func.coalesce(mail.c.sent_at, mail.c.created_at),
                "Email",
                subtype=mail.c.milestone,
                status=mail.c.status,
                detail=_words(mail.c.last_error, mail.c.skip_reason, sep=" · "),
            )
        )
        .select_from(mail.join(ses, ses.c.id == mail.c.session_id).join(u, u.c.id == ses.c.customer_id))
        .where(ses.c.customer_id == cid, mail.c.recipient == u.c.email),
    ]
    events = sa.union_all(*parts).subquery("events")
    query = sa.select(events).order_by(events.c.happened_at.desc(), events.c.kind, events.c.title)
    frame = pd.DataFrame(conn.execute(query).all(), columns=TIMELINE_COLUMNS)
    frame["happened_at"] = pd.to_datetime(frame["happened_at"], utc=True)
    return frame


RECOMMENDATION_COLUMNS = ["recommendation_type", "service_title", "price_cents", "reason"]


def open_recommendations(customer_id, now: dt.datetime, *columns: sa.ColumnElement) -> sa.Select:
    """``columns`` and ``reason`` of the customer's open recommendations (not bought, shown in
    the last ``OPEN_DAYS``), the clicked ones first, then the latest shown."""
    rec = s.upsell_recommendations
    reason = sa.case(
        (rec.c.clicked_at.isnot(None), "open recommendation, clicked but not bought"),
        else_="open recommendation, shown but not clicked",
    )
    return (
        sa.select(*columns, reason.label("reason"))
        .where(
            rec.c.customer_id == customer_id,
            rec.c.purchased_at.is_(None),
            rec.c.shown_at > now - dt.timedelta(days=OPEN_DAYS),
        )
        .order_by(rec.c.clicked_at.is_(None), rec.c.shown_at.desc(), rec.c.id)
    )


def recommended_next(conn: Connection, *, customer_id, now: dt.datetime | None = None) -> pd.DataFrame:
    """The next service to offer the customer (one row, or none): their open recommendation
    (a clicked one first, then the latest shown), else what the upsell rules would add for
    their latest summary now, the first of follow_up, maintenance_plan, premium_upgrade."""
    cid = parse_uuid(customer_id, "Customer", Invalid)
    now = now or dt.datetime.now(dt.UTC)
    rec, ses = s.upsell_recommendations, s.sessions
    open_one = conn.execute(
        open_recommendations(cid, now, rec.c.recommendation_type, rec.c.service_title, rec.c.price_cents).limit(1)
    ).all()
    if open_one:
        return pd.DataFrame(open_one, columns=RECOMMENDATION_COLUMNS)
    latest = (
        sa.select(ses.c.id)
        .where(ses.c.customer_id == cid, ses.c.status == "completed", ses.c.summary_submitted_at.isnot(None))
        .order_by(ses.c.summary_submitted_at.desc(), ses.c.id)
        .limit(1)
        .scalar_subquery()
    )
    found = new_recommendations(now, ses.c.id == latest).subquery("found")
    rank = sa.case(*[(found.c.recommendation_type == kind, n) for n, kind in enumerate(s.RECOMMENDATION_TYPES)])
    query = (
        sa.select(
            found.c.recommendation_type,
            found.c.service_title,
            found.c.price_cents,
            sa.literal("rule on the latest summary: ", sa.Text) + found.c.reason,
        )
        .order_by(rank)
        .limit(1)
    )
    return pd.DataFrame(conn.execute(query).all(), columns=RECOMMENDATION_COLUMNS)
