"""Mechanic calendars: weekly slots, overrides, booked sessions, availability and prices.

Plain reads aggregate in SQL (sessions per local hour use ``timezone(tz, ts)``,
which PostgreSQL and DuckDB both provide). Availability and bookable slots follow the slot
rules of ``dashboard.domain.calendars.slots``, so what the page shows is exactly what customers
are offered. For many mechanics at once the hour grid and ``bookable`` read each day's hours in
SQL (``_windows``: steps 1 and 2 of the rules, local times read with the rules' ``wall_clock``),
and ``bookable`` runs the other steps on arrays (``open_starts``, as the booking check does);
the tests hold them to the Python rules that ``preview`` and the booking check use. A
mechanic whose timezone is not an IANA name offers nothing here (the page lists them).

``mechanic_ids`` is a tuple of ids, or None for every active mechanic.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.core import schema as s
from dashboard.core.period import Period
from dashboard.domain.calendars.edits import BASE_PRICE, CALENDAR, apply_peak
from dashboard.domain.calendars.slots import (
    BLOCKING_STATUSES,
    EPOCH,
    SECOND_US,
    Calendar,
    Override,
    SlotRules,
    Starts,
    ValidationError,
    WeeklySlot,
    Window,
    availability_windows,
    bookable_slots,
    bookable_starts,
    day_of_week,
    is_known_timezone,
    load_calendars,
    open_starts,
    parse_timezone,
    parse_uuid,
    price_cents,
    wall_clock,
    wall_seconds,
)
from dashboard.domain.calendars.slots import (
    base_prices as price_list,
)
from dashboard.domain.calendars.slots import (
    weekly_slots as slots_by_mechanic,
)

HOURS = range(24)


def _who(column: sa.ColumnElement, mechanic_ids: Sequence[str] | None) -> sa.ColumnElement[bool]:
    if mechanic_ids is None:
        return column.in_(sa.select(s.mechanics.c.user_id).where(s.mechanics.c.is_active).scalar_subquery())
    return column.in_([parse_uuid(i, "Mechanic") for i in mechanic_ids])


def _booked(mechanic_ids: Sequence[str] | None, start: dt.datetime, end: dt.datetime) -> list[sa.ColumnElement[bool]]:
    """Sessions of the mechanics that hold their time (not cancelled), scheduled in [start, end)."""
    se = s.sessions
    return [
        _who(se.c.mechanic_id, mechanic_ids),
        se.c.status.in_(BLOCKING_STATUSES),
        se.c.scheduled_at >= start,
        se.c.scheduled_at < end,
    ]


def week_bounds(week_start: dt.date, tz: str, days: int = 7) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants of the local midnights that start and end ``days`` days from ``week_start``."""
    return Period(week_start, week_start + dt.timedelta(days=days - 1), tz).bounds()


def mechanics(conn: Connection, *, active_only: bool = True) -> pd.DataFrame:
    """mechanic_id (text), display_name, timezone, is_active, by name."""
    m = s.mechanics
    query = sa.select(
        sa.cast(m.c.user_id, sa.Text).label("mechanic_id"), m.c.display_name, m.c.timezone, m.c.is_active
    ).order_by(m.c.display_name, m.c.user_id)
    if active_only:
        query = query.where(m.c.is_active)
    columns = ["mechanic_id", "display_name", "timezone", "is_active"]
    found = _columns(conn.execute(query), len(columns))  # pandas reads a list of rows cell by cell
    return pd.DataFrame(dict(zip(columns, found)) if found[0] else [], columns=columns)


def weekly_slots(conn: Connection, *, mechanic_id: str) -> pd.DataFrame:
    """slot_id (text), day_of_week, start_time, end_time, is_available, price_multiplier (float)."""
    sl = s.mechanic_availability_slots
    query = (
        sa.select(
            sa.cast(sl.c.id, sa.Text).label("slot_id"),
            sl.c.day_of_week,
            sl.c.start_time,
            sl.c.end_time,
            sl.c.is_available,
            sa.cast(sl.c.price_multiplier, sa.Double).label("price_multiplier"),
        )
        .where(sl.c.mechanic_id == parse_uuid(mechanic_id, "Mechanic"))
        .order_by(sl.c.day_of_week, sl.c.start_time)
    )
    return pd.DataFrame(
        conn.execute(query).mappings().all(),
        columns=["slot_id", "day_of_week", "start_time", "end_time", "is_available", "price_multiplier"],
    )


def overrides(conn: Connection, *, mechanic_id: str, first_day: dt.date) -> pd.DataFrame:
    """The mechanic's overrides from ``first_day`` on: date, is_available, start_time, end_time,
    price_multiplier (float), reason."""
    ov = s.mechanic_availability_overrides
    query = (
        sa.select(
            ov.c.date,
            ov.c.is_available,
            ov.c.start_time,
            ov.c.end_time,
            sa.cast(ov.c.price_multiplier, sa.Double).label("price_multiplier"),
            ov.c.reason,
        )
        .where(ov.c.mechanic_id == parse_uuid(mechanic_id, "Mechanic"), ov.c.date >= first_day)
        .order_by(ov.c.date)
    )
    return pd.DataFrame(
        conn.execute(query).mappings().all(),
        columns=["date", "is_available", "start_time", "end_time", "price_multiplier", "reason"],
    )


