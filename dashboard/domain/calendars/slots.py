"""Scheduling and pricing rules: weekly availability, date overrides, bookable slots, prices.

Pure functions (parsing, validation, slot expansion, pricing) plus the loader
and the booking check that read the database. The edits that write live in
``dashboard.domain.calendars.edits``; ``docs/calendars.md`` explains the rules with
examples.

Time model
- Weekly slots and overrides hold local wall-clock times of the mechanic's IANA
  timezone; day_of_week counts 0=Sunday..6=Saturday. A slot never crosses
  midnight (split it into two).
- A local time becomes an instant as RFC 5545 says (Python's ``fold=0``): a
  time the clock skips on a spring-forward day is read with the offset from
  before the jump (02:30 in New York on 8 March 2026 is 03:30 EDT), a time
  the clock shows twice on a fall-back day is its first occurrence.
- A date override replaces that day's weekly hours: time off (no hours) or
  "available only from start to end" at the override's own multiplier.

Bookable slots
- Available slots that touch (one ends where the next starts) form one
  window, so splitting a slot into price bands never removes a start time.
- Starts are cut every ``interval_minutes`` from the window's start, each
  session needs ``session_minutes`` inside the window, a start must be at
  least ``notice_minutes`` after now, and it must keep ``buffer_minutes``
  clear of every booked session (statuses in ``BLOCKING_STATUSES``).
- ``slots_by_day`` lists the starts for customers, by date of the customer's timezone;
  ``check_booking`` re-checks a chosen start on the server with the same rules.
- A slot's multiplier is the one of the slot its start falls in; its price is
  ``price_cents(base, multiplier)``: base cents x multiplier computed exactly
  and rounded half up to whole cents (4,999 x 1.25 = 6,248.75 -> 6,249;
  1,999 x 1.50 = 2,998.5 -> 2,999).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dashboard.core import schema as s
from dashboard.core.errors import Conflict, Invalid, NotFound
from dashboard.core.period import timezones
from dashboard.core.settings import DEFAULTS, Settings
from dashboard.core.validation import parse_text, parse_uuid

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = dt.timedelta(microseconds=1)
SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US
DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
MULTIPLIER_MIN = Decimal(s.MULTIPLIER_MIN)
MULTIPLIER_MAX = Decimal(s.MULTIPLIER_MAX)
ONE = Decimal("1.00")
# Sessions that hold their time: every status but cancelled.
BLOCKING_STATUSES = tuple(status for status in s.SESSION_STATUSES if status != "cancelled")
MAX_BASE_PRICE_CENTS = 100_000  # $1,000.00 per session
REASON_MAX_CHARS = 200
MAX_SLOT_DAYS = 31  # the longest range ``slots_by_day`` lists
DAY_SECONDS = 24 * 3600
WALL_EPOCH = dt.date(1970, 1, 1)  # wall clocks count seconds from its midnight (``wall_seconds``)


class ValidationError(Invalid):
    """Input for a calendar that breaks a rule. ``row_errors`` maps a row's position to its messages."""

    def __init__(self, message: str, row_errors: Mapping[int, list[str]] | None = None):
        super().__init__(message)
        self.row_errors = dict(row_errors or {})


BOOKING_REASONS = (
    "taken",
    "outside_hours",
    "day_off",
    "too_soon",
    "price_changed",
    "not_taking_bookings",
    "no_price",
    "invalid",
)


class BookingRejected(Conflict):
    """The chosen start time is not bookable; the message says why and ``reason`` (one of
    BOOKING_REASONS) says it for a program."""

    def __init__(self, message: str, reason: str = "invalid"):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SlotRules:
    """The settings of bookable slots (``scheduling.*`` of ``dashboard.core.settings.SETTINGS``,
    which has their meaning and limits; ``[scheduling]`` in secrets.toml overrides each)."""

    session_minutes: int = DEFAULTS["scheduling.session_minutes"]
    interval_minutes: int = DEFAULTS["scheduling.interval_minutes"]
    buffer_minutes: int = DEFAULTS["scheduling.buffer_minutes"]
    notice_minutes: int = DEFAULTS["scheduling.notice_minutes"]

    @classmethod
    def from_settings(cls, settings: Settings) -> SlotRules:
        return cls(**settings.group("scheduling"))


