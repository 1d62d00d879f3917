"""Follow-ups: the support queue with ages and SLA states, its counts, the mechanics'
load and the weekly trend.

Ages and SLA states are computed in SQL at ``now`` (a parameter, so that a page can
round it to the minute and tests can fix it), with the targets of ``FollowUpRules``:

- due at: ``created_at`` + the type's target;
- waiting (open or assigned): ``breached`` once now is after the due time,
  ``due_soon`` in the last ``DUE_SOON_SHARE`` of the target (from
  ``created_at`` + 3/4 of it), else ``on_track``;
- answered or closed: ``met`` if answered by the due time, else ``missed``
  (None for follow-ups closed before Pitwall tracked answers); cancelled: None.

The state of a follow-up is ``dashboard.domain.followups.STATE``. Plans are the customer's
current plan (``standard`` without a profile).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.core.period import Period
from dashboard.core.schema import (
    FOLLOW_UP_STATES,
    FOLLOW_UP_TYPES,
    PLANS,
    mechanic_availability_overrides,
    mechanic_availability_slots,
    mechanics,
    profiles,
    requests,
    sessions,
    staff_roles,
    users,
)
from dashboard.domain.calendars.slots import Calendar, Override, WeeklySlot, availability_windows, day_of_week
from dashboard.domain.followups import STATE, WAITING, FollowUpRules

QUEUE_LIMIT = 200
DUE_SOON_SHARE = 0.25
SOON_MINUTES = 120  # ``due="soon"``: waiting, not overdue, due within the next 2 hours
DUE_FILTERS = ("overdue", "soon")
ORDERS = ("due", "oldest")  # most overdue first (earliest due time), or oldest first
QUEUE_COLUMNS = (
    "id",
    "created_at",
    "follow_up_type",
    "category",
    "state",
    "description",
    "price_cents",
    "customer_id",
    "customer_name",
    "customer_email",
    "plan",
    "assigned_mechanic_id",
    "assigned_mechanic_name",
    "assigned_at",
    "answered_at",
    "closed_at",
    "cancelled_at",
    "cancel_reason",
    "answer_text",
    "answered_by",
    "answered_by_name",
    "parent_session_id",
    "parent_session_type",
    "parent_ended_at",
    "parent_mechanic_id",
    "parent_mechanic_name",
    "parent_mechanic_active",
    "findings",
    "steps_taken",
    "parts_needed",
    "next_steps",
    "summary_submitted_at",
    "age_minutes",
    "due_at",
    "minutes_to_due",
    "sla_state",
    "matching",
)
TEXT_COLUMNS = (
    "description",
    "customer_name",
    "customer_email",
    "assigned_mechanic_name",
    "cancel_reason",
    "answer_text",
    "answered_by",
    "answered_by_name",
    "parent_mechanic_name",
    "findings",
    "steps_taken",
    "parts_needed",
    "next_steps",
    "sla_state",
)

r = requests


def _checked(values: Sequence, allowed: Sequence, what: str) -> list:
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ValueError(f"unknown {what}: {', '.join(map(str, unknown))}")
    return list(values)


def _at(moment: dt.datetime) -> sa.BindParameter:
    if moment.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return sa.literal(moment, sa.DateTime(timezone=True))


def _seconds(count: sa.ColumnElement) -> sa.ColumnElement:
    return sa.literal_column("INTERVAL '1 second'", sa.Interval) * count


def _by_type(seconds: Mapping[str, int]) -> sa.ColumnElement:
    return sa.case({t: sa.literal(s, sa.Integer) for t, s in seconds.items()}, value=r.c.follow_up_type)


def _minutes_between(start: sa.ColumnElement, end: sa.ColumnElement) -> sa.ColumnElement:
    return sa.cast((sa.extract("epoch", end) - sa.extract("epoch", start)) / 60, sa.Double)


def _sla_columns(rules: FollowUpRules, now: dt.datetime) -> dict[str, sa.ColumnElement]:
    """``age_minutes``, ``due_at``, ``minutes_to_due`` (negative: overdue) and ``sla_state`` at ``now``."""
    target = {t: rules.sla(t) * 60 for t in FOLLOW_UP_TYPES}
    due_at = r.c.created_at + _seconds(_by_type(target))
    due_soon_at = r.c.created_at + _seconds(_by_type({t: round(s * (1 - DUE_SOON_SHARE)) for t, s in target.items()}))
    at = _at(now)
    waiting = STATE.in_(WAITING)
    sla_state = sa.case(
        (waiting & (at > due_at), "breached"),
        (waiting & (at >= due_soon_at), "due_soon"),
        (waiting, "on_track"),
        (r.c.answered_at <= due_at, "met"),
        (r.c.answered_at > due_at, "missed"),
    )
    columns = {
        "age_minutes": _minutes_between(r.c.created_at, at),
        "due_at": due_at,
        "minutes_to_due": _minutes_between(at, due_at),
        "sla_state": sla_state,
    }
    return {name: column.label(name) for name, column in columns.items()}


def _plan() -> sa.ColumnElement:
    return sa.func.coalesce(profiles.c.plan, "standard")


def _due_filter(due: str, sla: dict[str, sa.ColumnElement], now: dt.datetime) -> sa.ColumnElement:
    """``overdue``: waiting and past the target; ``soon``: waiting and due within ``SOON_MINUTES``."""
    _checked([due], DUE_FILTERS, "due filter")
    waiting = STATE.in_(WAITING)
    due_at = sla["due_at"].element
    at = _at(now)
    if due == "overdue":
        return waiting & (at > due_at)
    return waiting & (due_at >= at) & (due_at <= at + _seconds(sa.literal(SOON_MINUTES * 60, sa.Integer)))


def _matching(
    query: sa.Select,
    sla: dict,
    now: dt.datetime,
    *,
    states: Sequence[str],
    types: Sequence[str],
    plans: Sequence[str],
    mechanic_id,
    due: str | None,
) -> sa.Select:
    """``query`` over the follow-ups that match the filters (``queue`` says what each one keeps)."""
    where = [r.c.is_follow_up]
    if states:
        where.append(STATE.in_(_checked(states, FOLLOW_UP_STATES, "state")))
    if types:
        where.append(r.c.follow_up_type.in_(_checked(types, FOLLOW_UP_TYPES, "follow-up type")))
    if plans:
        where.append(_plan().in_(_checked(plans, PLANS, "plan")))
    if mechanic_id is not None:
        where.append(r.c.assigned_mechanic_id == mechanic_id)
    if due is not None:
        where.append(_due_filter(due, sla, now))
    return query.select_from(r.outerjoin(profiles, profiles.c.id == r.c.customer_id) if plans else r).where(*where)


def queue(
    conn: Connection,
    *,
    now: dt.datetime,
    rules: FollowUpRules = FollowUpRules(),
    states: Sequence[str] = WAITING,
    types: Sequence[str] = (),
    plans: Sequence[str] = (),
    mechanic_id=None,
    due: str | None = None,
    order: str = "due",
    limit: int = QUEUE_LIMIT,
    offset: int = 0,
) -> pd.DataFrame:
    """Follow-ups in ``states`` (any when empty) of ``types``, for customers on ``plans``,
    assigned to ``mechanic_id``, ``due`` (None: any; ``overdue``: past their target;
    ``soon``: due within the next ``SOON_MINUTES``, both waiting only); most overdue first
    (``order="due"``: earliest due time) or oldest first; at most ``limit``, from the
    ``offset``-th on (a page). ``QUEUE_COLUMNS``: the follow-up, its customer, assignee, the
    answer and who recorded it, parent session with its summary, SLA columns, and ``matching``
    (how many match the filters in all).

    The page's rows are chosen first and only they are joined to their details."""
    _checked([order], ORDERS, "order")
    sla = _sla_columns(rules, now)
    key = sla["due_at"] if order == "due" else r.c.created_at
    chosen = (
        _matching(
            sa.select(r.c.id, key.label("sort_key"), sa.func.count().over().label("matching")),
            sla,
            now,
            states=states,
            types=types,
            plans=plans,
            mechanic_id=mechanic_id,
            due=due,
        )
        .order_by(key, r.c.created_at, r.c.id)
        .limit(limit)
        .offset(offset)
        .subquery("chosen")
    )
    assigned = mechanics.alias("assigned")
    parent = sessions.alias("parent")
    parent_mechanic = mechanics.alias("parent_mechanic")
    query = (
        sa.select(
            r.c.id,
            r.c.created_at,
            r.c.follow_up_type,
            r.c.category,
            STATE.label("state"),
            r.c.description,
            r.c.follow_up_price_cents.label("price_cents"),
            r.c.customer_id,
            profiles.c.full_name.label("customer_name"),
            users.c.email.label("customer_email"),
            _plan().label("plan"),
            r.c.assigned_mechanic_id,
            assigned.c.display_name.label("assigned_mechanic_name"),
            r.c.assigned_at,
            r.c.answered_at,
            r.c.closed_at,
            r.c.cancelled_at,
            r.c.cancel_reason,
            r.c.answer_text,
            r.c.answered_by,
            sa.func.coalesce(staff_roles.c.display_name, r.c.answered_by).label("answered_by_name"),
            r.c.parent_session_id,
            parent.c.session_type.label("parent_session_type"),
            parent.c.ended_at.label("parent_ended_at"),
            parent.c.mechanic_id.label("parent_mechanic_id"),
            parent_mechanic.c.display_name.label("parent_mechanic_name"),
            parent_mechanic.c.is_active.label("parent_mechanic_active"),
            parent.c.findings,
            parent.c.steps_taken,
            parent.c.parts_needed,
            parent.c.next_steps,
            parent.c.summary_submitted_at,
            *sla.values(),
            chosen.c.matching,
        )
        .select_from(
            chosen.join(r, r.c.id == chosen.c.id)
            .outerjoin(profiles, profiles.c.id == r.c.customer_id)
            .outerjoin(users, users.c.id == r.c.customer_id)
            .outerjoin(assigned, assigned.c.user_id == r.c.assigned_mechanic_id)
            .outerjoin(staff_roles, staff_roles.c.email == r.c.answered_by)
            .outerjoin(parent, parent.c.id == r.c.parent_session_id)
            .outerjoin(parent_mechanic, parent_mechanic.c.user_id == parent.c.mechanic_id)
        )
        .order_by(chosen.c.sort_key, r.c.created_at, r.c.id)
    )
    frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=list(QUEUE_COLUMNS))
    for column in TEXT_COLUMNS:
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def queue_size(
    conn: Connection,
    *,
    now: dt.datetime,
    rules: FollowUpRules = FollowUpRules(),
    states: Sequence[str] = WAITING,
    types: Sequence[str] = (),
    plans: Sequence[str] = (),
    mechanic_id=None,
    due: str | None = None,
) -> pd.DataFrame:
    """How many follow-ups ``queue`` lists for these filters (one row: ``follow_ups``), to page it."""
    query = _matching(
        sa.select(sa.func.count().label("follow_ups")),
        _sla_columns(rules, now),
        now,
        states=states,
        types=types,
        plans=plans,
        mechanic_id=mechanic_id,
        due=due,
    )
    return pd.DataFrame(conn.execute(query).mappings().all(), columns=["follow_ups"])