def base_prices(conn: Connection) -> pd.DataFrame:
    """session_type, price_cents, updated_by, updated_at for every session type (missing prices are NaN)."""
    bp = s.session_base_prices
    types = sa.values(sa.column("session_type", sa.Text), name="types").data([(t,) for t in s.SESSION_TYPES])
    query = (
        sa.select(types.c.session_type, bp.c.price_cents, bp.c.updated_by, bp.c.updated_at)
        .select_from(types.outerjoin(bp, bp.c.session_type == types.c.session_type))
        .order_by(types.c.session_type)
    )
    return pd.DataFrame(
        conn.execute(query).mappings().all(), columns=["session_type", "price_cents", "updated_by", "updated_at"]
    )


def busiest_mechanics(conn: Connection, *, start: dt.datetime, end: dt.datetime, limit: int) -> pd.DataFrame:
    """The ``limit`` active mechanics with the most booked sessions in [start, end), then by name:
    mechanic_id (text), display_name, timezone, sessions."""
    m, se = s.mechanics, s.sessions
    booked = (
        sa.select(se.c.mechanic_id, sa.func.count().label("sessions"))
        .where(se.c.status.in_(BLOCKING_STATUSES), se.c.scheduled_at >= start, se.c.scheduled_at < end)
        .group_by(se.c.mechanic_id)
        .subquery()
    )
    sessions = sa.func.coalesce(booked.c.sessions, 0)
    query = (
        sa.select(
            sa.cast(m.c.user_id, sa.Text).label("mechanic_id"),
            m.c.display_name,
            m.c.timezone,
            sessions.label("sessions"),
        )
        .select_from(m.outerjoin(booked, booked.c.mechanic_id == m.c.user_id))
        .where(m.c.is_active)
        .order_by(sessions.desc(), m.c.display_name, m.c.user_id)
        .limit(limit)
    )
    return pd.DataFrame(
        conn.execute(query).mappings().all(), columns=["mechanic_id", "display_name", "timezone", "sessions"]
    )


def booked_sessions(
    conn: Connection, *, mechanic_ids: Sequence[str] | None, start: dt.datetime, end: dt.datetime
) -> pd.DataFrame:
    """Sessions scheduled in [start, end) that hold or held their time (not cancelled):
    session_id, mechanic_id, display_name, session_type, status, scheduled_at, price_cents."""
    m, se = s.mechanics, s.sessions
    query = (
        sa.select(
            sa.cast(se.c.id, sa.Text).label("session_id"),
            sa.cast(se.c.mechanic_id, sa.Text).label("mechanic_id"),
            m.c.display_name,
            se.c.session_type,
            se.c.status,
            se.c.scheduled_at,
            se.c.price_cents,
        )
        .join(m, m.c.user_id == se.c.mechanic_id)
        .where(*_booked(mechanic_ids, start, end))
        .order_by(se.c.scheduled_at, se.c.id)
    )
    return pd.DataFrame(
        conn.execute(query).mappings().all(),
        columns=["session_id", "mechanic_id", "display_name", "session_type", "status", "scheduled_at", "price_cents"],
    )


def _booked_by_hour(mechanic_ids: Sequence[str] | None, start: dt.datetime, end: dt.datetime, tz: str) -> sa.Select:
    """local_date, hour, sessions of ``booked_by_hour``: counted per start time first, far fewer
    to convert to ``tz``."""
    se = s.sessions
    starts = (
        sa.select(se.c.scheduled_at, sa.func.count().label("sessions"))
        .where(*_booked(mechanic_ids, start, end))
        .group_by(se.c.scheduled_at)
        .subquery("starts")
    )
    local = sa.func.timezone(tz, starts.c.scheduled_at)
    local_date = sa.cast(local, sa.Date).label("local_date")
    hour = sa.cast(sa.extract("hour", local), sa.Integer).label("hour")
    return sa.select(
        local_date, hour, sa.cast(sa.func.sum(starts.c.sessions), sa.BigInteger).label("sessions")
    ).group_by(local_date, hour)


def booked_by_hour(
    conn: Connection, *, mechanic_ids: Sequence[str] | None, start: dt.datetime, end: dt.datetime, tz: str
) -> pd.DataFrame:
    """Sessions (not cancelled) per local date and hour of ``tz`` in which they start:
    local_date, hour, sessions."""
    query = _booked_by_hour(mechanic_ids, start, end, tz).order_by("local_date", "hour")
    return pd.DataFrame(conn.execute(query).mappings().all(), columns=["local_date", "hour", "sessions"])


