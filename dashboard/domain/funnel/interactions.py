"""CRM interactions and the rules of the ordered conversion funnel.

Recording
---------
``record_interaction`` is how the platform, the demo and other features write a
``crm_interactions`` row: a known type, a known customer, and a session (required for
``session`` and ``summary_viewed``) that belongs to that customer. It writes on the
caller's connection, inside the caller's transaction. It is the platform's event
intake, not a staff action, so it has no actor and no audit row.

``record_interactions`` takes the platform's batches (at most 1,000 events, each with the
platform's ``event_id``) under the same rules, checked for the whole batch with one query
per table: good events are written even when others are rejected (each rejection says its
position, a code and why), and an ``event_id`` seen before is a duplicate that writes
nothing (a unique key, so replays and concurrent senders record an event once).

The funnel
----------
A funnel is 2 to 6 distinct interaction types in order, a period (whole days in the
display timezone) and a conversion window in days. Per customer:

- **Entry**: the customer's first step-1 event in the period. Later step-1 events in the
  period do not restart the funnel; a customer is counted once.
- **Later steps**: step k is reached at the earliest step-k event at or after the time
  step k-1 was reached, if that event is at most ``window`` after the entry
  (``entry + window`` included). The window is an exact duration (days x 24 h), so it
  does not depend on the timezone; events after the period's end still count while
  they are inside the window.
- **Identical timestamps**: an event at the same instant as the previous step counts
  (steps are distinct types, so one event can never be two steps); ties resolve in
  step order.
- **Repeats**: repeated events of a step count once, at the earliest qualifying one;
  repeats before the previous step are ignored.
- **Time zones**: the period's first and last day start and end at midnight in the
  display timezone (``Period.bounds()``), and the trend groups entries by the local
  day, week (Monday) or month of that timezone. Durations are exact seconds.

Taking the earliest qualifying event at every step is also the best possible path,
so a later step is reached iff some ordered path within the window exists.

From raw events, each entry looks its steps up one by one in the index on (customer, type,
time), entries in customer order (``journeys_from_entries``, the roll-up's form too). Joining
the entries with each step's events instead (then the earliest per entry) reads every event
of the step in the period (1.9 million summary views at scale 100) and was slower.

Breakdown attributes (each customer in exactly one group, so groups sum to the total):
plan and acquisition channel from the profile as it is now; vehicle make of the
customer's latest request made at or before entry; mechanic specialty: the first listed
specialty of the mechanic who held the customer's first completed session (the first
``session`` interaction) at or after entry and inside the window, else "(no session)".
Raw events read the profile and the mechanic as they are now, the roll-up as they were
when it last computed the customer's rows (a refresh recomputes the customers whose
profile or whose mechanic's specialties changed since).

Roll-up
-------
Because every later step is the earliest event after the previous one, the step times
of an entry do not depend on the window: reached within window W iff the unbounded
time is at most ``entry + W``. So ``crm_funnel_progress`` stores, per tracked funnel,
customer and distinct step-1 time, the unbounded step times, the previous step-1 time
and the attributes; a period's funnel is the rows whose entry is in the period and whose
previous step-1 time is not (``journeys_from_rollup``). A funnel whose steps are a
prefix of a tracked funnel reads the roll-up; any other computes from raw events
(``journeys_from_events``). A period of whole UTC days reads the roll-up's daily counts
instead of its rows (``dashboard/domain/funnel/daily.py``).
``dashboard/domain/funnel/rollups.py`` keeps both fresh.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from dashboard.core import schema as s
from dashboard.core.db import retry_on_conflict
from dashboard.core.errors import Invalid
from dashboard.core.period import Period, period_problem, timezones
from dashboard.core.validation import parse_uuid

STEP_LABELS = {
    "intake": "Intake request",
    "session": "Session completed",
    "summary_viewed": "Summary viewed",
    "upsell_shown": "Upsell shown",
    "upsell_clicked": "Upsell clicked",
    "purchase": "Purchase",
}
DEFAULT_STEPS = ("intake", "session", "summary_viewed", "upsell_clicked", "purchase")
# Funnels the roll-up keeps: the default, and every type in the platform's order.
TRACKED_FUNNELS = (DEFAULT_STEPS, s.INTERACTION_TYPES)
MIN_STEPS = 2
DEFAULT_WINDOW_DAYS = 14
MAX_WINDOW_DAYS = 90
NEEDS_SESSION = ("session", "summary_viewed")
# Breakdown dimensions, and the columns of a journey they come from (module docstring).
DIMENSIONS = ("plan", "acquisition_channel", "vehicle_make", "specialty")
ATTRIBUTES = ("vehicle_make", "session_at", "mechanic_id", "plan", "acquisition_channel", "specialty")
UNKNOWN, NO_SESSION = "(unknown)", "(no session)"
MAX_METADATA_BYTES = 4096
FUTURE_TOLERANCE = dt.timedelta(minutes=5)


class CrmInputError(Invalid):
    """Input that breaks a CRM rule; the message says which and how to fix it.

    ``code`` names the rule for callers that report it (e.g. the API's batch ingest);
    the API answers it as ``interaction_rejected``."""

    def __init__(self, message: str, code: str = "invalid"):
        super().__init__(message)
        self.code = code


# --- recording interactions ----------------------------------------------------------

MAX_BATCH = 1000
EVENT_FIELDS = ("event_id", "customer_id", "interaction_type", "occurred_at", "session_id", "request_id", "metadata")
REQUIRED_EVENT_FIELDS = ("event_id", "customer_id", "interaction_type", "occurred_at")


def _metadata(value: Mapping | None) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise CrmInputError("Interaction metadata must be a JSON object.")
    try:
        text = json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError):
        raise CrmInputError(
            "Interaction metadata must hold only JSON values (text, finite numbers, lists, objects)."
        ) from None
    if _has_nul(value):
        raise CrmInputError("Interaction metadata contains a NUL character.")
    if len(text.encode()) > MAX_METADATA_BYTES:
        raise CrmInputError(f"Interaction metadata is over {MAX_METADATA_BYTES:,} bytes.")
    return json.loads(text)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(map(_has_nul, value))
    return False


def parse_moment(value: Any, what: str = "The interaction time", error: type[Exception] = CrmInputError) -> dt.datetime:
    """When something happened: a datetime with a timezone (or its ISO 8601 text), not in the future."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise error(f"{what} {value[:40]!r} is not an ISO 8601 time.") from None
    if not isinstance(value, dt.datetime):
        raise error(f"{what} must be a date and time with a timezone.")
    if value.tzinfo is None or value.utcoffset() is None:
        raise error(f"{what} needs a timezone: send a date and time with a timezone.")
    if value > dt.datetime.now(dt.UTC) + FUTURE_TOLERANCE:
        raise error(f"{what} {value:%Y-%m-%d %H:%M %Z} is in the future.")
    return value


def _interaction_values(
    *, customer_id: Any, interaction_type: Any, session_id: Any, metadata: Mapping | None, occurred_at: Any
) -> dict:
    """The row of an interaction, checked for everything that needs no database."""
    if not isinstance(interaction_type, str) or interaction_type not in s.INTERACTION_TYPES:
        raise CrmInputError(
            f"Unknown interaction type {str(interaction_type)[:40]!r}; use one of {', '.join(s.INTERACTION_TYPES)}."
        )
    customer = parse_uuid(customer_id, "Customer", CrmInputError)
    session = None if session_id is None else parse_uuid(session_id, "Session", CrmInputError)
    if session is None and interaction_type in NEEDS_SESSION:
        raise CrmInputError(f"A {interaction_type!r} interaction needs the session it is about.")
    values = {
        "customer_id": customer,
        "interaction_type": interaction_type,
        "session_id": session,
        "metadata": _metadata(metadata),
    }
    if occurred_at is not None:
        values["created_at"] = parse_moment(occurred_at)
    return values


def _check_owners(values: Mapping, customers: set, session_owners: Mapping) -> None:
    """The customer exists and the session (if any) is theirs; ``customers`` and
    ``session_owners`` are what the database holds of the ids concerned."""
    customer, session = values["customer_id"], values["session_id"]
    if customer not in customers:
        raise CrmInputError(f"Unknown customer {customer}.", "unknown_customer")
    if session is not None:
        if session not in session_owners:
            raise CrmInputError(f"Unknown session {session}.", "unknown_session")
        if session_owners[session] != customer:
            raise CrmInputError(f"Session {session} belongs to another customer.", "other_customer")


def _known(conn: Connection, customers: set, sessions: set) -> tuple[set, dict]:
    """Which of ``customers`` exist, and the customer of each of ``sessions`` that exists."""
    found = (
        set(conn.execute(sa.select(s.users.c.id).where(s.users.c.id.in_(customers))).scalars()) if customers else set()
    )
    owners = (
        dict(
            conn.execute(
                sa.select(s.sessions.c.id, s.sessions.c.customer_id).where(s.sessions.c.id.in_(sessions))
            ).all()
        )
        if sessions
        else {}
    )
    return found, owners


def record_interaction(
    conn: Connection,
    *,
    customer_id: Any,
    interaction_type: str,
    session_id: Any = None,
    metadata: Mapping | None = None,
    occurred_at: dt.datetime | None = None,
    event_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Insert one interaction and return its id; CrmInputError (nothing written) if it breaks a rule.

    ``event_id``: the sender's id of the event (unique), for interactions that must be
    recorded once."""
    values = _interaction_values(
        customer_id=customer_id,
        interaction_type=interaction_type,
        session_id=session_id,
        metadata=metadata,
        occurred_at=occurred_at,
    )
    customers, owners = _known(conn, {values["customer_id"]}, {values["session_id"]} - {None})
    _check_owners(values, customers, owners)
    new_id = uuid.uuid4()
    conn.execute(s.crm_interactions.insert().values(id=new_id, event_id=event_id, **values))
    return new_id


@dataclass(frozen=True)
class IngestResult:
    """What became of a batch: events written, replays of events already recorded, and
    the rejected ones as (position in the batch, code, message)."""

    accepted: int
    duplicates: int
    rejected: list[tuple[int, str, str]]


def _event_values(event: Any) -> tuple[uuid.UUID, dict]:
    """An event of a batch as (event_id, interaction row); CrmInputError if it breaks a rule."""
    if not isinstance(event, Mapping):
        raise CrmInputError("An event must be an object.")
    unknown = sorted(str(k)[:40] for k in event if k not in EVENT_FIELDS)
    if unknown:
        raise CrmInputError(f"Unknown event field(s): {', '.join(unknown)}; use {', '.join(EVENT_FIELDS)}.")
    missing = [k for k in REQUIRED_EVENT_FIELDS if event.get(k) is None]
    if missing:
        raise CrmInputError(f"Missing event field(s): {', '.join(missing)}.")
    event_id = parse_uuid(event["event_id"], "Event", CrmInputError)
    metadata = event.get("metadata")
    if event.get("request_id") is not None:
        request = parse_uuid(event["request_id"], "Request", CrmInputError)
        if metadata is not None and not isinstance(metadata, Mapping):
            raise CrmInputError("Interaction metadata must be a JSON object.")
        metadata = {**(metadata or {}), "request_id": str(request)}
    return event_id, _interaction_values(
        customer_id=event["customer_id"],
        interaction_type=event["interaction_type"],
        session_id=event.get("session_id"),
        metadata=metadata,
        occurred_at=event["occurred_at"],
    )


def record_interactions(engine: Engine, events: Sequence[Mapping]) -> IngestResult:
    """Record a batch of the platform's interaction events (at most ``MAX_BATCH``) in one transaction.

    Each event: ``event_id`` (the platform's UUID), ``customer_id``, ``interaction_type``,
    ``occurred_at`` (aware datetime or ISO 8601 text), optional ``session_id``,
    ``request_id`` (kept in the metadata, as intake events carry it) and ``metadata``.
    Good events are written even when others are rejected; an event whose ``event_id`` was
    recorded before (or earlier in the batch) is a duplicate and writes nothing.
    """
    if isinstance(events, (str, bytes, Mapping)) or not isinstance(events, Sequence):
        raise CrmInputError("Send the events as a list.")
    if len(events) > MAX_BATCH:
        raise CrmInputError(f"A batch holds at most {MAX_BATCH:,} events; this one has {len(events):,}.")
    rejected: list[tuple[int, str, str]] = []
    parsed: list[tuple[int, uuid.UUID, dict]] = []
    for position, event in enumerate(events):
        try:
            parsed.append((position, *_event_values(event)))
        except CrmInputError as exc:
            rejected.append((position, exc.code, str(exc)))
    # a concurrent batch may write the same event ids first, or remove a customer: read again
    accepted, duplicates, unowned = retry_on_conflict(lambda: _write_events(engine, parsed))
    return IngestResult(accepted, duplicates, sorted(rejected + unowned))


def _write_events(engine: Engine, parsed: list[tuple[int, uuid.UUID, dict]]) -> tuple[int, int, list]:
    """Insert the parsed events whose customer and session check out, in one transaction:
    (written, duplicates, rejected)."""
    rejected = []
    with engine.begin() as conn:
        customers, owners = _known(
            conn, {v["customer_id"] for _, _, v in parsed}, {v["session_id"] for _, _, v in parsed} - {None}
        )
        rows, seen, duplicates = [], set(), 0
        for position, event_id, values in parsed:
            try:
                _check_owners(values, customers, owners)
            except CrmInputError as exc:
                rejected.append((position, exc.code, str(exc)))
                continue
            if event_id in seen:
                duplicates += 1
                continue
            seen.add(event_id)
            rows.append({"id": uuid.uuid4(), "event_id": event_id, **values})
        accepted = 0
        if rows:
            i = s.crm_interactions
            # one statement compiled once, sent as multi-row batches (insertmanyvalues)
            partial = i.c.event_id.isnot(None) if conn.dialect.name == "postgresql" else None
            accepted = len(
                conn.execute(
                    pg_insert(i)
                    .on_conflict_do_nothing(index_elements=[i.c.event_id], index_where=partial)
                    .returning(i.c.id),
                    rows,
                ).all()
            )
        duplicates += len(rows) - accepted
    return accepted, duplicates, rejected


# --- the funnel definition -----------------------------------------------------------


@dataclass(frozen=True)
class FunnelSpec:
    """A validated funnel: ordered distinct steps, the period of entry, the window in days."""

    steps: tuple[str, ...]
    period: Period
    window_days: int = DEFAULT_WINDOW_DAYS

    def __post_init__(self):
        steps = tuple(self.steps)
        unknown = [step for step in steps if step not in s.INTERACTION_TYPES]
        if unknown:
            raise CrmInputError(
                f"Unknown funnel step {str(unknown[0])[:40]!r}; choose from {', '.join(s.INTERACTION_TYPES)}."
            )
        if not MIN_STEPS <= len(steps) <= s.FUNNEL_MAX_STEPS:
            raise CrmInputError(f"Choose {MIN_STEPS} to {s.FUNNEL_MAX_STEPS} steps; {len(steps)} chosen.")
        if len(set(steps)) != len(steps):
            raise CrmInputError("Each step can appear once in a funnel.")
        if (
            isinstance(self.window_days, bool)
            or not isinstance(self.window_days, int)
            or not 1 <= self.window_days <= MAX_WINDOW_DAYS
        ):
            raise CrmInputError(f"The conversion window must be a whole number of days from 1 to {MAX_WINDOW_DAYS}.")
        problem = period_problem(self.period.start, self.period.end)
        if problem:
            raise CrmInputError(problem)
        if self.period.tz not in timezones():
            raise CrmInputError(f"Unknown timezone {self.period.tz[:40]!r}.")
        object.__setattr__(self, "steps", steps)

    @property
    def window(self) -> dt.timedelta:
        return dt.timedelta(days=self.window_days)

    def step_index(self, value: Any) -> int:
        """A 1-based step number of this funnel, validated."""
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= len(self.steps):
            raise CrmInputError(f"Step must be a number from 1 to {len(self.steps)}.")
        return value


def step_column(k: int) -> str:
    """Name of the column holding the time step ``k`` (2..6) was reached."""
    return f"step{k}_at"


def serving_funnel(steps: Sequence[str]) -> tuple[str, ...] | None:
    """The tracked funnel whose roll-up serves ``steps`` (they are its first steps), if any."""
    steps = tuple(steps)
    return next((tracked for tracked in TRACKED_FUNNELS if tracked[: len(steps)] == steps), None)


def steps_key(steps: Sequence[str]) -> str:
    return ">".join(steps)


# --- journeys: one row per entered customer, from raw events or from the roll-up ---------


def _window(value: dt.timedelta) -> sa.BindParameter:
    return sa.bindparam(None, value, type_=sa.Interval())


def journeys_from_entries(
    entries: sa.FromClause,
    steps: Sequence[str],
    *,
    window: dt.timedelta | None = None,
    events_from: dt.datetime | None = None,
    events_until: dt.datetime | None = None,
    attributes: bool = False,
) -> sa.Select:
    """Per row of ``entries`` (a CTE of customer_id, entry_at, any other columns): the earliest
    time of each later step in order (``step2_at`` ...), NULL where not reached. Each step is
    the first event of its type at or after the step before, looked up for each entry in the
    index on (customer, type, time) as its first index entry in time order (``LIMIT 1``: a plain
    index read, where ``min()`` added a sub-plan per lookup); ``entries`` in customer order
    keeps those lookups close. The events path and the roll-up share this one form.

    ``window`` limits each step to ``entry + window``; ``events_from``/``events_until`` only
    prune the events read (callers pass bounds no qualifying event lies outside of).
    ``attributes`` adds the breakdown attributes (module docstring): ``vehicle_make``,
    ``session_at`` and ``mechanic_id`` (the first session's), ``plan``, ``acquisition_channel``
    and ``specialty`` (the first listed specialty of the first session's mechanic).
    """
    i = s.crm_interactions
    key = (entries.c.customer_id, entries.c.entry_at)
    columns, joined, at = [*entries.c], entries, entries.c.entry_at
    for k, kind in enumerate(steps[1:], start=2):
        conditions = [i.c.customer_id == key[0], i.c.interaction_type == kind, i.c.created_at >= at]
        if window is not None:
            conditions.append(i.c.created_at <= key[1] + _window(window))
        if events_from is not None:
            conditions.append(i.c.created_at >= events_from)
        if events_until is not None:
            conditions.append(i.c.created_at <= events_until)
        step = (
            sa.select(i.c.created_at.label("at"))
            .where(*conditions)
            .order_by(i.c.created_at)
            .limit(1)
            .lateral(f"reach{k}")
        )
        joined, at = joined.outerjoin(step, sa.true()), step.c.at
        columns.append(at.label(step_column(k)))
    if attributes:
        vehicle, session = _vehicle_at_entry(entries), _first_session(entries)
        p, m = s.profiles, s.mechanics
        joined = (
            joined.outerjoin(vehicle, sa.and_(vehicle.c.customer_id == key[0], vehicle.c.entry_at == key[1]))
            .outerjoin(session, sa.and_(session.c.customer_id == key[0], session.c.entry_at == key[1]))
            .outerjoin(p, p.c.id == key[0])
            .outerjoin(m, m.c.user_id == session.c.mechanic_id)
        )
        columns += [
            vehicle.c.vehicle_make,
            session.c.session_at,
            session.c.mechanic_id,
            p.c.plan,
            p.c.acquisition_channel,
            m.c.specialties[1].label("specialty"),
        ]
    return sa.select(*columns).select_from(joined)


def _first_ranked(
    entries: sa.FromClause, source: sa.FromClause, on: sa.ColumnElement[bool], columns: list, order_by: list, name: str
) -> sa.CTE:
    """Per entry, the first row of ``source`` matching ``on`` in ``order_by``."""
    ranked = (
        sa.select(
            entries.c.customer_id,
            entries.c.entry_at,
            *columns,
            sa.func.row_number()
            .over(partition_by=[entries.c.customer_id, entries.c.entry_at], order_by=order_by)
            .label("rank"),
        )
        .select_from(entries.join(source, on))
        .subquery(f"{name}_ranked")
    )
    return sa.select(*[c for c in ranked.c if c.name != "rank"]).where(ranked.c.rank == 1).cte(name)


def _vehicle_at_entry(entries: sa.FromClause) -> sa.CTE:
    r = s.requests
    return _first_ranked(
        entries,
        r,
        sa.and_(r.c.customer_id == entries.c.customer_id, r.c.created_at <= entries.c.entry_at),
        [r.c.vehicle_make],
        [r.c.created_at.desc(), r.c.vehicle_make.asc().nulls_last()],
        "vehicle",
    )


def _first_session(entries: sa.FromClause) -> sa.CTE:
    i, ses = s.crm_interactions, s.sessions
    source = i.outerjoin(ses, ses.c.id == i.c.session_id)
    on = sa.and_(
        i.c.customer_id == entries.c.customer_id,
        i.c.interaction_type == "session",
        i.c.created_at >= entries.c.entry_at,
    )
    return _first_ranked(
        entries,
        source,
        on,
        [i.c.created_at.label("session_at"), ses.c.mechanic_id],
        [i.c.created_at, ses.c.mechanic_id.asc().nulls_last()],
        "first_session",
    )


def journeys_from_events(spec: FunnelSpec, *, attributes: bool = False) -> sa.Subquery:
    """The spec's journeys computed from ``crm_interactions`` (entries: first step-1 event in the period)."""
    i = s.crm_interactions
    start, end = spec.period.bounds()
    entries = (
        sa.select(i.c.customer_id, sa.func.min(i.c.created_at).label("entry_at"))
        .where(i.c.interaction_type == spec.steps[0], i.c.created_at >= start, i.c.created_at < end)
        .group_by(i.c.customer_id)
        .order_by(i.c.customer_id)
        .cte("entries")
    )
    return journeys_from_entries(
        entries,
        spec.steps,
        window=spec.window,
        events_from=start,
        events_until=end + spec.window,
        attributes=attributes,
    ).subquery("journeys")


def journeys_from_rollup(spec: FunnelSpec, funnel_id: int) -> sa.Subquery:
    """The spec's journeys read from ``crm_funnel_progress`` of the tracked funnel ``funnel_id``."""
    p = s.crm_funnel_progress
    start, end = spec.period.bounds()
    steps = [p.c[step_column(k)] for k in range(2, len(spec.steps) + 1)]
    return (
        sa.select(p.c.customer_id, p.c.entry_at, *steps, *[p.c[name] for name in ATTRIBUTES])
        .where(
            p.c.funnel_id == funnel_id,
            p.c.entry_at >= start,
            p.c.entry_at < end,
            sa.or_(p.c.prev_entry_at.is_(None), p.c.prev_entry_at < start),
        )
        .subquery("journeys")
    )


def usable_rollup(steps: Sequence[str]) -> sa.ColumnElement[bool]:
    """The condition on ``crm_funnel_rollups`` of the roll-up that can serve ``steps``: tracked,
    refreshed, and holding rows unless there is nothing to roll up (its rows are emptied
    with the interactions, e.g. by reloading the demo, while its refresh time stays)."""
    r, p, i = s.crm_funnel_rollups, s.crm_funnel_progress, s.crm_interactions
    tracked = serving_funnel(steps)
    if tracked is None:
        return sa.false()
    return sa.and_(
        r.c.steps == steps_key(tracked),
        r.c.refreshed_at.isnot(None),
        sa.or_(sa.exists().where(p.c.funnel_id == r.c.id), ~sa.exists().where(i.c.interaction_type == tracked[0])),
    )


def rollup_id(conn: Connection, steps: Sequence[str]) -> int | None:
    """The id of the roll-up that can serve ``steps``, or None."""
    r = s.crm_funnel_rollups
    return conn.execute(sa.select(r.c.id).where(usable_rollup(steps))).scalar_one_or_none()


SOURCES = ("auto", "events", "rollup")


def serving_rollup(conn: Connection, spec: FunnelSpec, source: str = "auto") -> int | None:
    """The id of the roll-up that gives the numbers of ``spec``, None for raw events: ``source``
    ``"rollup"`` (CrmInputError when none serves the steps), ``"events"``, or ``"auto"`` (the
    roll-up when a built one serves the steps)."""
    if source not in SOURCES:
        raise CrmInputError(f"Unknown source {str(source)[:20]!r}.")
    funnel_id = rollup_id(conn, spec.steps) if source != "events" else None
    if funnel_id is None and source == "rollup":
        raise CrmInputError(f"No roll-up serves the funnel {steps_key(spec.steps)}; run `python -m dashboard funnel`.")
    return funnel_id


def journeys(spec: FunnelSpec, funnel_id: int | None, *, attributes: bool = False) -> sa.Subquery:
    """The journeys of ``spec``: from the roll-up ``funnel_id`` (``serving_rollup``), or from raw
    events when it is None (``attributes``: with the breakdown attributes)."""
    if funnel_id is not None:
        return journeys_from_rollup(spec, funnel_id)
    return journeys_from_events(spec, attributes=attributes)


def attribute(journey: sa.FromClause, dimension: str) -> sa.ColumnElement[str]:
    """The journey's group in the breakdown ``dimension`` (one of DIMENSIONS) as the module
    docstring defines it, leaving out the window: a specialty is its session's even when the
    session is outside the window (the caller puts those journeys in NO_SESSION)."""
    if dimension == "vehicle_make":
        return sa.func.coalesce(sa.func.nullif(sa.func.trim(journey.c.vehicle_make), ""), UNKNOWN)
    return sa.func.coalesce(journey.c[dimension], UNKNOWN)


def within_window(journey: sa.FromClause, spec: FunnelSpec, at: sa.ColumnElement) -> sa.ColumnElement[bool]:
    """Whether ``at`` is at most the window after the journey's entry (NULL when ``at`` is)."""
    return at <= journey.c.entry_at + _window(spec.window)


def reached(journey: sa.FromClause, spec: FunnelSpec, k: int) -> sa.ColumnElement[bool]:
    """Whether the journey reached step ``k`` (1-based) inside the window."""
    return sa.true() if k == 1 else within_window(journey, spec, journey.c[step_column(k)])


def reached_at(journey: sa.FromClause, k: int) -> sa.ColumnElement:
    return journey.c.entry_at if k == 1 else journey.c[step_column(k)]


def seconds_between(earlier: sa.ColumnElement, later: sa.ColumnElement) -> sa.ColumnElement[float]:
    return sa.cast(sa.extract("epoch", later - earlier), sa.Double)