@dataclass(frozen=True)
class WeeklySlot:
    day_of_week: int  # 0=Sunday
    start: dt.time
    end: dt.time
    multiplier: Decimal = ONE
    is_available: bool = True
    id: uuid.UUID | None = None

    def label(self) -> str:
        return f"{DAY_NAMES[self.day_of_week]} {self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class Override:
    date: dt.date
    is_available: bool = False
    start: dt.time | None = None  # with end: available only in these hours
    end: dt.time | None = None
    multiplier: Decimal = ONE
    reason: str | None = None


@dataclass(frozen=True)
class Window:
    """A stretch of availability between two instants (UTC) at one multiplier."""

    start: dt.datetime
    end: dt.datetime
    multiplier: Decimal
    source: str  # "weekly" or "override"


@dataclass(frozen=True)
class Slot:
    """A bookable session start."""

    start_utc: dt.datetime
    end_utc: dt.datetime
    start_local: dt.datetime  # in the mechanic's timezone
    multiplier: Decimal
    price_cents: int | None  # None while the session type has no base price


@dataclass(frozen=True)
class Calendar:
    """Everything the slot rules need for one mechanic."""

    mechanic_id: uuid.UUID
    timezone: str
    slots: tuple[WeeklySlot, ...] = ()
    overrides: tuple[Override, ...] = ()
    booked: tuple[dt.datetime, ...] = ()  # UTC starts of sessions that hold their time
    is_active: bool = True

    @property
    def zone(self) -> ZoneInfo:
        return parse_timezone(self.timezone)


# --- parsing single values -------------------------------------------------------------


def _blank(value: Any) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    if isinstance(value, str) and not value.strip():
        return True
    return str(value) in {"NaT", "nan", "<NA>"}


def parse_day(value: Any) -> int:
    """A day of the week as 0=Sunday..6=Saturday, from the number or the English name."""
    if _blank(value):
        raise ValidationError("Day is required.")
    if isinstance(value, str):
        text = value.strip()
        for number, name in enumerate(DAY_NAMES):
            if text.lower() in (name.lower(), name[:3].lower()):
                return number
        value = text
    try:
        if isinstance(value, bool):
            raise TypeError
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise ValidationError(f"Day {str(value)[:20]!r} is not a day of the week.") from None
    if isinstance(value, float) and value != number or not 0 <= number <= 6:
        raise ValidationError(f"Day must be 0 (Sunday) to 6 (Saturday), got {value}.")
    return number


def parse_time(value: Any, what: str = "Time") -> dt.time:
    """A wall-clock time from a ``time`` or text like ``09:00``."""
    if _blank(value):
        raise ValidationError(f"{what} is required.")
    if isinstance(value, dt.datetime):
        value = value.time()
    if isinstance(value, dt.time):
        return value.replace(tzinfo=None)
    for layout in ("%H:%M", "%H:%M:%S"):
        try:
            return dt.datetime.strptime(str(value).strip(), layout).time()
        except ValueError:
            pass
    raise ValidationError(f"{what} {str(value)[:20]!r} is not a time like 09:00.")


CENT = Decimal("0.01")


def _two_decimals(value: Any, what: str, low: Decimal, high: Decimal, out_of_range: str) -> Decimal:
    """A finite number from ``low`` to ``high`` with at most two decimals, from a number or text;
    ``out_of_range`` is the message for any other size (also one of 30 digits, which Decimal
    cannot quantize)."""
    if _blank(value):
        raise ValidationError(f"{what} is required.")
    if isinstance(value, bool):
        raise ValidationError(f"{what} must be a number, not yes or no.")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValidationError(f"{what} {str(value)[:20]!r} is not a number.") from None
    if not number.is_finite():
        raise ValidationError(f"{what} must be a finite number, got {str(value)[:20]}.")
    if number.normalize().as_tuple().exponent < -2:
        raise ValidationError(f"{what} must be a number with at most two decimals, got {str(value)[:20]}.")
    if not low <= number <= high:
        raise ValidationError(out_of_range)
    return number.quantize(CENT)