def _calendars(
    conn: Connection, mechanic_ids: Sequence[str] | None, first_day: dt.date, days: int, bookings: bool = True
) -> list[Calendar]:
    found = load_calendars(conn, mechanic_ids, first_day, days, bookings)
    return [calendar for calendar in found.values() if is_known_timezone(calendar.timezone)]


def _clipped_windows(calendar: Calendar, start: dt.datetime, end: dt.datetime) -> Iterator[Window]:
    """The calendar's availability windows cut to [start, end)."""
    first_day = start.date() - dt.timedelta(days=1)  # local dates are within a day of UTC dates
    for window in availability_windows(calendar, first_day, (end - start).days + 3):
        if window.end > start and window.start < end:
            yield replace(window, start=max(window.start, start), end=min(window.end, end))


def availability(
    conn: Connection, *, mechanic_ids: Sequence[str] | None, start: dt.datetime, end: dt.datetime
) -> pd.DataFrame:
    """Availability windows in [start, end): mechanic_id, timezone, start_utc, end_utc,
    multiplier (float), source (weekly or override)."""
    rows = []
    first_day = start.date() - dt.timedelta(days=1)
    for calendar in _calendars(conn, mechanic_ids, first_day, (end - start).days + 3, bookings=False):
        for window in _clipped_windows(calendar, start, end):
            rows.append(
                {
                    "mechanic_id": str(calendar.mechanic_id),
                    "timezone": calendar.timezone,
                    "start_utc": window.start,
                    "end_utc": window.end,
                    "multiplier": float(window.multiplier),
                    "source": window.source,
                }
            )
    return pd.DataFrame(rows, columns=["mechanic_id", "timezone", "start_utc", "end_utc", "multiplier", "source"])


def _chosen(mechanic_ids: Sequence[str] | None) -> sa.ColumnElement[bool]:
    """The rows of ``mechanics`` that ``mechanic_ids`` names (None: the active ones); a malformed
    id is a ValidationError, as for the calendar loader."""
    if mechanic_ids is None:
        return s.mechanics.c.is_active
    return s.mechanics.c.user_id.in_([parse_uuid(i, "Mechanic", ValidationError) for i in mechanic_ids])


def _rows(name: str, columns: Sequence[tuple[str, sa.types.TypeEngine]], rows: Sequence[tuple]) -> sa.CTE:
    """``rows`` as a table of the statement: SELECTs of bound values, which SQLAlchemy compiles
    once per number of rows (it compiles a VALUES list on every run)."""
    return sa.union_all(
        *[
            sa.select(*[sa.literal(value, kind).label(column) for value, (column, kind) in zip(row, columns)])
            for row in rows
        ]
    ).cte(name)


def _clock(zone_dates: Mapping[str, tuple[dt.date, dt.date]]) -> tuple[sa.CTE, sa.CTE, Callable]:
    """Local dates and clocks for SQL: ``days``, every date from the first to the last of
    ``zone_dates`` (local_date, day_of_week, midnight: its ``wall_seconds``); ``clocks``, for each
    zone its first and last date and its ``wall_clock`` on them (timezone, first_day, last_day,
    switch, before, after); and ``instant(wall, clock)``, the epoch second of a wall time on a
    clock's row."""
    first, last = min(low for low, _ in zone_dates.values()), max(high for _, high in zone_dates.values())
    days = _rows(
        "days",
        [("local_date", sa.Date()), ("day_of_week", sa.Integer()), ("midnight", sa.BigInteger())],
        [
            (day, day_of_week(day), wall_seconds(day))
            for day in (first + dt.timedelta(days=n) for n in range((last - first).days + 1))
        ],
    )
    clocks = _rows(
        "clocks",
        [
            ("timezone", sa.Text()),
            ("first_day", sa.Date()),
            ("last_day", sa.Date()),
            ("switch", sa.BigInteger()),
            ("before", sa.BigInteger()),
            ("after", sa.BigInteger()),
        ],
        [
            (zone, low, high, *wall_clock(parse_timezone(zone), low, (high - low).days + 1))
            for zone, (low, high) in sorted(zone_dates.items())
        ],
    )

    def instant(wall: sa.ColumnElement, clock: sa.FromClause) -> sa.ColumnElement:
        return wall - sa.case((wall < clock.c.switch, clock.c.before), else_=clock.c.after)

    return days, clocks, instant