def summary(conn: Connection, *, now: dt.datetime, rules: FollowUpRules = FollowUpRules()) -> pd.DataFrame:
    """One row, whatever the filters: ``open`` (unassigned), ``assigned``, ``waiting`` (both),
    ``breached`` and ``due_soon`` (of the waiting ones), ``soon`` (waiting, due within the next
    ``SOON_MINUTES``: the queue's ``due="soon"``) and ``answered`` (to close)."""
    sla = _sla_columns(rules, now)
    counted = (
        sa.select(STATE.label("state"), sla["sla_state"], _due_filter("soon", sla, now).label("soon"))
        .where(r.c.is_follow_up, STATE.in_((*WAITING, "answered")))
        .subquery("counted")
    )
    query = sa.select(
        *[sa.func.count().filter(counted.c.state == s).label(s) for s in ("open", "assigned", "answered")],
        sa.func.count().filter(counted.c.state.in_(WAITING)).label("waiting"),
        *[sa.func.count().filter(counted.c.sla_state == s).label(s) for s in ("breached", "due_soon")],
        sa.func.count().filter(counted.c.soon).label("soon"),
    )
    return pd.DataFrame(conn.execute(query).mappings().all()).astype("int64")


ASSIGNEE_COLUMNS = (
    "user_id",
    "display_name",
    "specialties",
    "avg_rating",
    "total_reviews",
    "open_items",
    "matches",
    "free_today",
)


