"""Upsell rules and the upsell service catalogue.

Rules
-----
After a mechanic delivers a summary (a completed session with ``summary_submitted_at``),
each rule that fires suggests one recommendation type for the customer:

- **follow_up**: the summary lists parts needed (not blank and not "none...") or next steps;
- **maintenance_plan**: the customer had 3 or more completed sessions in the 6 months
  (183 days) up to the summary, or the session's vehicle is 10 or more model years old
  in the year of the summary;
- **premium_upgrade**: the customer is on the standard plan and has had 2 or more
  completed sessions up to the summary (repeat use).

No duplicates: a suggestion is dropped when the customer already has an **open**
recommendation of the type (not purchased, shown in the last 30 days), when one of the
type already exists for the same session (so a rerun adds nothing), or, for the
per-customer products maintenance_plan and premium_upgrade, when the customer bought
that type in the last 365 days. Of several sessions suggesting one type for a customer
at once, the latest summary wins.

Prices come from the catalogue (``upsell_services``): each type has at most one active
service, whose title, description and price the recommendation copies (a later price
change does not rewrite history). A type without an active service is not offered.

Catalogue edits are for admins only, validated, and audited (entity ``upsell_service``).

Events from the platform (``record_upsell_event``): a recommendation was shown to its
customer, clicked, or bought. Each is recorded once per recommendation: the first report
sets its time (``shown_at`` replaces the time the engine created it), writes the CRM
interaction (``upsell_shown``, ``upsell_clicked``, ``purchase``) in the same transaction
under an event id derived from the recommendation and the event, and an audit row (the
platform as actor); a repeated report changes nothing and says so.

The recommendation run (``refresh_recommendations``, the ``upsells`` job) creates the
recommendations for the summaries delivered in the last ``days`` (default 7) by these rules,
with the catalogue's prices. Running it again adds nothing for summaries it already handled.
A run is one transaction; on PostgreSQL an advisory lock makes two runs take turns, so they
cannot both add the same recommendation.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dashboard.core import schema as s
from dashboard.core.actors import PLATFORM
from dashboard.core.audit import record_audit, unchanged_since_seen
from dashboard.core.auth import Actor, require_current_role, require_role
from dashboard.core.db import locking, retry_on_conflict
from dashboard.core.errors import Conflict, Invalid, NotFound
from dashboard.core.validation import parse_text, parse_uuid
from dashboard.domain.calendars.slots import parse_base_price
from dashboard.domain.funnel.interactions import parse_moment, record_interaction

OPEN_DAYS = 30
REPURCHASE_DAYS = 365
BUSY_SESSIONS = 3
BUSY_PERIOD = dt.timedelta(days=183)
OLD_VEHICLE_YEARS = 10
REPEAT_SESSIONS = 2
PER_CUSTOMER_TYPES = ("maintenance_plan", "premium_upgrade")
TYPE_LABELS = {
    "follow_up": "Follow-up session",
    "maintenance_plan": "Maintenance plan",
    "premium_upgrade": "Premium upgrade",
}
TITLE_MIN, TITLE_MAX, DESCRIPTION_MAX = 3, 80, 300
EDITOR_ROLES = ("admin",)
SERVICE = "upsell_service"
RECOMMENDATION = "upsell_recommendation"
# event -> (the recommendation's time column, the CRM interaction it records)
UPSELL_EVENTS = {
    "shown": ("shown_at", "upsell_shown"),
    "clicked": ("clicked_at", "upsell_clicked"),
    "purchased": ("purchased_at", "purchase"),
}
EVENT_IDS = uuid.UUID("5f3c1d7e-8a9b-4c2d-9e0f-a1b2c3d4e5f6")  # namespace of the events' uuid5 ids


# --- rules -------------------------------------------------------------------------------


def _completed_sessions(since: dt.timedelta | None = None) -> sa.ScalarSelect:
    """Completed sessions of the summarised session's customer that ended by its summary
    (and within ``since`` before it)."""
    ses, other = s.sessions, s.sessions.alias("other")
    where = [
        other.c.customer_id == ses.c.customer_id,
        other.c.status == "completed",
        other.c.ended_at <= ses.c.summary_submitted_at,
    ]
    if since is not None:
        where.append(other.c.ended_at > ses.c.summary_submitted_at - sa.bindparam(None, since, type_=sa.Interval()))
    return sa.select(sa.func.count()).where(*where).scalar_subquery()


def rule_matches(*where: sa.ColumnElement[bool]) -> sa.CompoundSelect:
    """One row per rule that fires for a summarised session matching ``where``: session_id,
    customer_id, recommendation_type, summary_at, reason."""
    ses, req, prof = s.sessions, s.requests, s.profiles
    summarised = [ses.c.status == "completed", ses.c.summary_submitted_at.isnot(None), *where]
    parts = sa.func.lower(sa.func.trim(sa.func.coalesce(ses.c.parts_needed, "")))
    has_parts = sa.and_(parts != "", sa.not_(parts.like("none%")))
    has_next_steps = sa.func.trim(sa.func.coalesce(ses.c.next_steps, "")) != ""
    busy = _completed_sessions(BUSY_PERIOD) >= BUSY_SESSIONS
    old = req.c.vehicle_year <= sa.cast(sa.extract("year", ses.c.summary_submitted_at), sa.Integer) - OLD_VEHICLE_YEARS

    def match(kind: str, fires: sa.ColumnElement[bool], reason: sa.ColumnElement, source=ses) -> sa.Select:
        return (
            sa.select(
                ses.c.id.label("session_id"),
                ses.c.customer_id,
                sa.literal(kind, sa.Text).label("recommendation_type"),
                ses.c.summary_submitted_at.label("summary_at"),
                reason.label("reason"),
            )
            .select_from(source)
            .where(*summarised, fires)
        )

    return sa.union_all(
        match(
            "follow_up",
            sa.or_(has_parts, has_next_steps),
            sa.case((has_parts, "the summary lists parts needed"), else_="the summary lists next steps"),
        ),
        match(
            "maintenance_plan",
            sa.or_(busy, old),
            sa.case((busy, f"{BUSY_SESSIONS}+ sessions in 6 months"), else_=f"vehicle {OLD_VEHICLE_YEARS}+ years old"),
            ses.outerjoin(req, req.c.id == ses.c.request_id),
        ),
        match(
            "premium_upgrade",
            sa.and_(prof.c.plan == "standard", _completed_sessions() >= REPEAT_SESSIONS),
            sa.literal("standard plan, repeat customer", sa.Text),
            ses.join(prof, prof.c.id == ses.c.customer_id),
        ),
    )


def new_recommendations(now: dt.datetime, *where: sa.ColumnElement[bool]) -> sa.Select:
    """The recommendations the rules add at ``now`` for summarised sessions matching ``where``,
    with no duplicates (module docstring): customer_id, session_id, recommendation_type,
    service_title, service_description, price_cents, reason."""
    matches = rule_matches(*where).subquery("matches")
    rec, svc = s.upsell_recommendations, s.upsell_services
    same_type = sa.and_(
        rec.c.customer_id == matches.c.customer_id, rec.c.recommendation_type == matches.c.recommendation_type
    )
    for_session = sa.exists().where(
        rec.c.session_id == matches.c.session_id, rec.c.recommendation_type == matches.c.recommendation_type
    )
    still_open = sa.exists().where(
        same_type, rec.c.purchased_at.is_(None), rec.c.shown_at > now - dt.timedelta(days=OPEN_DAYS)
    )
    bought = sa.exists().where(
        same_type,
        matches.c.recommendation_type.in_(PER_CUSTOMER_TYPES),
        rec.c.purchased_at > now - dt.timedelta(days=REPURCHASE_DAYS),
    )
    latest = sa.func.row_number().over(
        partition_by=[matches.c.customer_id, matches.c.recommendation_type],
        order_by=[matches.c.summary_at.desc(), matches.c.session_id],
    )
    fresh = (
        sa.select(matches, latest.label("latest"))
        .where(sa.not_(for_session), sa.not_(still_open), sa.not_(bought))
        .subquery("fresh")
    )
    return (
        sa.select(
            fresh.c.customer_id,
            fresh.c.session_id,
            fresh.c.recommendation_type,
            svc.c.title.label("service_title"),
            svc.c.description.label("service_description"),
            svc.c.price_cents,
            fresh.c.reason,
        )
        .select_from(
            fresh.join(svc, sa.and_(svc.c.recommendation_type == fresh.c.recommendation_type, svc.c.is_active))
        )
        .where(fresh.c.latest == 1)
    )


# --- the recommendation run ------------------------------------------------------------

RECOMMEND_DAYS = 7  # the recommendation run looks back this far by default (a job down for days catches up)
MAX_RECOMMEND_DAYS = 366
LOCK_KEY = 7_160_017  # pg_advisory_xact_lock key of the recommendation run


@dataclass(frozen=True)
class UpsellRun:
    created: dict[str, int]  # recommendation type -> recommendations created
    without_service: tuple[str, ...]  # types the catalogue has no active service for

    def summary(self) -> str:
        made = ", ".join(f"{count:,} {kind}" for kind, count in sorted(self.created.items())) or "none"
        missing = f"; no active service for {', '.join(self.without_service)}" if self.without_service else ""
        return f"upsell recommendations created: {made}{missing}"


def refresh_recommendations(engine: Engine, *, days: int = RECOMMEND_DAYS, now: dt.datetime | None = None) -> UpsellRun:
    """Add the recommendations for the summaries delivered in the ``days`` before ``now``."""
    if not 1 <= days <= MAX_RECOMMEND_DAYS:
        raise ValueError(f"--days must be from 1 to {MAX_RECOMMEND_DAYS}.")
    now = now or dt.datetime.now(dt.UTC)
    ses, rec, svc = s.sessions, s.upsell_recommendations, s.upsell_services
    new = new_recommendations(
        now, ses.c.summary_submitted_at > now - dt.timedelta(days=days), ses.c.summary_submitted_at <= now
    ).subquery("new")
    columns = [
        "customer_id",
        "session_id",
        "recommendation_type",
        "service_title",
        "service_description",
        "price_cents",
    ]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
        created = (
            conn.execute(
                rec.insert()
                .from_select(
                    [*columns, "shown_at"],
                    sa.select(*[new.c[c] for c in columns], sa.literal(now, rec.c.shown_at.type)),
                )
                .returning(rec.c.recommendation_type)
            )
            .scalars()
            .all()
        )
        active = set(conn.execute(sa.select(svc.c.recommendation_type).where(svc.c.is_active)).scalars())
    return UpsellRun(dict(Counter(created)), tuple(t for t in s.RECOMMENDATION_TYPES if t not in active))


# --- the catalogue -----------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    recommendation_type: str
    title: str
    description: str | None
    price_cents: int
    is_active: bool


def parse_service(*, recommendation_type: Any, title: Any, description: Any, price: Any, is_active: Any) -> Service:
    """A catalogue entry from form values (price in dollars, e.g. ``19.00``); Invalid if not valid."""
    if recommendation_type not in s.RECOMMENDATION_TYPES:
        raise Invalid(
            f"Unknown recommendation type {str(recommendation_type)[:40]!r}; "
            f"choose from {', '.join(s.RECOMMENDATION_TYPES)}."
        )
    name = " ".join((parse_text(title, "The title", TITLE_MAX, Invalid, required=False) or "").split())
    if len(name) < TITLE_MIN:
        raise Invalid(f"The title needs {TITLE_MIN} to {TITLE_MAX} characters.")
    text = parse_text(description, "The description", DESCRIPTION_MAX, Invalid, required=False)
    text = " ".join(text.split()) if text else None
    if not isinstance(is_active, bool):
        raise Invalid("Active must be yes or no.")
    return Service(recommendation_type, name, text, parse_base_price(price), is_active)


def _snapshot(row) -> dict:
    return {
        "recommendation_type": row.recommendation_type,
        "title": row.title,
        "description": row.description,
        "price_cents": row.price_cents,
        "is_active": row.is_active,
    }


def save_service(
    engine: Engine, actor: Actor | None, service_id: Any, *, seen_updated_at: dt.datetime | None = None, **fields
) -> uuid.UUID:
    """Create (``service_id`` None) or update a catalogue service from form values (see
    ``parse_service``); returns its id. Activating a service deactivates the other active
    service of its type. One audit row per changed service; nothing changes on error.
    ``seen_updated_at``: when the service the editor saw was last changed; ChangedMeanwhile
    saying who changed it and when if it has changed since."""
    require_role(actor, *EDITOR_ROLES)
    new = parse_service(**fields)
    svc = s.upsell_services
    target = None if service_id is None else parse_uuid(service_id, "Service", Invalid)
    values = {**asdict(new), "updated_by": actor.email, "updated_at": sa.func.now()}
    with engine.begin() as conn:
        actor = require_current_role(conn, actor, *EDITOR_ROLES)
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("LOCK TABLE upsell_services IN SHARE ROW EXCLUSIVE MODE"))
        before = None if target is None else conn.execute(sa.select(svc).where(svc.c.id == target)).first()
        if target is not None and before is None:
            raise NotFound("This service no longer exists: reload the page.")
        if seen_updated_at is not None and before is not None:
            unchanged_since_seen(
                conn, seen_updated_at, before.updated_at, f"The service {before.title!r}", SERVICE, target
            )
        clash = conn.execute(
            sa.select(svc.c.id).where(
                sa.func.lower(svc.c.title) == new.title.lower(), svc.c.id != target if target else sa.true()
            )
        ).first()
        if clash:
            raise Conflict(f"Another service is already called {new.title!r}.")
        if new.is_active:
            _deactivate_others(conn, actor, new.recommendation_type, target)
        if target is None:
            target = uuid.uuid4()
            conn.execute(svc.insert().values(id=target, **values))
            record_audit(conn, actor, "upsell_service.create", SERVICE, target, after=asdict(new))
            return target
        if _snapshot(before) != asdict(new):
            conn.execute(svc.update().where(svc.c.id == target).values(**values))
            record_audit(
                conn, actor, "upsell_service.update", SERVICE, target, before=_snapshot(before), after=asdict(new)
            )
    return target


def _deactivate_others(conn: Connection, actor: Actor, kind: str, keep: uuid.UUID | None) -> None:
    svc = s.upsell_services
    others = conn.execute(
        sa.select(svc).where(
            svc.c.recommendation_type == kind, svc.c.is_active, svc.c.id != keep if keep else sa.true()
        )
    ).all()
    for row in others:
        conn.execute(
            svc.update()
            .where(svc.c.id == row.id)
            .values(is_active=False, updated_by=actor.email, updated_at=sa.func.now())
        )
        record_audit(
            conn,
            actor,
            "upsell_service.update",
            SERVICE,
            row.id,
            before=_snapshot(row),
            after={**_snapshot(row), "is_active": False},
            reason=f"another {kind} service was activated",
        )


# --- events from the platform --------------------------------------------------------------


def record_upsell_event(
    engine: Engine, recommendation_id: Any, customer_id: Any, event: str, *, at: dt.datetime | None = None
) -> dict:
    """Record that the customer's recommendation was ``"shown"``, ``"clicked"`` or
    ``"purchased"`` at ``at`` (default now), once (module docstring). Returns
    recommendation_id, event, at (the recorded time), changed and a message."""
    if event not in UPSELL_EVENTS:
        raise Invalid(f"Unknown upsell event {str(event)[:20]!r}; use one of {', '.join(UPSELL_EVENTS)}.")
    recommendation = parse_uuid(recommendation_id, "Recommendation", Invalid)
    customer = parse_uuid(customer_id, "Customer", Invalid)
    at = dt.datetime.now(dt.UTC) if at is None else parse_moment(at, "The event time", Invalid)
    column, interaction_type = UPSELL_EVENTS[event]
    event_id = uuid.uuid5(EVENT_IDS, f"{recommendation}/{event}")
    rec, i = s.upsell_recommendations, s.crm_interactions

    def write() -> dict:
        with engine.begin() as conn:
            query = sa.select(rec).where(rec.c.id == recommendation, rec.c.customer_id == customer)
            row = conn.execute(locking(conn, query)).first()
            if row is None:
                raise NotFound(f"No upsell recommendation with id {recommendation} for this customer.")
            done = conn.execute(sa.select(i.c.created_at).where(i.c.event_id == event_id)).scalar()
            if done is None and event != "shown":
                done = row._mapping[column]
            if done is not None:
                return {
                    "recommendation_id": recommendation,
                    "event": event,
                    "at": done,
                    "changed": False,
                    "message": f"Already recorded as {event} at {done:%Y-%m-%d %H:%M:%S %Z}; nothing changed.",
                }
            if event != "shown" and at < row.shown_at:
                raise Invalid(
                    f"The recommendation cannot be {event} before it was shown ({row.shown_at:%Y-%m-%d %H:%M %Z})."
                )
            conn.execute(rec.update().where(rec.c.id == recommendation).values({column: at}))
            metadata = {"recommendation_id": str(recommendation), "recommendation_type": row.recommendation_type}
            if event == "purchased":
                metadata["price_cents"] = row.price_cents
            record_interaction(
                conn,
                customer_id=customer,
                interaction_type=interaction_type,
                session_id=row.session_id,
                metadata=metadata,
                occurred_at=at,
                event_id=event_id,
            )
            record_audit(
                conn,
                PLATFORM,
                f"upsell.{event}",
                RECOMMENDATION,
                recommendation,
                before={column: row._mapping[column]},
                after={column: at},
            )
        return {
            "recommendation_id": recommendation,
            "event": event,
            "at": at,
            "changed": True,
            "message": f"Recorded as {event}.",
        }

    return retry_on_conflict(write)