def _windows(
    chosen: sa.ColumnElement[bool], days: sa.CTE, clocks: sa.CTE, instant: Callable, *, by_mechanic: bool = False
) -> sa.CTE:
    """``availability_windows`` of the chosen mechanics in SQL, on the dates of their zone's clock
    (``_clock``), equal windows counted once: window_start, window_end (epoch seconds),
    price_multiplier, mechanics (how many), and ``by_mechanic`` mechanic_id first (one each).

    A weekly slot counts on each date with its weekday, less once for each mechanic whose override
    replaces that date (time off, or its own hours, which count instead). Wall times become
    instants on the mechanic's zone's clock, read to the second; a mechanic whose zone has no
    clock counts nowhere."""
    m, sl, ov = s.mechanics, s.mechanic_availability_slots, s.mechanic_availability_overrides
    who = [m.c.user_id.label("mechanic_id")] if by_mechanic else []

    def seconds(time: sa.ColumnElement) -> sa.ColumnElement:
        """A wall time's seconds after midnight (PostgreSQL's epoch of a time is a slow numeric:
        read once per slot, not again for each of its dates)."""
        return sa.cast(sa.extract("epoch", time), sa.Integer)

    weekly = (
        sa.select(*who, m.c.timezone, sl.c.day_of_week, sl.c.price_multiplier)
        .add_columns(
            seconds(sl.c.start_time).label("start_seconds"),
            seconds(sl.c.end_time).label("end_seconds"),
            sa.func.count().label("n"),
        )
        .join(m, m.c.user_id == sl.c.mechanic_id)
        .where(chosen, sl.c.is_available)
        .group_by(*who, m.c.timezone, sl.c.day_of_week, sl.c.start_time, sl.c.end_time, sl.c.price_multiplier)
        .subquery("weekly")
    )
    dated = (
        sa.select(
            *[ov.c[name] for name in ("mechanic_id", "is_available", "start_time", "end_time", "price_multiplier")],
            m.c.timezone,
            days.c.local_date,
            days.c.day_of_week,
            days.c.midnight,
        )
        .join(m, m.c.user_id == ov.c.mechanic_id)
        .join(days, days.c.local_date == ov.c.date)
        .where(chosen)
        .subquery("dated")
    )
    own_hours = dated.c.start_time.is_not(None)

    def hours(
        day: sa.FromClause,
        start: sa.ColumnElement,
        end: sa.ColumnElement,
        times: sa.FromClause,
        mechanics: sa.ColumnElement,
    ) -> sa.Select:
        return sa.select(
            *([day.c.mechanic_id] if by_mechanic else []),
            day.c.timezone,
            day.c.local_date,
            (day.c.midnight + start).label("start_wall"),
            (day.c.midnight + end).label("end_wall"),
            times.c.price_multiplier,
            mechanics.label("mechanics"),
        )

    weekly_days = (
        sa.select(weekly, days.c.local_date, days.c.midnight)
        .join(days, days.c.day_of_week == weekly.c.day_of_week)
        .subquery("weekly_days")
    )
    local = sa.union_all(
        hours(weekly_days, weekly_days.c.start_seconds, weekly_days.c.end_seconds, weekly_days, weekly_days.c.n),
        hours(dated, seconds(sl.c.start_time), seconds(sl.c.end_time), sl, sa.literal(-1))
        .join(
            sl,
            sa.and_(
                sl.c.mechanic_id == dated.c.mechanic_id, sl.c.day_of_week == dated.c.day_of_week, sl.c.is_available
            ),
        )
        .where(sa.or_(~dated.c.is_available, own_hours)),
        hours(dated, seconds(dated.c.start_time), seconds(dated.c.end_time), dated, sa.literal(1)).where(
            dated.c.is_available, own_hours
        ),
    ).subquery("local")
    window_start = instant(local.c.start_wall, clocks).label("window_start")
    window_end = instant(local.c.end_wall, clocks).label("window_end")
    keys = [*([local.c.mechanic_id] if by_mechanic else []), window_start, window_end, local.c.price_multiplier]
    mechanics = sa.func.sum(local.c.mechanics)
    return (
        sa.select(*keys, mechanics.label("mechanics"))
        .join(
            clocks,
            sa.and_(
                clocks.c.timezone == local.c.timezone,
                local.c.local_date >= clocks.c.first_day,
                local.c.local_date <= clocks.c.last_day,
            ),
        )
        .where(window_start < window_end)  # what a spring-forward gap leaves of a slot: nothing
        .group_by(*keys)
        .having(mechanics > 0)
        .cte("windows")
    )