STEADY_HOURS = 25  # a local day lies within 25 hours either side of any instant of it


def _local_day(zone: sa.ColumnElement, now: dt.datetime) -> sa.ColumnElement:
    return sa.cast(sa.func.timezone(zone, _at(now)), sa.Date)


def _weekday(day: sa.ColumnElement) -> sa.ColumnElement:
    """0=Sunday..6=Saturday, as ``day_of_week`` counts (PostgreSQL and DuckDB)."""
    return sa.cast(sa.extract("dow", day), sa.Integer)


def _hours_left_today(now: dt.datetime) -> sa.ColumnElement:
    """Per mechanic (a correlated ``mechanics`` row joined to its override of today, ``ov``):
    whether a window of today's availability ends after ``now``, compared on their wall clock;
    NULL where their zone's UTC offset changes within ``STEADY_HOURS`` of now (a daylight-saving
    day, where the calendar rules' reading of a skipped or repeated time counts; see
    ``_free_today``). Elsewhere a local time is the instant at that one offset, so this is
    ``availability_windows``' answer: an override replaces the weekday's slots, all day off
    when it is not available."""
    m, weekly, ov = mechanics, mechanic_availability_slots, mechanic_availability_overrides
    at, span = _at(now), dt.timedelta(hours=STEADY_HOURS)
    local_now = sa.func.timezone(m.c.timezone, at)
    day = _local_day(m.c.timezone, now)
    span_seconds = _seconds(sa.literal(STEADY_HOURS * 3600, sa.Integer))
    steady = (sa.func.timezone(m.c.timezone, _at(now - span)) == local_now - span_seconds) & (
        sa.func.timezone(m.c.timezone, _at(now + span)) == local_now + span_seconds
    )
    weekly_left = sa.exists().where(
        weekly.c.mechanic_id == m.c.user_id,
        weekly.c.day_of_week == _weekday(day),
        weekly.c.is_available,
        day + weekly.c.end_time > local_now,
    )
    left = sa.case(
        (ov.c.id.is_(None), weekly_left),
        (~ov.c.is_available, sa.false()),
        (ov.c.start_time.is_(None), weekly_left),
        else_=day + ov.c.end_time > local_now,
    )
    return sa.case((steady, left))