def parse_multiplier(value: Any) -> Decimal:
    """A price multiplier from MULTIPLIER_MIN to MULTIPLIER_MAX with at most two decimals."""
    return _two_decimals(
        value,
        "Multiplier",
        MULTIPLIER_MIN,
        MULTIPLIER_MAX,
        f"Multiplier must be from {MULTIPLIER_MIN} to {MULTIPLIER_MAX}, got {str(value)[:20]}.",
    )


def is_known_timezone(name: Any) -> bool:
    return isinstance(name, str) and name in timezones()


def parse_timezone(name: Any) -> ZoneInfo:
    """An IANA timezone such as ``Europe/Berlin``."""
    text = "" if _blank(name) else str(name).strip()
    if not is_known_timezone(text):
        raise ValidationError(f"{str(name)[:40]!r} is not an IANA timezone name such as Europe/Berlin.")
    return _zone(text)


@functools.cache
def _zone(name: str) -> ZoneInfo:
    """ZoneInfo keeps only the last few zones it made; a page of many mechanics uses more."""
    return ZoneInfo(name)


def parse_base_price(value: Any) -> int:
    """A base price in dollars (e.g. ``49.99``) as whole cents, above zero and at most $1,000."""
    dollars = _two_decimals(
        value,
        "Price",
        CENT,
        Decimal(MAX_BASE_PRICE_CENTS) / 100,
        f"Price must be above $0.00 and at most ${MAX_BASE_PRICE_CENTS / 100:,.2f}.",
    )
    return int(dollars * 100)


def parse_reason(value: Any) -> str:
    if _blank(value):
        raise ValidationError("Give a reason (e.g. holiday, training).")
    return parse_text(value, "The reason", REASON_MAX_CHARS, ValidationError)