def _available_by_hour(
    chosen: sa.ColumnElement[bool], zones: Sequence[str], week_start: dt.date, tz: str
) -> tuple[sa.CTE, sa.Subquery]:
    """The hours of ``tz`` in the 7 days from ``week_start`` (local_date, hour, cell_wall: its
    wall time) and the chosen mechanics' availability in each (cell_wall, seconds and weighted:
    the seconds times their multipliers), ``zones`` being theirs.

    An hour runs from the instant of its wall time to the next one's (so a skipped hour is empty
    and one shown twice holds both). One sweep over the instants where a window or an hour starts
    or ends: from each to the next, the mechanics available (and their multipliers) are running
    sums, added up per hour."""
    start, end = week_bounds(week_start, tz)
    dates = (start.date() - dt.timedelta(days=1), end.date() + dt.timedelta(days=1))  # local dates lie within a day
    days, clocks, instant = _clock(dict.fromkeys({*zones, tz}, dates))
    windows = _windows(chosen, days, clocks, instant)
    hours = sa.func.generate_series(0, 23).table_valued("hour").render_derived("hours")
    cell_wall = (days.c.midnight + 3600 * hours.c.hour).label("cell_wall")
    cells = (
        sa.select(days.c.local_date, hours.c.hour, cell_wall, instant(cell_wall, clocks).label("cell_start"))
        .select_from(days)
        .join(hours, sa.true())
        .join(clocks, clocks.c.timezone == tz)
        .where(days.c.local_date >= week_start, days.c.local_date < week_start + dt.timedelta(days=7))
        .cte("cells")
    )
    n, multiplier, nothing = windows.c.mechanics, windows.c.price_multiplier, sa.null()
    changes = sa.union_all(
        sa.select(
            cells.c.cell_start.label("at"),
            cells.c.cell_wall,
            sa.literal(0).label("mechanics"),
            sa.literal(0).label("weighted"),
        ),
        sa.select(sa.literal(int(end.timestamp())), sa.literal(wall_seconds(week_start + dt.timedelta(days=7))), 0, 0),
        sa.select(windows.c.window_start, nothing, n, n * multiplier),
        sa.select(windows.c.window_end, nothing, -n, -n * multiplier),
    ).subquery("changes")
    points = (
        sa.select(
            changes.c.at,
            sa.func.max(changes.c.cell_wall).label("cell_wall"),
            sa.func.sum(changes.c.mechanics).label("mechanics"),
            sa.func.sum(changes.c.weighted).label("weighted"),
        )
        .group_by(changes.c.at)
        .subquery("points")
    )
    in_order = {"order_by": points.c.at}
    swept = sa.select(
        sa.func.max(points.c.cell_wall).over(**in_order).label("cell_wall"),  # the hour the instant is in
        (sa.func.lead(points.c.at).over(**in_order) - points.c.at).label("seconds"),
        sa.func.sum(points.c.mechanics).over(**in_order).label("mechanics"),
        sa.func.sum(points.c.weighted).over(**in_order).label("weighted"),
    ).subquery("swept")
    available = (
        sa.select(
            swept.c.cell_wall,
            sa.func.sum(swept.c.mechanics * swept.c.seconds).label("seconds"),
            sa.func.sum(swept.c.weighted * swept.c.seconds).label("weighted"),
        )
        .group_by(swept.c.cell_wall)
        .subquery("available")
    )
    return cells, available


@functools.lru_cache(maxsize=64)
def _hour_grid_query(
    mechanic_ids: tuple[str, ...] | None, zones: tuple[str, ...], week_start: dt.date, tz: str
) -> sa.Select:
    """The statement of ``hour_grid``, ``zones`` being the mechanics'. Built once for the same
    arguments (a page asks again on every rerun): its values depend on nothing else."""
    cells, available = _available_by_hour(_chosen(mechanic_ids), zones, week_start, tz)
    booked = _booked_by_hour(mechanic_ids, *week_bounds(week_start, tz), tz).subquery("booked")
    return (
        sa.select(cells.c.local_date, cells.c.hour, available.c.seconds, available.c.weighted, booked.c.sessions)
        .select_from(cells)
        .outerjoin(available, available.c.cell_wall == cells.c.cell_wall)
        .outerjoin(booked, sa.and_(booked.c.local_date == cells.c.local_date, booked.c.hour == cells.c.hour))
        .order_by(cells.c.local_date, cells.c.hour)
    )


def hour_grid(
    conn: Connection, *, mechanic_ids: Sequence[str] | None, week_start: dt.date, tz: str, session_minutes: int
) -> pd.DataFrame:
    """One row per local date and hour of ``tz`` for 7 days from ``week_start``:
    available_minutes (summed over the mechanics), multiplier (their minute-weighted mean,
    NaN without availability), sessions starting in that hour, booked_minutes
    (sessions x session length) and utilisation (booked / available minutes, NaN without availability)."""
    ids = None if mechanic_ids is None else tuple(mechanic_ids)
    found = conn.execute(sa.select(s.mechanics.c.timezone).where(_chosen(ids)).distinct()).scalars()
    zones = tuple(sorted(zone for zone in found if is_known_timezone(zone)))
    rows = conn.execute(_hour_grid_query(ids, zones, week_start, tz)).all()
    grid = pd.DataFrame(
        {
            "local_date": [row.local_date for row in rows],
            "hour": [int(row.hour) for row in rows],
            "available_minutes": [float(row.seconds or 0) / 60 for row in rows],
            "multiplier": [float(row.weighted) / float(row.seconds) if row.seconds else math.nan for row in rows],
            "sessions": [int(row.sessions or 0) for row in rows],
        }
    )
    grid["booked_minutes"] = grid["sessions"] * session_minutes
    grid["utilisation"] = grid["booked_minutes"] / grid["available_minutes"].where(grid["available_minutes"] > 0)
    return grid