def _free_today(conn: Connection, now: dt.datetime, zones: Sequence[str]) -> set:
    """The active mechanics of ``zones`` with availability left today in their own timezone (a
    window that ends after ``now``) by the calendar rules (``availability_windows``), reading only
    today's hours: each one's weekly slots of their local weekday and their override of that date."""
    m, weekly, ov = mechanics, mechanic_availability_slots, mechanic_availability_overrides
    today = (
        sa.select(m.c.user_id, m.c.timezone, _local_day(m.c.timezone, now).label("day"))
        .where(m.c.is_active, m.c.timezone.in_(zones))
        .subquery("today")
    )
    query = sa.select(
        today,
        ov.c.is_available,
        ov.c.start_time,
        ov.c.end_time,
        ov.c.price_multiplier,
        weekly.c.start_time,
        weekly.c.end_time,
        weekly.c.price_multiplier,
    ).select_from(
        today.outerjoin(ov, (ov.c.mechanic_id == today.c.user_id) & (ov.c.date == today.c.day)).outerjoin(
            weekly,
            (weekly.c.mechanic_id == today.c.user_id)
            & (weekly.c.day_of_week == _weekday(today.c.day))
            & weekly.c.is_available,
        )
    )
    zone_of, days, slots, overrides = {}, {}, defaultdict(list), {}
    for mechanic_id, zone, day, *override, start, end, multiplier in conn.execute(query):
        if mechanic_id not in days:
            zone_of[mechanic_id], days[mechanic_id] = zone, day
            if override[0] is not None:
                overrides[mechanic_id] = (Override(day, *override),)
        if start is not None:
            slots[mechanic_id].append(WeeklySlot(day_of_week(day), start, end, multiplier))
    free = set()
    for mechanic_id in slots.keys() | overrides.keys():
        calendar = Calendar(
            mechanic_id, zone_of[mechanic_id], tuple(slots[mechanic_id]), overrides.get(mechanic_id, ())
        )
        if any(window.end > now for window in availability_windows(calendar, days[mechanic_id], 1)):
            free.add(mechanic_id)
    return free


