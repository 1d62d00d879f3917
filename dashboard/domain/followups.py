"""Follow-up questions: creation rules, prices, the lifecycle and its SLA settings.

A follow-up is a ``requests`` row with ``is_follow_up``, a ``follow_up_type`` of
``FOLLOW_UP_TYPES`` and the session it follows (``parent_session_id``).

Creating (``create_follow_up``; support or admin staff log it for the customer, or
the platform asks for the customer, audited as the platform; ``quote`` says beforehand
whether the same rules allow it and at what price; follow-ups the platform stores itself
get the same rules from the intake job, ``apply_follow_up_rules``):
the parent session exists, is the customer's, is completed, and ended at most
``FollowUpRules.window_days`` before now (exactly the window is still allowed);
the session has fewer than ``max_open_per_session`` follow-ups waiting (open or
assigned); the text is required, at most ``TEXT_MAX`` characters. Each violation
raises ``FollowUpError`` with a specific message and writes nothing.

Prices: the rule an admin set for the customer's plan and the type
(``follow_up_pricing``, audited), else ``DEFAULT_PRICES``: premium customers ask
for free, standard ones pay a micro-charge, and a new issue costs what a new chat
session costs (``session_base_prices``). The price is copied onto the request when
it is created (``follow_up_price_cents``), so later changes never rewrite history.

Lifecycle (``TRANSITIONS``)::

    open -> assigned -> answered -> closed
    open or assigned -> cancelled (with a reason)
    assigned -> assigned (reassigned to another mechanic)

Each step is validated, timestamped, audited (entity ``follow_up``) and allowed
to support and admin staff only. Assigning defaults to the parent session's
mechanic when active. Assigning is compare-and-set: the caller says whom it saw
assigned (nobody for an open follow-up), and if someone else changed that
meanwhile it gets ``ChangedMeanwhile`` and nothing changes; on PostgreSQL the
row is locked, so of two people assigning at once exactly one wins. Answering records
what the assigned mechanic told the customer (``answer_text``, stored as written and shown
as plain text) and which staff member recorded it (``answered_by``); a follow-up that had
a price also records a ``purchase`` interaction for the CRM funnel.

The platform's ``requests.status`` keeps its meaning and follows the state
(``PLATFORM_STATUS``). Follow-ups the platform created that Pitwall has not
handled yet have no ``follow_up_state``: their state is read from the status
(``STATE``: completed is closed, cancelled is cancelled, open or matched is open).

SLA: each type has a target time to the first response, the answer
(``FollowUpRules.sla_minutes``); ``queries.followups`` computes ages and breaches.
Every setting can be changed under ``[followups]`` in ``.streamlit/secrets.toml``::

    [followups]
    window_days = 14
    max_open_per_session = 2
    sla_minutes = { quick_question = 240, mini_extension = 480, new_issue = 1440 }
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dashboard.core.actors import PLATFORM
from dashboard.core.audit import UNCHECKED, record_audit, unchanged_since_seen
from dashboard.core.auth import Actor, require_current_role, require_role
from dashboard.core.db import locking, one_writer
from dashboard.core.errors import ChangedMeanwhile, Invalid, NotFound
from dashboard.core.schema import (
    FOLLOW_UP_ANSWER_MAX,
    FOLLOW_UP_PRICE_MAX_CENTS,
    FOLLOW_UP_STATE,
    FOLLOW_UP_TYPES,
    PLANS,
    crm_interactions,
    follow_up_pricing,
    mechanics,
    profiles,
    requests,
    session_base_prices,
    sessions,
)
from dashboard.core.settings import DEFAULTS, Settings
from dashboard.core.validation import parse_text, parse_uuid

UTC = dt.UTC
TEXT_MAX = 2000
CANCEL_REASON_MAX = 300
ANSWER_MAX = FOLLOW_UP_ANSWER_MAX
HANDLERS = ("support", "admin")  # who creates follow-ups and moves them along
ENTITY = "follow_up"
PRICE_ENTITY = "follow_up_price"

TYPE_LABELS = {"quick_question": "Quick question", "mini_extension": "Mini extension", "new_issue": "New issue"}
STATE_LABELS = {
    "open": "Open",
    "assigned": "Assigned",
    "answered": "Answered",
    "closed": "Closed",
    "cancelled": "Cancelled",
}
WAITING = ("open", "assigned")  # waiting for an answer
# action -> (states it applies to, resulting state)
TRANSITIONS = {
    "assign": (("open", "assigned"), "assigned"),
    "answer": (("assigned",), "answered"),
    "close": (("answered",), "closed"),
    "cancel": (WAITING, "cancelled"),
}
DONE = {"assign": "assigned", "answer": "marked answered", "close": "closed", "cancel": "cancelled"}
PLATFORM_STATUS = {
    "open": "open",
    "assigned": "matched",
    "answered": "completed",
    "closed": "completed",
    "cancelled": "cancelled",
}

# (plan, type) -> cents, for pairs without an admin's rule; new issues cost a new session.
DEFAULT_PRICES = {
    ("premium", "quick_question"): 0,
    ("premium", "mini_extension"): 0,
    ("standard", "quick_question"): 500,
    ("standard", "mini_extension"): 1500,
}
NEW_SESSION_TYPE = "chat"

# The follow-up's state; see the module docstring for follow-ups without a stored one (defined
# beside the schema, which indexes it).
STATE = FOLLOW_UP_STATE


class FollowUpError(Invalid):
    """Bad input for a follow-up, or a step its state does not allow; the message says
    what is wrong. Nothing was written. (Its own class: the API answers it as
    ``follow_up_rejected``.)"""


@dataclass(frozen=True)
class FollowUpRules:
    """The settings of follow-ups (``followups.*`` of ``dashboard.core.settings.SETTINGS``,
    which has their meaning and limits; ``[followups]`` in secrets.toml overrides each)."""

    window_days: int = DEFAULTS["followups.window_days"]
    max_open_per_session: int = DEFAULTS["followups.max_open_per_session"]
    sla_minutes: tuple[tuple[str, int], ...] = tuple(
        (t, DEFAULTS[f"followups.sla_minutes.{t}"]) for t in FOLLOW_UP_TYPES
    )

    def sla(self, follow_up_type: str) -> int:
        """The target time to the first response of a type, in minutes."""
        return dict(self.sla_minutes)[follow_up_type]

    @classmethod
    def from_settings(cls, settings: Settings) -> FollowUpRules:
        values = settings.group("followups")
        return cls(
            window_days=values["window_days"],
            max_open_per_session=values["max_open_per_session"],
            sla_minutes=tuple((t, values[f"sla_minutes.{t}"]) for t in FOLLOW_UP_TYPES),
        )


@dataclass(frozen=True)
class Price:
    """What a follow-up of ``follow_up_type`` costs a customer on ``plan`` now."""

    plan: str
    follow_up_type: str
    cents: int | None  # None: a new issue while no chat session has a base price
    source: str  # "rule" (set by an admin), "default" or "new session"
    updated_by: str | None = None
    updated_at: dt.datetime | None = None


@dataclass(frozen=True)
class CreatedFollowUp:
    id: uuid.UUID
    plan: str
    price_cents: int


# --- validation -----------------------------------------------------------------


def _text(value, what: str, limit: int) -> str:
    return parse_text(value, what, limit, FollowUpError)


def _type(value) -> str:
    if value not in FOLLOW_UP_TYPES:
        raise FollowUpError(f"Unknown follow-up type {str(value)[:40]!r}; use one of {', '.join(FOLLOW_UP_TYPES)}.")
    return value


def _moment(at: dt.datetime | None) -> dt.datetime:
    if at is None:
        return dt.datetime.now(UTC)
    if at.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return at


# --- prices -----------------------------------------------------------------------


def prices(conn: Connection) -> dict[tuple[str, str], Price]:
    """The current price of every (plan, type) pair, in ``PLANS`` x ``FOLLOW_UP_TYPES`` order."""
    p = follow_up_pricing
    rules = {(row.plan, row.follow_up_type): row for row in conn.execute(sa.select(p))}
    session_price = conn.execute(
        sa.select(session_base_prices.c.price_cents).where(session_base_prices.c.session_type == NEW_SESSION_TYPE)
    ).scalar()
    current = {}
    for plan in PLANS:
        for follow_up_type in FOLLOW_UP_TYPES:
            rule = rules.get((plan, follow_up_type))
            if rule is not None:
                price = Price(plan, follow_up_type, rule.price_cents, "rule", rule.updated_by, rule.updated_at)
            elif (plan, follow_up_type) in DEFAULT_PRICES:
                price = Price(plan, follow_up_type, DEFAULT_PRICES[plan, follow_up_type], "default")
            else:
                price = Price(plan, follow_up_type, session_price, "new session")
            current[plan, follow_up_type] = price
    return current


def set_prices(
    engine: Engine,
    actor: Actor | None,
    changes: Mapping[tuple[str, str], Any],
    *,
    seen: Mapping[tuple[str, str], int | None] | None = None,
) -> int:
    """Admins set the price in cents of (plan, type) pairs, all or none; one audit row per
    price that changed. Follow-ups already created keep their price. Returns how many changed.

    ``seen``: the cents the editor saw for the pairs it changes; ChangedMeanwhile saying who
    changed one and when if it is no longer so. On PostgreSQL the price table is locked for
    the transaction, so two admins saving at once take turns and the second sees the first's
    prices (the same new price is then no change) instead of failing on the second insert; on
    DuckDB (one process) the second save waits for the first (``one_writer``) and sees the same.
    """
    require_role(actor, "admin")
    if not isinstance(changes, Mapping) or not all(isinstance(key, tuple) and len(key) == 2 for key in changes):
        raise FollowUpError("Prices are given per (plan, follow-up type) pair, in whole cents.")
    for (plan, follow_up_type), cents in changes.items():
        if plan not in PLANS:
            raise FollowUpError(f"Unknown plan {str(plan)[:40]!r}; use one of {', '.join(PLANS)}.")
        _type(follow_up_type)
        if isinstance(cents, bool) or not isinstance(cents, int) or not 0 <= cents <= FOLLOW_UP_PRICE_MAX_CENTS:
            raise FollowUpError(
                f"The price of {plan} {TYPE_LABELS[follow_up_type].lower()}s must be whole cents "
                f"from 0 to {FOLLOW_UP_PRICE_MAX_CENTS:,}, got {cents!r}."
            )
    p = follow_up_pricing
    changed = 0
    with one_writer(engine), engine.begin() as conn:
        actor = require_current_role(conn, actor, "admin")
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("LOCK TABLE follow_up_pricing IN SHARE ROW EXCLUSIVE MODE"))
        current = prices(conn)
        for plan, follow_up_type in changes:
            unchanged_since_seen(
                conn,
                (seen or {}).get((plan, follow_up_type), UNCHECKED),
                current[plan, follow_up_type].cents,
                f"The {plan} {TYPE_LABELS[follow_up_type].lower()} price",
                PRICE_ENTITY,
                f"{plan}/{follow_up_type}",
            )
        for (plan, follow_up_type), cents in changes.items():
            before = current[plan, follow_up_type]
            if before.source == "rule" and before.cents == cents:
                continue
            values = {"price_cents": cents, "updated_by": actor.email, "updated_at": dt.datetime.now(UTC)}
            if before.source == "rule":
                conn.execute(p.update().where(p.c.plan == plan, p.c.follow_up_type == follow_up_type).values(**values))
            else:
                conn.execute(p.insert().values(plan=plan, follow_up_type=follow_up_type, **values))
            record_audit(
                conn,
                actor,
                "follow_up_price.set",
                PRICE_ENTITY,
                f"{plan}/{follow_up_type}",
                before={"price_cents": before.cents, "source": before.source},
                after={"price_cents": cents, "source": "rule"},
            )
            changed += 1
    return changed


# --- creating ---------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """Whether the customer may ask a follow-up of a type on a session now, and its price."""

    eligible: bool
    reason: str | None  # why not, when not eligible
    price_cents: int | None
    plan: str


def _parent_session(conn: Connection, parent_session_id: uuid.UUID, *, lock: bool = True):
    """The session a follow-up is asked on, or None; ``lock``: locked on PostgreSQL
    (follow-ups on it take turns, so the limit holds)."""
    query = sa.select(
        sessions.c.customer_id,
        sessions.c.status,
        sessions.c.ended_at,
        sessions.c.request_id,
    ).where(sessions.c.id == parent_session_id)
    return conn.execute(locking(conn, query) if lock else query).first()


def _no_session(parent_session_id) -> NotFound:
    return NotFound(f"No session with id {parent_session_id}.")


def _plan(conn: Connection, customer_id: uuid.UUID) -> str:
    return conn.execute(sa.select(profiles.c.plan).where(profiles.c.id == customer_id)).scalar() or "standard"


def _counted_before(checking) -> list[sa.ColumnElement[bool]]:
    if checking is None:
        return []
    r = requests
    return [
        r.c.id != checking.id,
        sa.or_(
            r.c.rules_applied_at.isnot(None),
            sa.tuple_(r.c.created_at, r.c.id) < sa.tuple_(checking.created_at, checking.id),
        ),
    ]


def _price_for(
    conn: Connection,
    session,
    *,
    parent_session_id: uuid.UUID,
    customer_id: uuid.UUID,
    follow_up_type: str,
    rules: FollowUpRules,
    now: dt.datetime,
    checking=None,
) -> tuple[str, Price]:
    """The creation rules (module docstring) for a follow-up on ``session``: the customer's plan
    and the price, or FollowUpError saying which rule is broken. ``checking``: the stored
    follow-up (id, created_at) being checked; the limit counts the follow-ups handled
    already or asked before it, not itself."""
    if session.customer_id != customer_id:
        raise FollowUpError(
            f"Session {parent_session_id} is another customer's; a follow-up can only be asked on one's own session."
        )
    if session.status != "completed":
        raise FollowUpError(
            f"Session {parent_session_id} is {session.status}; follow-ups can only be asked on completed sessions."
        )
    window = dt.timedelta(days=rules.window_days)
    if session.ended_at is None or now - session.ended_at > window:
        ended = f"ended {session.ended_at:%d %b %Y %H:%M} UTC" if session.ended_at else "has no end time"
        raise FollowUpError(
            f"Session {parent_session_id} {ended}; follow-ups can be asked up to "
            f"{rules.window_days} days after a session ends."
        )
    waiting = conn.execute(
        sa.select(sa.func.count())
        .select_from(requests)
        .where(
            requests.c.parent_session_id == parent_session_id,
            requests.c.is_follow_up,
            STATE.in_(WAITING),
            *_counted_before(checking),
        )
    ).scalar_one()
    if waiting >= rules.max_open_per_session:
        raise FollowUpError(
            f"Session {parent_session_id} already has {waiting} follow-up(s) waiting for an "
            f"answer; the limit is {rules.max_open_per_session}."
        )
    plan = _plan(conn, customer_id)
    price = prices(conn)[plan, follow_up_type]
    if price.cents is None:
        raise FollowUpError(
            f"New issues cost what a new {NEW_SESSION_TYPE} session costs, and that has no "
            "base price yet: an admin sets one (or a follow-up price) first."
        )
    return plan, price


def quote(
    engine: Engine,
    *,
    parent_session_id,
    customer_id,
    follow_up_type,
    rules: FollowUpRules = FollowUpRules(),
    now: dt.datetime | None = None,
) -> dict:
    """Whether ``create_follow_up`` would accept this follow-up now, and at what price:
    ``{"eligible", "reason", "price_cents", "plan"}``. Writes nothing. FollowUpError for a
    malformed type or id, or an unknown session (those are not a customer's question)."""
    follow_up_type = _type(follow_up_type)
    parent_session_id = parse_uuid(parent_session_id, "Session", FollowUpError)
    customer_id = parse_uuid(customer_id, "Customer", FollowUpError)
    now = _moment(now)
    with engine.connect() as conn:
        session = _parent_session(conn, parent_session_id, lock=False)
        if session is None:
            raise _no_session(parent_session_id)
        try:
            plan, price = _price_for(
                conn,
                session,
                parent_session_id=parent_session_id,
                customer_id=customer_id,
                follow_up_type=follow_up_type,
                rules=rules,
                now=now,
            )
        except FollowUpError as exc:
            return asdict(Quote(False, str(exc), None, _plan(conn, customer_id)))
    return asdict(Quote(True, None, price.cents, plan))


def create_follow_up(
    engine: Engine,
    actor: Actor | None,
    *,
    parent_session_id,
    customer_id,
    follow_up_type,
    text,
    rules: FollowUpRules = FollowUpRules(),
    now: dt.datetime | None = None,
    on_behalf_of_customer: bool = False,
) -> CreatedFollowUp:
    """Log a customer's follow-up question on one of their sessions, priced by the current rules.

    Support or admin staff log it (``actor``); the platform asks for the customer itself
    with ``actor=None, on_behalf_of_customer=True`` (audited as the platform).
    Raises FollowUpError (nothing written) for a bad type or text, an unknown
    session, a session that is not the customer's, not completed, or ended more
    than ``rules.window_days`` ago, or one with ``rules.max_open_per_session``
    follow-ups waiting already; or when the price is not set.
    """
    if on_behalf_of_customer:
        if actor is not None:
            raise FollowUpError("A follow-up is logged either by staff or for the customer, not both.")
        audited_as = PLATFORM
    else:
        audited_as = require_role(actor, *HANDLERS)
    follow_up_type = _type(follow_up_type)
    text = _text(text, "The question", TEXT_MAX)
    parent_session_id = parse_uuid(parent_session_id, "Session", FollowUpError)
    customer_id = parse_uuid(customer_id, "Customer", FollowUpError)
    now = _moment(now)
    with engine.begin() as conn:
        if not on_behalf_of_customer:
            audited_as = require_current_role(conn, actor, *HANDLERS)
        session = _parent_session(conn, parent_session_id)
        if session is None:
            raise _no_session(parent_session_id)
        plan, price = _price_for(
            conn,
            session,
            parent_session_id=parent_session_id,
            customer_id=customer_id,
            follow_up_type=follow_up_type,
            rules=rules,
            now=now,
        )
        parent_request = (
            conn.execute(
                sa.select(
                    requests.c.vehicle_make,
                    requests.c.vehicle_model,
                    requests.c.vehicle_year,
                    requests.c.category,
                ).where(requests.c.id == session.request_id)
            )
            .mappings()
            .first()
            or {}
        )
        values = {
            **parent_request,
            "customer_id": customer_id,
            "description": text,
            "status": PLATFORM_STATUS["open"],
            "is_follow_up": True,
            "parent_session_id": parent_session_id,
            "follow_up_type": follow_up_type,
            "follow_up_state": "open",
            "follow_up_price_cents": price.cents,
            "created_at": now,
            "updated_at": now,
            "rules_applied_at": now,
        }
        follow_up_id = conn.execute(requests.insert().values(**values).returning(requests.c.id)).scalar_one()
        record_audit(
            conn,
            audited_as,
            "follow_up.create",
            ENTITY,
            follow_up_id,
            after={
                "state": "open",
                "parent_session_id": parent_session_id,
                "customer_id": customer_id,
                "follow_up_type": follow_up_type,
                "plan": plan,
                "price_cents": price.cents,
                "price_source": price.source,
            },
        )
    return CreatedFollowUp(follow_up_id, plan, price.cents)


def apply_follow_up_rules(
    conn: Connection, follow_up_id: uuid.UUID, actor, rules: FollowUpRules = FollowUpRules()
) -> str | None:
    """The creation rules on a follow-up the platform stored itself (``rules_applied_at``
    NULL), in the caller's transaction, as of when it was asked: a follow-up they allow gets
    its price (unless the platform set one) and, while open, its state; one that breaks a
    rule is cancelled with the rule as its reason (or, if the platform closed it already,
    only noted). Audited. Returns "priced", "cancelled" or "rejected"; None when the
    follow-up is not waiting for the rules (handled already, or by another worker right now)."""
    r = requests
    waiting = sa.select(r, STATE.label("state")).where(
        r.c.id == follow_up_id, r.c.is_follow_up, r.c.rules_applied_at.is_(None)
    )
    seen = conn.execute(waiting).first()
    if seen is None:
        return None
    session = _parent_session(conn, seen.parent_session_id)  # before the follow-up, as create_follow_up locks it
    # DuckDB has no row locks: a racing worker's commit fails instead
    row = conn.execute(locking(conn, waiting, skip_locked=True)).first()
    if row is None:
        return None
    now = dt.datetime.now(UTC)
    state = row.state
    try:
        if session is None:
            raise _no_session(row.parent_session_id)
        _text(row.description, "The question", TEXT_MAX)
        plan, price = _price_for(
            conn,
            session,
            parent_session_id=row.parent_session_id,
            customer_id=row.customer_id,
            follow_up_type=row.follow_up_type,
            rules=rules,
            now=row.created_at,
            checking=row,
        )
    except (FollowUpError, NotFound) as exc:
        reason = str(exc)[:CANCEL_REASON_MAX]
        changes = {"rules_applied_at": now}
        if state in WAITING:
            changes.update(
                follow_up_state="cancelled",
                status=PLATFORM_STATUS["cancelled"],
                cancelled_at=now,
                cancel_reason=reason,
                updated_at=now,
            )
        conn.execute(r.update().where(r.c.id == row.id).values(**changes))
        outcome = "cancelled" if state in WAITING else "rejected"
        record_audit(
            conn,
            actor,
            f"follow_up.intake_{outcome}",
            ENTITY,
            row.id,
            before={"state": state},
            after={"state": "cancelled" if state in WAITING else state},
            reason=reason,
        )
        return outcome
    cents = price.cents if row.follow_up_price_cents is None else row.follow_up_price_cents
    changes = {"rules_applied_at": now, "follow_up_price_cents": cents}
    if row.follow_up_state is None and row.status == PLATFORM_STATUS["open"]:
        changes["follow_up_state"] = "open"
    conn.execute(r.update().where(r.c.id == row.id).values(**changes))
    record_audit(
        conn,
        actor,
        "follow_up.intake",
        ENTITY,
        row.id,
        before={"state": state},
        after={
            "state": changes.get("follow_up_state", state),
            "plan": plan,
            "price_cents": cents,
            "price_source": price.source if row.follow_up_price_cents is None else "platform",
        },
    )
    return "priced"


# --- the lifecycle ------------------------------------------------------------------


def _follow_up(conn: Connection, follow_up_id: uuid.UUID, action: str):
    """The follow-up's row (locked on PostgreSQL) if ``action`` applies to its state."""
    r = requests
    row = conn.execute(
        locking(
            conn,
            sa.select(
                r.c.id,
                r.c.customer_id,
                r.c.parent_session_id,
                r.c.follow_up_type,
                r.c.follow_up_price_cents,
                r.c.assigned_mechanic_id,
                STATE.label("state"),
            ).where(r.c.id == follow_up_id, r.c.is_follow_up),
        )
    ).first()
    if row is None:
        raise NotFound(f"No follow-up with id {follow_up_id}.")
    allowed, _ = TRANSITIONS[action]
    if row.state not in allowed:
        if action == "answer" and row.state == "open":
            raise FollowUpError(
                f"Follow-up {follow_up_id} is open: assign it to a mechanic before marking it answered."
            )
        raise FollowUpError(
            f"Follow-up {follow_up_id} is {row.state}; only {' or '.join(allowed)} follow-ups can be {DONE[action]}."
        )
    return row


def _move(
    conn: Connection, actor: Actor, row, action: str, at: dt.datetime, changes: dict, reason: str | None = None
) -> None:
    """Write the step ``action`` with its ``changes`` and the audit row."""
    state = TRANSITIONS[action][1]
    conn.execute(
        requests.update()
        .where(requests.c.id == row.id)
        .values(follow_up_state=state, status=PLATFORM_STATUS[state], updated_at=at, **changes)
    )
    verb = "reassign" if action == "assign" and row.state == "assigned" else action
    record_audit(
        conn,
        actor,
        f"follow_up.{verb}",
        ENTITY,
        row.id,
        before={"state": row.state, "assigned_mechanic_id": row.assigned_mechanic_id},
        after={"state": state, **changes},
        reason=reason,
    )


def _mechanic_name(conn: Connection, mechanic_id: uuid.UUID | None) -> str:
    name = conn.execute(sa.select(mechanics.c.display_name).where(mechanics.c.user_id == mechanic_id)).scalar()
    return name or "a mechanic no longer listed"


def _assignee(conn: Connection, row, mechanic_id: uuid.UUID | None):
    """The active mechanic to assign: ``mechanic_id``, or by default the parent session's."""
    if mechanic_id is None:
        mechanic_id = conn.execute(
            sa.select(sessions.c.mechanic_id).where(sessions.c.id == row.parent_session_id)
        ).scalar()
        if mechanic_id is None:
            raise FollowUpError("The parent session has no mechanic: choose one.")
    mechanic = conn.execute(
        sa.select(mechanics.c.user_id, mechanics.c.display_name, mechanics.c.is_active).where(
            mechanics.c.user_id == mechanic_id
        )
    ).first()
    if mechanic is None:
        raise NotFound(f"No mechanic with id {mechanic_id}.")
    if not mechanic.is_active:
        raise FollowUpError(f"{mechanic.display_name} is not an active mechanic: choose another.")
    if mechanic.user_id == row.assigned_mechanic_id:
        raise FollowUpError(f"The follow-up is already assigned to {mechanic.display_name}.")
    return mechanic


def assign(
    engine: Engine,
    actor: Actor | None,
    follow_up_id,
    mechanic_id=None,
    *,
    seen_mechanic_id=None,
    at: dt.datetime | None = None,
) -> uuid.UUID:
    """Assign an open follow-up, or reassign an assigned one, to an active mechanic; returns its id.

    ``mechanic_id`` None: the parent session's mechanic. ``seen_mechanic_id``: who
    the caller saw assigned (None: nobody); ChangedMeanwhile if that changed meanwhile.
    """
    require_role(actor, *HANDLERS)
    follow_up_id = parse_uuid(follow_up_id, "Follow-up", FollowUpError)
    mechanic_id = None if mechanic_id is None else parse_uuid(mechanic_id, "Mechanic", FollowUpError)
    seen = None if seen_mechanic_id is None else parse_uuid(seen_mechanic_id, "Mechanic", FollowUpError)
    at = _moment(at)
    with engine.begin() as conn:
        actor = require_current_role(conn, actor, *HANDLERS)
        row = _follow_up(conn, follow_up_id, "assign")
        if row.assigned_mechanic_id != seen:
            raise ChangedMeanwhile(
                f"While you were looking, someone assigned this follow-up to "
                f"{_mechanic_name(conn, row.assigned_mechanic_id)}; nothing was changed. "
                "Reload the queue to see it, then reassign it if needed."
            )
        mechanic = _assignee(conn, row, mechanic_id)
        _move(conn, actor, row, "assign", at, {"assigned_mechanic_id": mechanic.user_id, "assigned_at": at})
    return mechanic.user_id


def mark_answered(
    engine: Engine, actor: Actor | None, follow_up_id, *, answer=None, at: dt.datetime | None = None
) -> None:
    """Record the answer the assigned mechanic gave to an assigned follow-up: ``answer`` (what the
    customer was told: required, at most ``ANSWER_MAX`` characters, no NUL) is stored as written
    in ``answer_text``, with the staff member who recorded it (``answered_by``, their email) and
    ``answered_at``; the audit row holds the answer too. A paid follow-up also records a
    ``purchase`` interaction. FollowUpError (nothing written) for a missing or bad answer or a
    follow-up that is not assigned."""
    require_role(actor, *HANDLERS)
    follow_up_id = parse_uuid(follow_up_id, "Follow-up", FollowUpError)
    answer = _text(answer, "The answer", ANSWER_MAX)
    at = _moment(at)
    with engine.begin() as conn:
        actor = require_current_role(conn, actor, *HANDLERS)
        row = _follow_up(conn, follow_up_id, "answer")
        _move(conn, actor, row, "answer", at, {"answered_at": at, "answer_text": answer, "answered_by": actor.email})
        if row.follow_up_price_cents:
            conn.execute(
                crm_interactions.insert().values(
                    customer_id=row.customer_id,
                    interaction_type="purchase",
                    session_id=row.parent_session_id,
                    created_at=at,
                    metadata={
                        "follow_up_id": str(row.id),
                        "follow_up_type": row.follow_up_type,
                        "price_cents": row.follow_up_price_cents,
                    },
                )
            )


def close(engine: Engine, actor: Actor | None, follow_up_id, *, at: dt.datetime | None = None) -> None:
    """Close an answered follow-up."""
    require_role(actor, *HANDLERS)
    follow_up_id = parse_uuid(follow_up_id, "Follow-up", FollowUpError)
    at = _moment(at)
    with engine.begin() as conn:
        actor = require_current_role(conn, actor, *HANDLERS)
        _move(conn, actor, _follow_up(conn, follow_up_id, "close"), "close", at, {"closed_at": at})


def cancel(engine: Engine, actor: Actor | None, follow_up_id, reason, *, at: dt.datetime | None = None) -> None:
    """Cancel a follow-up that is waiting for an answer, with a reason (at most ``CANCEL_REASON_MAX`` characters)."""
    require_role(actor, *HANDLERS)
    reason = _text(reason, "The reason to cancel", CANCEL_REASON_MAX)
    follow_up_id = parse_uuid(follow_up_id, "Follow-up", FollowUpError)
    at = _moment(at)
    with engine.begin() as conn:
        actor = require_current_role(conn, actor, *HANDLERS)
        row = _follow_up(conn, follow_up_id, "cancel")
        _move(conn, actor, row, "cancel", at, {"cancelled_at": at, "cancel_reason": reason}, reason=reason)