def price_cents(base_cents: int, multiplier: Decimal) -> int:
    """Base price x multiplier, rounded half up to whole cents (exact decimal arithmetic)."""
    return int((Decimal(base_cents) * Decimal(multiplier)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def day_of_week(day: dt.date) -> int:
    """0=Sunday..6=Saturday (``date.weekday()`` counts from Monday)."""
    return (day.weekday() + 1) % 7


# --- weekly slots: validation ------------------------------------------------------------


def overlaps(slots: Sequence[WeeklySlot]) -> list[tuple[int, int]]:
    """Positions of every pair of slots on the same day whose hours overlap (touching is fine)."""
    by_day: dict[int, list[int]] = defaultdict(list)
    for position, slot in enumerate(slots):
        by_day[slot.day_of_week].append(position)
    pairs = []
    for positions in by_day.values():
        positions.sort(key=lambda p: (slots[p].start, slots[p].end))
        for i, first in enumerate(positions):
            for second in positions[i + 1 :]:
                if slots[second].start >= slots[first].end:
                    break
                pairs.append((min(first, second), max(first, second)))
    return sorted(pairs)


def _slot_id(value: Any) -> uuid.UUID | None:
    return None if _blank(value) else parse_uuid(value, "Slot", ValidationError)


def parse_slot_row(row: Mapping[str, Any]) -> WeeklySlot:
    """One weekly slot from a row with day_of_week, start_time, end_time, price_multiplier,
    is_available (missing means available) and id (missing for a new slot).
    Raises ValidationError listing every problem of the row."""
    problems, values = [], {}
    for key, field_name, parse in (
        ("id", "id", _slot_id),
        ("day_of_week", "day_of_week", parse_day),
        ("start_time", "start", lambda v: parse_time(v, "Start")),
        ("end_time", "end", lambda v: parse_time(v, "End")),
        ("price_multiplier", "multiplier", parse_multiplier),
    ):
        try:
            values[field_name] = parse(row.get(key))
        except ValidationError as exc:
            problems.append(str(exc))
    available = row.get("is_available")
    values["is_available"] = True if _blank(available) else bool(available)
    if "start" in values and "end" in values and values["start"] >= values["end"]:
        problems.append(
            f"Start {values['start']:%H:%M} must be before end {values['end']:%H:%M} "
            "(a slot cannot cross midnight: split it in two)."
        )
    if problems:
        raise ValidationError(" ".join(problems))
    return WeeklySlot(**values)


def validate_weekly_rows(rows: Sequence[Mapping[str, Any]]) -> list[WeeklySlot]:
    """A mechanic's whole weekly schedule, checked row by row and for overlaps.

    Raises ValidationError whose ``row_errors`` name each offending row."""
    errors: dict[int, list[str]] = defaultdict(list)
    parsed: dict[int, WeeklySlot] = {}
    for position, row in enumerate(rows):
        try:
            parsed[position] = parse_slot_row(row)
        except ValidationError as exc:
            errors[position].append(str(exc))
    timed = [(p, hours) for p, hours in enumerate(map(_hours, rows)) if hours is not None]
    for a, b in overlaps([hours for _, hours in timed]):
        (first, one), (second, other) = timed[a], timed[b]
        errors[first].append(f"Overlaps {other.label()} (row {second + 1}).")
        errors[second].append(f"Overlaps {one.label()} (row {first + 1}).")
    ids = [slot.id for slot in parsed.values() if slot.id is not None]
    if len(ids) != len(set(ids)):
        raise ValidationError("The same slot appears twice; reload the page.")
    if errors:
        count = len(errors)
        raise ValidationError(
            f"{count} row{'s' if count > 1 else ''} need{'' if count > 1 else 's'} fixing.",
            {p: errors[p] for p in sorted(errors)},
        )
    return [parsed[p] for p in sorted(parsed)]


def _hours(row: Mapping[str, Any]) -> WeeklySlot | None:
    """A row's day and hours when those are valid, so overlaps are found even if another cell is not."""
    try:
        slot = WeeklySlot(
            parse_day(row.get("day_of_week")), parse_time(row.get("start_time")), parse_time(row.get("end_time"))
        )
    except ValidationError:
        return None
    return slot if slot.start < slot.end else None


# --- expansion ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=65_536)  # mechanics of one zone share their dates and hours
def _instant(day: dt.date, time: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant of a local date and time (fold=0, see the module docstring)."""
    return dt.datetime.combine(day, time, tzinfo=zone).astimezone(UTC)


def _dates(first_day: dt.date, days: int) -> Iterable[dt.date]:
    return (first_day + dt.timedelta(days=n) for n in range(days))


def availability_windows(calendar: Calendar, first_day: dt.date, days: int) -> list[Window]:
    """The mechanic's availability on ``days`` local dates from ``first_day``, in time order."""
    zone = calendar.zone
    weekly: dict[int, list[WeeklySlot]] = defaultdict(list)
    for slot in calendar.slots:
        if slot.is_available:
            weekly[slot.day_of_week].append(slot)
    overrides = {o.date: o for o in calendar.overrides}
    windows = []
    for day in _dates(first_day, days):
        override = overrides.get(day)
        if override is not None and not override.is_available:
            continue
        if override is not None and override.start is not None:
            hours = [(override.start, override.end, override.multiplier, "override")]
        else:
            hours = [(w.start, w.end, w.multiplier, "weekly") for w in weekly[day_of_week(day)]]
        for start, end, multiplier, source in hours:
            window = Window(_instant(day, start, zone), _instant(day, end, zone), multiplier, source)
            if window.start < window.end:  # both ends inside a skipped hour: nothing left
                windows.append(window)
    return sorted(windows, key=lambda w: w.start)


def microseconds(at: dt.datetime) -> int:
    """An instant as microseconds since the epoch."""
    return (at - EPOCH) // MICROSECOND


@dataclass(frozen=True)
class Starts:
    """The bookable starts of several calendars, on arrays (``open_starts``)."""

    multipliers: list[Decimal]  # of each window, calendar after calendar
    calendar: np.ndarray  # for each start, the position of its calendar
    start: np.ndarray  # for each start, microseconds since the epoch (UTC)
    window: np.ndarray  # for each start, the position of the window it falls in (its multiplier's)


def open_starts(
    owner: Sequence[int],
    start: Sequence[int],
    end: Sequence[int],
    multipliers: list[Decimal],
    booked_owner: Sequence[int],
    booked: Sequence[int],
    *,
    now: dt.datetime,
    rules: SlotRules = SlotRules(),
) -> Starts:
    """Steps 3 to 6 of the rules of the module docstring on arrays, for many calendars at once:
    availability windows (their calendar's position, start and end in microseconds since the
    epoch, multiplier), by calendar and start, and booked sessions (calendar, start), likewise.
    The starts come calendar after calendar and in time order."""
    if not len(start):
        return Starts(multipliers, *(np.empty(0, dtype=np.int64) for _ in range(3)))
    owner, start, end = np.asarray(owner), np.asarray(start, dtype=np.int64), np.asarray(end, dtype=np.int64)
    length, step = rules.session_minutes * MINUTE_US, rules.interval_minutes * MINUTE_US
    clearance = length + rules.buffer_minutes * MINUTE_US
    # One key per calendar and instant, far enough apart that one calendar's never nears another's.
    base = min(start.min(), min(booked, default=start.min())) - clearance
    span = max(end.max(), max(booked, default=end.max())) - base + 2 * clearance

    def key(positions: np.ndarray, instants: np.ndarray) -> np.ndarray:
        return positions * span + (instants - base)

    # runs: a calendar's windows that touch (one ends where the next starts)
    first = np.flatnonzero(np.r_[True, (owner[1:] != owner[:-1]) | (start[1:] != end[:-1])])
    last = np.r_[first[1:], len(start)] - 1
    # starts every step from the run's start while a whole session fits
    counts = np.maximum((end[last] - length - start[first]) // step + 1, 0)
    run = np.repeat(np.arange(len(first)), counts)
    at = start[first][run] + step * (np.arange(counts.sum()) - (np.cumsum(counts) - counts)[run])
    keep = at >= microseconds(now) + rules.notice_minutes * MINUTE_US
    at_key = key(owner[first][run], at)
    if len(booked):
        # blocked when a booked session of the calendar starts less than `clearance` before or after
        booked_key = key(np.asarray(booked_owner), np.asarray(booked, dtype=np.int64))
        near = np.minimum(np.searchsorted(booked_key, at_key - clearance, side="right"), len(booked) - 1)
        keep &= ~((booked_key[near] > at_key - clearance) & (booked_key[near] < at_key + clearance))
    run, at, at_key = run[keep], at[keep], at_key[keep]
    window = np.minimum(np.searchsorted(key(owner, start), at_key, side="right") - 1, last[run])
    return Starts(multipliers, owner[first][run], at, window)


def bookable_starts(
    calendars: Sequence[Calendar],
    first_days: Sequence[dt.date],
    days: int,
    *,
    now: dt.datetime,
    rules: SlotRules = SlotRules(),
) -> Starts:
    """Every bookable start of each calendar on ``days`` local dates from its first day
    (``open_starts`` over their ``availability_windows``), with no Python object per start."""
    windows: list[Window] = []
    window_owners, booked_owners, booked = [], [], []
    for position, (calendar, first_day) in enumerate(zip(calendars, first_days)):
        found = availability_windows(calendar, first_day, days)
        windows += found
        window_owners += [position] * len(found)
        booked_owners += [position] * len(calendar.booked)
        booked += sorted(microseconds(at) for at in calendar.booked)
    return open_starts(
        window_owners,
        [microseconds(window.start) for window in windows],
        [microseconds(window.end) for window in windows],
        [window.multiplier for window in windows],
        booked_owners,
        booked,
        now=now,
        rules=rules,
    )


def bookable_slots(
    calendar: Calendar,
    first_day: dt.date,
    days: int,
    *,
    now: dt.datetime,
    rules: SlotRules = SlotRules(),
    base_price_cents: int | None = None,
) -> list[Slot]:
    """Every bookable start on ``days`` local dates from ``first_day``, in time order."""
    zone = calendar.zone
    found = bookable_starts([calendar], [first_day], days, now=now, rules=rules)
    length = dt.timedelta(minutes=rules.session_minutes)
    prices = [None if base_price_cents is None else price_cents(base_price_cents, x) for x in found.multipliers]
    slots = []
    for at, index in zip(found.start.tolist(), found.window.tolist()):
        start = EPOCH + dt.timedelta(microseconds=at)
        slots.append(Slot(start, start + length, start.astimezone(zone), found.multipliers[index], prices[index]))
    return slots


def wall_seconds(day: dt.date) -> int:
    """A local date's midnight as seconds since 1970-01-01 00:00 of the same wall clock."""
    return (day - WALL_EPOCH).days * DAY_SECONDS


def wall_clock(zone: ZoneInfo, first_day: dt.date, days: int) -> tuple[int, int, int]:
    """How ``_instant`` reads ``zone``'s clock on ``days`` local dates from ``first_day``, for SQL:
    ``(switch, before, after)`` such that the wall time ``w`` (``wall_seconds`` + seconds after
    midnight) is the instant ``w - before`` (epoch seconds) if ``w < switch``, else ``w - after``.
    ``switch`` is the first wall time read with the new offset when the clock changes in the range
    (zones change theirs months apart), else the range's end."""

    def offset(wall: int) -> int:
        local = dt.datetime.combine(WALL_EPOCH, dt.time()) + dt.timedelta(seconds=wall)
        return wall - int(_instant(local.date(), local.time(), zone).timestamp())

    low, high = wall_seconds(first_day), wall_seconds(first_day + dt.timedelta(days=days)) - 1
    first, last = offset(low), offset(high)
    if first == last:
        return high + 1, first, first
    while high - low > 1:  # offset(low) is the old offset, offset(high) the new one
        middle = (low + high) // 2
        low, high = (middle, high) if offset(middle) == first else (low, middle)
    return high, first, last


# --- reading calendars ------------------------------------------------------------------------


def weekly_slots(conn: Connection, mechanic_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[WeeklySlot]]:
    """The weekly slots of each mechanic, by day and start."""
    sl = s.mechanic_availability_slots
    slots = defaultdict(list)
    for row in conn.execute(
        sa.select(
            sl.c.id,
            sl.c.mechanic_id,
            sl.c.day_of_week,
            sl.c.start_time,
            sl.c.end_time,
            sl.c.price_multiplier,
            sl.c.is_available,
        )
        .where(sl.c.mechanic_id.in_(mechanic_ids))
        .order_by(sl.c.mechanic_id, sl.c.day_of_week, sl.c.start_time)
    ).all():
        slots[row.mechanic_id].append(
            WeeklySlot(row.day_of_week, row.start_time, row.end_time, row.price_multiplier, row.is_available, row.id)
        )
    return slots


def load_calendars(
    conn: Connection, mechanic_ids: Sequence[Any] | None, first_day: dt.date, days: int, bookings: bool = True
) -> dict[uuid.UUID, Calendar]:
    """Calendars of the given mechanics (None: every active mechanic) with the overrides
    and (unless ``bookings`` is false) booked sessions that can matter for ``days`` local
    dates from ``first_day``."""
    m, ov, se = s.mechanics, s.mechanic_availability_overrides, s.sessions
    if mechanic_ids is None:
        chosen = sa.select(m.c.user_id).where(m.c.is_active).scalar_subquery()
        who = m.c.user_id.in_(chosen)
    else:
        who = m.c.user_id.in_([parse_uuid(i, "Mechanic", ValidationError) for i in mechanic_ids])
    mechanics = conn.execute(sa.select(m.c.user_id, m.c.timezone, m.c.is_active).where(who)).all()
    ids = [row.user_id for row in mechanics]
    if not ids:
        return {}
    # Local dates sit within +-14 h of UTC; two days either side also cover length and buffer.
    low = dt.datetime.combine(first_day - dt.timedelta(days=2), dt.time(), UTC)
    high = dt.datetime.combine(first_day + dt.timedelta(days=days + 2), dt.time(), UTC)
    slots = weekly_slots(conn, ids)
    overrides, booked = defaultdict(list), defaultdict(list)
    for row in conn.execute(
        sa.select(ov).where(
            ov.c.mechanic_id.in_(ids), ov.c.date >= first_day, ov.c.date < first_day + dt.timedelta(days=days)
        )
    ).all():
        overrides[row.mechanic_id].append(
            Override(row.date, row.is_available, row.start_time, row.end_time, row.price_multiplier, row.reason)
        )
    if bookings:
        for row in conn.execute(
            sa.select(se.c.mechanic_id, se.c.scheduled_at).where(
                se.c.mechanic_id.in_(ids),
                se.c.status.in_(BLOCKING_STATUSES),
                se.c.scheduled_at >= low,
                se.c.scheduled_at < high,
            )
        ).all():
            booked[row.mechanic_id].append(row.scheduled_at.astimezone(UTC))
    return {
        row.user_id: Calendar(
            row.user_id,
            row.timezone,
            tuple(slots[row.user_id]),
            tuple(overrides[row.user_id]),
            tuple(sorted(booked[row.user_id])),
            row.is_active,
        )
        for row in mechanics
    }


def base_prices(conn: Connection) -> dict[str, int]:
    """Base price in cents per session type (types without one are missing)."""
    bp = s.session_base_prices
    return dict(conn.execute(sa.select(bp.c.session_type, bp.c.price_cents)).all())


# --- the booking check ------------------------------------------------------------------------


def check_booking(
    conn: Connection,
    mechanic_id: Any,
    session_type: str,
    start: dt.datetime,
    *,
    now: dt.datetime,
    rules: SlotRules = SlotRules(),
    quoted_price_cents: int | None = None,
) -> Slot:
    """The slot starting at ``start`` if it is bookable now, with its price; the server's
    word on a customer's choice. Raises BookingRejected with the reason otherwise."""
    if session_type not in s.SESSION_TYPES:
        raise BookingRejected(f"Unknown session type {str(session_type)[:20]!r}.")
    if start.tzinfo is None:
        raise BookingRejected("The start time needs a timezone.")
    try:
        calendars = load_calendars(conn, [mechanic_id], start.date() - dt.timedelta(days=2), 5)
    except ValidationError:
        calendars = {}
    calendar = next(iter(calendars.values()), None)
    if calendar is None or not calendar.is_active:
        raise BookingRejected("This mechanic is not taking bookings.", "not_taking_bookings")
    base = base_prices(conn).get(session_type)
    if base is None:
        raise BookingRejected(f"No base price is set for {session_type} sessions yet.", "no_price")
    try:
        first_day = start.astimezone(calendar.zone).date() - dt.timedelta(days=1)
    except ValidationError as exc:
        raise BookingRejected(f"This mechanic's calendar cannot be read: {exc}") from None
    start = start.astimezone(UTC)

    def offered(cal: Calendar, slot_rules: SlotRules, at: dt.datetime) -> Slot | None:
        found = bookable_slots(cal, first_day, 3, now=at, rules=slot_rules, base_price_cents=base)
        return next((slot for slot in found if slot.start_utc == start), None)

    slot = offered(calendar, rules, now)
    if slot is None:
        if offered(replace(calendar, booked=()), replace(rules, notice_minutes=0), start) is None:
            local_day = start.astimezone(calendar.zone).date()
            if not availability_windows(calendar, local_day, 1):
                raise BookingRejected(f"The mechanic does not work on {local_day:%a %d %b %Y} (their date).", "day_off")
            raise BookingRejected(
                "That time is not an open start time in the mechanic's availability.", "outside_hours"
            )
        if start < now + dt.timedelta(minutes=rules.notice_minutes):
            raise BookingRejected(f"Bookings need at least {rules.notice_minutes} minutes' notice.", "too_soon")
        raise BookingRejected(
            f"That time clashes with a booked session (including the {rules.buffer_minutes}-minute buffer).", "taken"
        )
    if quoted_price_cents is not None and quoted_price_cents != slot.price_cents:
        raise BookingRejected(
            f"The price is now ${slot.price_cents / 100:,.2f}; confirm the new price.", "price_changed"
        )
    return slot


# --- bookable slots for customers ------------------------------------------------------------


def _date(value: Any, what: str) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, (dt.date, str)):
        raise ValidationError(f"The {what} date must be a date like 2026-03-09.")
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(f"The {what} date {value[:20]!r} is not a date like 2026-03-09.") from None
    return value


def slots_by_day(
    engine: Engine,
    mechanic_id: Any,
    *,
    start: Any,
    end: Any,
    zone: str,
    session_type: str,
    now: dt.datetime | None = None,
    rules: SlotRules = SlotRules(),
) -> dict[str, list[dict]]:
    """A mechanic's bookable starts on the dates ``start`` to ``end`` (both included, at most
    ``MAX_SLOT_DAYS``) as the customer's ``zone`` shows them: ``{"2026-03-09": [slot, ...]}``
    with every date present, each slot ``start`` and ``end`` (aware, in ``zone``),
    ``price_cents`` and ``multiplier`` (text, two decimals). The same rules as ``check_booking``.
    """
    if session_type not in s.SESSION_TYPES:
        raise ValidationError(
            f"Unknown session type {str(session_type)[:20]!r}; use one of {', '.join(s.SESSION_TYPES)}."
        )
    shown_in = parse_timezone(zone)
    first, last = _date(start, "start"), _date(end, "end")
    if last < first:
        raise ValidationError(f"The end date {last} is before the start date {first}.")
    days = (last - first).days + 1
    if days > MAX_SLOT_DAYS:
        raise ValidationError(f"Ask for at most {MAX_SLOT_DAYS} days of slots at a time; {days} asked.")
    mechanic = parse_uuid(mechanic_id, "Mechanic", ValidationError)
    now = now or dt.datetime.now(UTC)
    with engine.connect() as conn:
        # the customer's dates lie within a day either side of the mechanic's
        calendar = load_calendars(conn, [mechanic], first - dt.timedelta(days=1), days + 2).get(mechanic)
        if calendar is None:
            raise NotFound(f"No mechanic with id {mechanic}.")
        base = base_prices(conn).get(session_type)
    if not calendar.is_active:
        raise ValidationError("This mechanic is not taking bookings.")
    if base is None:
        raise ValidationError(f"No base price is set for {session_type} sessions yet.")
    found: dict[str, list[dict]] = {(first + dt.timedelta(days=n)).isoformat(): [] for n in range(days)}
    for slot in bookable_slots(
        calendar, first - dt.timedelta(days=1), days + 2, now=now, rules=rules, base_price_cents=base
    ):
        local = slot.start_utc.astimezone(shown_in)
        day = found.get(local.date().isoformat())
        if day is not None:
            day.append(
                {
                    "start": local,
                    "end": slot.end_utc.astimezone(shown_in),
                    "price_cents": slot.price_cents,
                    "multiplier": f"{slot.multiplier:.2f}",
                }
            )
    return found