def assignee_options(conn: Connection, *, now: dt.datetime, category: str | None = None) -> pd.DataFrame:
    """Active mechanics to assign a follow-up to, best matches first: ``ASSIGNEE_COLUMNS``, with
    ``specialties`` (a list), ``avg_rating`` (None before a first review), ``open_items``
    (follow-ups assigned to them and not answered yet), ``matches`` (``category`` is one of
    their specialties) and ``free_today`` (availability left today in their own timezone, by
    the calendar rules: ``dashboard.domain.calendars.slots.availability_windows``, ignoring
    sessions booked in it). Order: matching the category, free today, fewest open, best
    rated, then by name.

    One query, served by indexes (the assigned follow-ups' for the load, today's override and
    weekday slots of each mechanic for ``free_today``); on a daylight-saving day in a mechanic's
    zone a second one reads that zone's hours for the calendar rules."""
    m, ov = mechanics, mechanic_availability_overrides
    load = (
        sa.select(r.c.assigned_mechanic_id, sa.func.count().label("open_items"))
        .where(r.c.follow_up_state == "assigned")
        .group_by(r.c.assigned_mechanic_id)
        .subquery("load")
    )
    open_items = sa.func.coalesce(load.c.open_items, 0)
    matches = m.c.specialties.any(category) if category else sa.false()
    rated = m.c.total_reviews > 0
    today = _local_day(m.c.timezone, now)  # checks that now is timezone-aware
    query = (
        sa.select(
            m.c.user_id,
            m.c.display_name,
            m.c.specialties,
            sa.case((rated, sa.cast(m.c.avg_rating, sa.Double))).label("avg_rating"),
            m.c.total_reviews,
            open_items.label("open_items"),
            sa.func.coalesce(matches, sa.false()).label("matches"),
            _hours_left_today(now).label("free_today"),
            m.c.timezone,
        )
        .select_from(
            m.outerjoin(load, load.c.assigned_mechanic_id == m.c.user_id).outerjoin(
                ov, (ov.c.mechanic_id == m.c.user_id) & (ov.c.date == today)
            )
        )
        .where(m.c.is_active)
        .order_by(
            sa.func.coalesce(matches, sa.false()).desc(),
            open_items,
            sa.case((rated, m.c.avg_rating), else_=-1).desc(),
            m.c.display_name,
            m.c.user_id,
        )
    )
    frame = pd.DataFrame(conn.execute(query).mappings().all(), columns=[*ASSIGNEE_COLUMNS, "timezone"])
    frame["specialties"] = [list(v) if isinstance(v, (list, tuple)) else [] for v in frame["specialties"]]
    unsettled = frame.free_today.isna()
    if unsettled.any():  # a daylight-saving day in their zone: the calendar rules decide
        free = _free_today(conn, now, sorted(set(frame.timezone[unsettled])))
        frame.loc[unsettled, "free_today"] = [mechanic_id in free for mechanic_id in frame.user_id[unsettled]]
    frame = frame.drop(columns="timezone").astype(
        {"open_items": "int64", "total_reviews": "int64", "matches": bool, "free_today": bool}
    )
    frame["avg_rating"] = frame["avg_rating"].astype("float64")
    order = frame.sort_values(["matches", "free_today"], ascending=False, kind="stable")
    return order.reset_index(drop=True)