SLOT_COLUMNS = ["mechanic_id", "start_utc", "start_local", "timezone", "multiplier", "price_cents"]


def _slot_frame(
    mechanic_ids: Sequence[str], zones: Sequence[str], found: Starts, base_price_cents: int | None
) -> pd.DataFrame:
    """``found`` as ``bookable`` lists it, the calendar at position p being ``mechanic_ids[p]``
    in ``zones[p]``; each start's wall clock is read once per zone for all of its mechanics,
    and the texts are taken from one copy per calendar."""
    if not len(found.start):
        return pd.DataFrame([], columns=SLOT_COLUMNS)
    names = sorted(set(zones))
    zone = np.array([names.index(name) for name in zones])[found.calendar]
    start_utc = pd.DatetimeIndex(found.start.astype("datetime64[us]")).tz_localize(dt.UTC)
    start_local = np.empty(len(start_utc), dtype="datetime64[us]")
    for n, name in enumerate(names):
        mask = zone == n
        start_local[mask] = start_utc[mask].tz_convert(parse_timezone(name)).tz_localize(None).to_numpy()
    price = functools.cache(lambda multiplier: price_cents(base_price_cents, multiplier))
    return pd.DataFrame(
        {
            "mechanic_id": pd.array(mechanic_ids, dtype="str").take(found.calendar),
            "start_utc": start_utc,
            "start_local": start_local,
            "timezone": pd.array(zones, dtype="str").take(found.calendar),
            "multiplier": np.array([float(x) for x in found.multipliers])[found.window],
            "price_cents": [None] * len(found.start)
            if base_price_cents is None
            else np.array([price(x) for x in found.multipliers])[found.window],
        },
        columns=SLOT_COLUMNS,
    )


def _columns(result: sa.Result, width: int) -> list[tuple]:
    """A result's ``width`` columns, each as one tuple."""
    rows = result.all()
    return list(zip(*rows)) if rows else [()] * width


@functools.lru_cache(maxsize=64)
def _bookable_windows_query(
    mechanic_ids: tuple[str, ...] | None, dates: tuple[tuple[str, dt.date, dt.date], ...]
) -> sa.Select:
    """The windows of ``bookable`` by mechanic and start, each zone's from its first to its last
    date in ``dates``. Built once for the same arguments, as ``_hour_grid_query``; the chosen ids
    are bound once (``_windows`` names the mechanics in three places)."""
    picked = sa.select(s.mechanics.c.user_id).where(_chosen(mechanic_ids)).cte("picked")
    windows = _windows(
        s.mechanics.c.user_id.in_(sa.select(picked.c.user_id)),
        *_clock({zone: (first, last) for zone, first, last in dates}),
        by_mechanic=True,
    )
    return sa.select(
        sa.cast(windows.c.mechanic_id, sa.Text),
        windows.c.window_start,
        windows.c.window_end,
        windows.c.price_multiplier,
    ).order_by(windows.c.mechanic_id, windows.c.window_start)


def bookable(
    conn: Connection,
    *,
    mechanic_ids: Sequence[str] | None,
    days: int,
    session_type: str,
    now: dt.datetime,
    rules: SlotRules = SlotRules(),
) -> pd.DataFrame:
    """Bookable starts for ``days`` local dates from each mechanic's today, by mechanic and start:
    mechanic_id, start_utc, start_local (the mechanic's wall clock), timezone, multiplier, price_cents.

    The availability windows of every chosen mechanic come from SQL (``_windows``, as the hour
    grid's), their starts from the slot rules on arrays (``open_starts``)."""
    m, se = s.mechanics, s.sessions
    ids = None if mechanic_ids is None else tuple(mechanic_ids)
    found = conn.execute(
        sa.select(sa.cast(m.c.user_id, sa.Text), m.c.timezone).where(_chosen(ids)).order_by(m.c.user_id)
    )
    mechanics = [(mechanic, zone) for mechanic, zone in found if is_known_timezone(zone)]
    base_price_cents = price_list(conn).get(session_type)
    if not mechanics or days < 1:
        return pd.DataFrame([], columns=SLOT_COLUMNS)
    position = {mechanic: n for n, (mechanic, _) in enumerate(mechanics)}
    today = {zone: now.astimezone(parse_timezone(zone)).date() for zone in {zone for _, zone in mechanics}}
    dates = tuple(sorted((zone, first, first + dt.timedelta(days=days - 1)) for zone, first in today.items()))
    owners, starts, ends, multipliers = _columns(conn.execute(_bookable_windows_query(ids, dates)), 4)
    if not starts:
        return pd.DataFrame([], columns=SLOT_COLUMNS)
    # every session that can be within a session and buffer of a start: in a window, from notice after now
    clearance = dt.timedelta(minutes=rules.session_minutes + rules.buffer_minutes)
    first = max(EPOCH + dt.timedelta(seconds=min(starts)), now + dt.timedelta(minutes=rules.notice_minutes))
    low, high = first - clearance, EPOCH + dt.timedelta(seconds=max(ends)) + clearance
    booked = conn.execute(
        sa.select(
            sa.cast(se.c.mechanic_id, sa.Text),
            sa.cast(sa.extract("epoch", se.c.scheduled_at) * SECOND_US, sa.BigInteger),  # microseconds since the epoch
        )
        .where(*_booked(mechanic_ids, low, high))
        .order_by(se.c.mechanic_id, se.c.scheduled_at)
    ).all()
    booked = [(position[mechanic], at) for mechanic, at in booked if mechanic in position]
    found = open_starts(
        [position[mechanic] for mechanic in owners],
        np.array(starts, dtype=np.int64) * SECOND_US,
        np.array(ends, dtype=np.int64) * SECOND_US,
        list(multipliers),
        [owner for owner, _ in booked],
        [at for _, at in booked],
        now=now,
        rules=rules,
    )
    return _slot_frame(
        [mechanic for mechanic, _ in mechanics], [zone for _, zone in mechanics], found, base_price_cents
    )