def weekly(conn: Connection, *, period: Period) -> pd.DataFrame:
    """One row per week (Monday in the period's timezone) that overlaps the period:
    ``week``, ``days`` (how many of its days are in the period: fewer than 7 for a partial
    first or last week), ``follow_ups`` asked in the period that week, how many of them were
    ``answered``, and their ``median_hours_to_answer`` (NaN when none)."""
    start, end = period.bounds()
    week = sa.cast(sa.func.date_trunc("week", sa.func.timezone(period.tz, r.c.created_at)), sa.Date).label("week")
    hours = sa.cast((sa.extract("epoch", r.c.answered_at) - sa.extract("epoch", r.c.created_at)) / 3600, sa.Double)
    asked = (
        sa.select(week, r.c.answered_at, hours.label("hours"))
        .where(r.c.is_follow_up, r.c.created_at >= start, r.c.created_at < end)
        .subquery("asked")
    )
    query = sa.select(
        asked.c.week,
        sa.func.count().label("follow_ups"),
        sa.func.count(asked.c.answered_at).label("answered"),
        sa.cast(sa.func.percentile_cont(0.5).within_group(asked.c.hours), sa.Double).label("median_hours_to_answer"),
    ).group_by(asked.c.week)
    found = {row.week: row for row in conn.execute(query)}
    first = period.start - dt.timedelta(days=period.start.weekday())
    weeks = [first + dt.timedelta(weeks=i) for i in range((period.end - first).days // 7 + 1)]
    return pd.DataFrame(
        {
            "week": weeks,
            "days": pd.Series(
                [(min(w + dt.timedelta(days=6), period.end) - max(w, period.start)).days + 1 for w in weeks],
                dtype="int64",
            ),
            "follow_ups": pd.Series([found[w].follow_ups if w in found else 0 for w in weeks], dtype="int64"),
            "answered": pd.Series([found[w].answered if w in found else 0 for w in weeks], dtype="int64"),
            "median_hours_to_answer": pd.Series(
                [found[w].median_hours_to_answer if w in found else None for w in weeks], dtype="float64"
            ),
        }
    )


def answer_events(customer_id) -> sa.Select:
    """The recorded answers to a customer's follow-ups, for the customer lookup's timeline
    (``queries.customers.timeline`` can add it to its union): ``happened_at`` (when it was
    answered), ``title`` ("Answered by <mechanic> · recorded by <staff name>") and ``detail``
    (the answer as written: show it as plain text)."""
    assigned = mechanics.alias("answering")
    recorder = sa.func.coalesce(staff_roles.c.display_name, r.c.answered_by)
    title = sa.func.concat(
        "Answered by ",
        sa.func.coalesce(assigned.c.display_name, "a mechanic no longer listed"),
        " · recorded by ",
        recorder,
    )
    return (
        sa.select(
            r.c.answered_at.label("happened_at"),
            sa.cast(title, sa.Text).label("title"),
            sa.cast(r.c.answer_text, sa.Text).label("detail"),
        )
        .select_from(
            r.outerjoin(assigned, assigned.c.user_id == r.c.assigned_mechanic_id).outerjoin(
                staff_roles, staff_roles.c.email == r.c.answered_by
            )
        )
        .where(r.c.customer_id == customer_id, r.c.is_follow_up, r.c.answer_text.isnot(None))
    )