def preview(
    conn: Connection,
    *,
    mechanic_id: str,
    days: int,
    session_type: str,
    now: dt.datetime,
    rules: SlotRules = SlotRules(),
    slots: tuple[WeeklySlot, ...] | None = None,
    override: Override | None = None,
) -> pd.DataFrame:
    """``bookable`` for one mechanic as it would be with unsaved weekly ``slots`` and/or ``override``
    (the slot rules in Python on the edited calendar: ``bookable_starts``)."""
    calendars = _calendars(conn, (mechanic_id,), now.date() - dt.timedelta(days=1), days + 2)
    if slots is not None:
        calendars = [replace(calendar, slots=slots) for calendar in calendars]
    if override is not None:
        calendars = [
            replace(calendar, overrides=tuple(o for o in calendar.overrides if o.date != override.date) + (override,))
            for calendar in calendars
        ]
    found = bookable_starts(
        calendars, [now.astimezone(calendar.zone).date() for calendar in calendars], days, now=now, rules=rules
    )
    return _slot_frame(
        [str(calendar.mechanic_id) for calendar in calendars],
        [calendar.timezone for calendar in calendars],
        found,
        price_list(conn).get(session_type),
    )


def peak_preview(
    conn: Connection,
    *,
    mechanic_ids: Sequence[str],
    days: tuple[int, ...],
    start: dt.time,
    end: dt.time,
    multiplier: Decimal,
) -> pd.DataFrame:
    """What ``set_peak_multiplier`` would change, per mechanic: mechanic_id, display_name,
    slots_repriced, hours_repriced, slots_split_off (new slots keeping the old multiplier)."""
    ids = [parse_uuid(i, "Mechanic") for i in mechanic_ids]
    names = dict(
        conn.execute(
            sa.select(s.mechanics.c.user_id, s.mechanics.c.display_name).where(s.mechanics.c.user_id.in_(ids))
        ).all()
    )
    current = slots_by_mechanic(conn, ids)
    rows = []
    for mechanic in ids:
        before = {slot.id: slot for slot in current.get(mechanic, [])}
        after = apply_peak(before.values(), set(days), start, end, multiplier)
        repriced = [slot for slot in after if slot.id is not None and slot != before[slot.id]]
        hours = sum(
            (dt.datetime.combine(dt.date.min, slot.end) - dt.datetime.combine(dt.date.min, slot.start)).total_seconds()
            / 3600
            for slot in repriced
        )
        rows.append(
            {
                "mechanic_id": str(mechanic),
                "display_name": names.get(mechanic),
                "slots_repriced": len(repriced),
                "hours_repriced": hours,
                "slots_split_off": sum(slot.id is None for slot in after),
            }
        )
    return pd.DataFrame(
        rows, columns=["mechanic_id", "display_name", "slots_repriced", "hours_repriced", "slots_split_off"]
    )


def pricing_audit(conn: Connection, *, mechanic_id: str | None = None, limit: int = 200) -> pd.DataFrame:
    """The latest calendar and base-price changes, newest first: created_at, actor_email, actor_role,
    action, entity_type, entity_id (the mechanic's id, or the session type), subject (the mechanic's
    name, or the session type for base prices), before, after (dicts), reason and change (before ->
    after in one line)."""
    a, m = s.audit_log, s.mechanics
    where = [a.c.entity_type.in_([CALENDAR, BASE_PRICE])]
    if mechanic_id is not None:
        where = [a.c.entity_type == CALENDAR, a.c.entity_id == str(parse_uuid(mechanic_id, "Mechanic"))]
    query = (
        sa.select(
            a.c.created_at,
            a.c.actor_email,
            a.c.actor_role,
            a.c.action,
            a.c.entity_type,
            a.c.entity_id,
            sa.func.coalesce(m.c.display_name, a.c.entity_id).label("subject"),
            a.c.before,
            a.c.after,
            a.c.reason,
        )
        .select_from(
            a.outerjoin(m, sa.and_(a.c.entity_type == CALENDAR, sa.cast(m.c.user_id, sa.Text) == a.c.entity_id))
        )
        .where(*where)
        .order_by(a.c.created_at.desc(), a.c.id)
        .limit(limit)
    )
    frame = pd.DataFrame(
        conn.execute(query).mappings().all(),
        columns=[
            "created_at",
            "actor_email",
            "actor_role",
            "action",
            "entity_type",
            "entity_id",
            "subject",
            "before",
            "after",
            "reason",
        ],
    )
    for column in ("before", "after"):  # DuckDB returns JSON as text
        frame[column] = [json.loads(v) if isinstance(v, str) else v for v in frame[column]]
    frame["change"] = [_change(b, a) for b, a in zip(frame["before"], frame["after"])]
    return frame


def _change(before: dict | None, after: dict | None) -> str:
    """Before -> after in one line, the words both start with said once:
    "Monday 09:00-17:00 x1.00 → x2.00"."""
    if not (before and after):
        return _describe(before or after) if before or after else ""
    old, new = _describe(before).split(" "), _describe(after).split(" ")
    same = 0
    while same < min(len(old), len(new)) - 1 and old[same] == new[same]:
        same += 1
    return f"{' '.join(old)} → {' '.join(new[same:])}"


def _describe(snapshot: dict) -> str:
    """One line for an audited slot, override, timezone or base price."""
    if "price_cents" in snapshot:
        return f"${snapshot['price_cents'] / 100:,.2f}"
    if "timezone" in snapshot:
        return snapshot["timezone"]
    hours = f"{snapshot['start_time']}-{snapshot['end_time']} x{snapshot['price_multiplier']}"
    if "day" in snapshot:
        return f"{snapshot['day']} {hours}" + ("" if snapshot["is_available"] else " (unavailable)")
    what = hours if snapshot["start_time"] else "time off"
    return f"{snapshot['date']} {what}: {snapshot['reason']}"


def week_prices(
    conn: Connection,
    *,
    mechanic_id: str,
    week_start: dt.date,
    tz: str,
    session_type: str,
    rules: SlotRules = SlotRules(),
) -> pd.DataFrame:
    """One mechanic's week hour by hour, for the calendar's week grid: one row per local date
    and hour of ``tz`` for 7 days from ``week_start`` with open_starts (session starts their
    hours allow in that hour, notice and bookings aside), price_low_cents and price_high_cents
    (those starts' prices for ``session_type``, from the slot rules' ``price_cents``, the one the
    API quotes; NaN when closed or without a base price) and sessions (booked, not cancelled,
    starting in that hour). An inactive mechanic has no open starts."""
    start, end = week_bounds(week_start, tz)
    zone = ZoneInfo(tz)
    base = price_list(conn).get(session_type)
    cells: dict[tuple[dt.date, int], list] = {}
    open_rules = replace(rules, notice_minutes=0)
    for calendar in _calendars(conn, (mechanic_id,), start.date() - dt.timedelta(days=1), 10, bookings=False):
        if not calendar.is_active:  # not taking bookings: no prices to show
            continue
        first_day = start.astimezone(calendar.zone).date() - dt.timedelta(days=1)
        for slot in bookable_slots(
            calendar, first_day, 9, now=start - dt.timedelta(days=2), rules=open_rules, base_price_cents=base
        ):
            if not start <= slot.start_utc < end:
                continue
            local = slot.start_utc.astimezone(zone)
            cell = cells.setdefault((local.date(), local.hour), [0, None, None])
            cell[0] += 1
            if slot.price_cents is not None:
                cell[1] = slot.price_cents if cell[1] is None else min(cell[1], slot.price_cents)
                cell[2] = slot.price_cents if cell[2] is None else max(cell[2], slot.price_cents)
    grid = pd.DataFrame([{"local_date": week_start + dt.timedelta(days=d), "hour": h} for d in range(7) for h in HOURS])
    found = [cells.get((d, h), [0, None, None]) for d, h in zip(grid.local_date, grid.hour)]
    grid["open_starts"] = [cell[0] for cell in found]
    grid["price_low_cents"] = pd.array([cell[1] for cell in found], dtype="Float64").astype(float)
    grid["price_high_cents"] = pd.array([cell[2] for cell in found], dtype="Float64").astype(float)
    booked = booked_by_hour(conn, mechanic_ids=(mechanic_id,), start=start, end=end, tz=tz)
    grid = grid.merge(booked, on=["local_date", "hour"], how="left")
    grid["sessions"] = grid["sessions"].fillna(0).astype(int)
    return grid
