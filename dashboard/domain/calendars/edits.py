"""Edits of mechanic calendars and prices.

Each edit checks the actor's role (managers and admins; support reads only),
validates its input, then writes in one transaction together with one audit
row per change, or raises and changes nothing. Calendar edits are audited on
the mechanic (entity ``mechanic_calendar``, id = the mechanic's user id), base
prices on ``session_base_price`` (id = the session type). On PostgreSQL the
mechanic's row is locked first, so two managers editing one calendar take turns
and the overlap check always sees the latest slots.

Booked sessions keep the price they were booked at: nothing here touches
``sessions``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dashboard.core import schema as s
from dashboard.core.audit import UNCHECKED, record_audit, unchanged_since_seen
from dashboard.core.auth import Actor, require_current_role, require_role
from dashboard.core.db import locking
from dashboard.core.errors import NotFound
from dashboard.core.validation import parse_uuid
from dashboard.domain.calendars.slots import (
    DAY_NAMES,
    ONE,
    UTC,
    Override,
    ValidationError,
    WeeklySlot,
    parse_base_price,
    parse_day,
    parse_multiplier,
    parse_reason,
    parse_time,
    parse_timezone,
    validate_weekly_rows,
    weekly_slots,
)

EDITOR_ROLES = ("manager", "admin")
CALENDAR = "mechanic_calendar"
BASE_PRICE = "session_base_price"


@dataclass(frozen=True)
class SlotChanges:
    created: int = 0
    updated: int = 0
    deleted: int = 0

    @property
    def total(self) -> int:
        return self.created + self.updated + self.deleted

    def __add__(self, other: SlotChanges) -> SlotChanges:
        return SlotChanges(self.created + other.created, self.updated + other.updated, self.deleted + other.deleted)


def _lock_mechanic(conn: Connection, mechanic_id: uuid.UUID):
    """The mechanic's row (locked on PostgreSQL); NotFound if there is none."""
    m = s.mechanics
    row = conn.execute(
        locking(conn, sa.select(m.c.user_id, m.c.display_name, m.c.timezone).where(m.c.user_id == mechanic_id))
    ).first()
    if row is None:
        raise NotFound(f"Unknown mechanic {mechanic_id}.")
    return row


def _calendar_unchanged(conn: Connection, mechanic, seen: Any, stored: Any) -> None:
    """ChangedMeanwhile naming the mechanic's calendar if the editor saw ``seen`` but ``stored`` is there now."""
    unchanged_since_seen(conn, seen, stored, f"{mechanic.display_name}'s calendar", CALENDAR, mechanic.user_id)


def _slot_snapshot(slot: WeeklySlot) -> dict:
    return {
        "slot_id": slot.id,
        "day": DAY_NAMES[slot.day_of_week],
        "start_time": f"{slot.start:%H:%M}",
        "end_time": f"{slot.end:%H:%M}",
        "is_available": slot.is_available,
        "price_multiplier": f"{slot.multiplier:.2f}",
    }


def _slot_values(slot: WeeklySlot) -> dict:
    return {
        "day_of_week": slot.day_of_week,
        "start_time": slot.start,
        "end_time": slot.end,
        "is_available": slot.is_available,
        "price_multiplier": slot.multiplier,
    }


def _write_slots(
    conn: Connection, actor: Actor, mechanic_id: uuid.UUID, new: Sequence[WeeklySlot], reason: str | None = None
) -> SlotChanges:
    """Make the mechanic's weekly slots equal ``new`` (kept ids are updated, the rest
    inserted or deleted), with an audit row per change."""
    table = s.mechanic_availability_slots
    current = {slot.id: slot for slot in weekly_slots(conn, [mechanic_id]).get(mechanic_id, [])}
    gone = {
        p: ["This slot was deleted meanwhile: reload the page."]
        for p, slot in enumerate(new)
        if slot.id is not None and slot.id not in current
    }
    if gone:
        raise ValidationError("Someone else changed this calendar: reload the page.", gone)
    created = updated = 0
    for slot in new:
        if slot.id is None:
            slot = replace(slot, id=uuid.uuid4())
            conn.execute(table.insert().values(id=slot.id, mechanic_id=mechanic_id, **_slot_values(slot)))
            record_audit(conn, actor, "slot.create", CALENDAR, mechanic_id, after=_slot_snapshot(slot), reason=reason)
            created += 1
        elif slot != current[slot.id]:
            conn.execute(table.update().where(table.c.id == slot.id).values(**_slot_values(slot)))
            record_audit(
                conn,
                actor,
                "slot.update",
                CALENDAR,
                mechanic_id,
                before=_slot_snapshot(current[slot.id]),
                after=_slot_snapshot(slot),
                reason=reason,
            )
            updated += 1
    kept = {slot.id for slot in new}
    removed = [slot for slot_id, slot in current.items() if slot_id not in kept]
    for slot in removed:
        conn.execute(table.delete().where(table.c.id == slot.id))
        record_audit(conn, actor, "slot.delete", CALENDAR, mechanic_id, before=_slot_snapshot(slot), reason=reason)
    return SlotChanges(created, updated, len(removed))


def save_weekly_slots(
    engine: Engine,
    actor: Actor | None,
    mechanic_id: Any,
    rows: Sequence[Mapping[str, Any]],
    *,
    seen: Sequence[Mapping[str, Any]] | None = None,
) -> SlotChanges:
    """Replace a mechanic's weekly schedule with ``rows`` (see ``validate_weekly_rows``):
    rows with an id update that slot, rows without one add a slot, missing slots are deleted.

    ``seen``: the slots the editor started from (rows of the same form). When the stored slots
    differ from them, another editor saved meanwhile: ValidationError saying who and when,
    and nothing is saved (instead of deleting a slot the editor never saw).
    """
    require_role(actor, *EDITOR_ROLES)
    new = validate_weekly_rows(rows)
    seen_slots = None if seen is None else set(validate_weekly_rows(seen))
    mechanic = parse_uuid(mechanic_id, "Mechanic", ValidationError)
    with engine.begin() as conn:
        actor = require_current_role(conn, actor, *EDITOR_ROLES)
        row = _lock_mechanic(conn, mechanic)
        if seen_slots is not None:
            _calendar_unchanged(conn, row, seen_slots, set(weekly_slots(conn, [mechanic]).get(mechanic, [])))
        return _write_slots(conn, actor, mechanic, new)


def apply_peak(
    slots: Iterable[WeeklySlot], days: set[int], start: dt.time, end: dt.time, multiplier: Decimal
) -> list[WeeklySlot]:
    """The slots with ``multiplier`` on the available hours inside ``start``-``end`` of ``days``.

    A slot that sticks out of the window is split: the part inside keeps the slot's id and
    takes the new multiplier, the parts outside become new slots at the old multiplier.
    Unavailable slots and hours outside any slot are left alone (a peak never adds hours)."""
    result = []
    for slot in slots:
        inside = (
            slot.is_available
            and slot.day_of_week in days
            and slot.start < end
            and start < slot.end
            and slot.multiplier != multiplier
        )
        if not inside:
            result.append(slot)
            continue
        low, high = max(slot.start, start), min(slot.end, end)
        result.append(replace(slot, start=low, end=high, multiplier=multiplier))
        if slot.start < low:
            result.append(replace(slot, end=low, id=None))
        if high < slot.end:
            result.append(replace(slot, start=high, id=None))
    return sorted(result, key=lambda slot: (slot.day_of_week, slot.start))


def set_peak_multiplier(
    engine: Engine,
    actor: Actor | None,
    mechanic_ids: Sequence[Any],
    days: Iterable[Any],
    start: Any,
    end: Any,
    multiplier: Any,
) -> SlotChanges:
    """Set ``multiplier`` on ``days`` between ``start`` and ``end`` (local to each mechanic)
    for every selected mechanic, in one transaction (see ``apply_peak``)."""
    require_role(actor, *EDITOR_ROLES)
    if not mechanic_ids:
        raise ValidationError("Select at least one mechanic.")
    chosen_days = {parse_day(day) for day in days}
    if not chosen_days:
        raise ValidationError("Select at least one day.")
    low, high = parse_time(start, "Start"), parse_time(end, "End")
    if low >= high:
        raise ValidationError(f"Start {low:%H:%M} must be before end {high:%H:%M}.")
    value = parse_multiplier(multiplier)
    ids = sorted({parse_uuid(m, "Mechanic", ValidationError) for m in mechanic_ids})
    reason = f"peak x{value} on {', '.join(DAY_NAMES[d][:3] for d in sorted(chosen_days))} {low:%H:%M}-{high:%H:%M}"
    changes = SlotChanges()
    with engine.begin() as conn:
        actor = require_current_role(conn, actor, *EDITOR_ROLES)
        for mechanic in ids:
            _lock_mechanic(conn, mechanic)
        current = weekly_slots(conn, ids)
        for mechanic in ids:
            new = apply_peak(current.get(mechanic, []), chosen_days, low, high, value)
            changes += _write_slots(conn, actor, mechanic, new, reason=reason)
    return changes


# --- date overrides ----------------------------------------------------------------------


def parse_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError(f"Date {str(value)[:20]!r} is not a date like 2026-03-08.") from None


def parse_override(
    day: Any, *, is_available: bool, start: Any = None, end: Any = None, multiplier: Any = ONE, reason: Any = None
) -> Override:
    """Time off for a whole day (``is_available=False``, no hours), or available only
    from ``start`` to ``end`` at ``multiplier``."""
    date = parse_date(day)
    text = parse_reason(reason)
    if not is_available:
        if start is not None or end is not None:
            raise ValidationError("Time off covers the whole day: leave the hours empty.")
        return Override(date, False, reason=text)
    low, high = parse_time(start, "Start"), parse_time(end, "End")
    if low >= high:
        raise ValidationError(f"Start {low:%H:%M} must be before end {high:%H:%M}.")
    return Override(date, True, low, high, parse_multiplier(multiplier), text)


def _override_snapshot(override: Override) -> dict:
    return {
        "date": override.date,
        "is_available": override.is_available,
        "start_time": override.start and f"{override.start:%H:%M}",
        "end_time": override.end and f"{override.end:%H:%M}",
        "price_multiplier": f"{override.multiplier:.2f}",
        "reason": override.reason,
    }


def _existing_override(conn: Connection, mechanic: uuid.UUID, date: dt.date) -> Override | None:
    ov = s.mechanic_availability_overrides
    row = conn.execute(sa.select(ov).where(ov.c.mechanic_id == mechanic, ov.c.date == date)).first()
    return row and Override(row.date, row.is_available, row.start_time, row.end_time, row.price_multiplier, row.reason)


def _check_not_past(timezone: str, date: dt.date, now: dt.datetime | None) -> None:
    today = (now or dt.datetime.now(UTC)).astimezone(parse_timezone(timezone)).date()
    if date < today:
        raise ValidationError(
            f"{date:%a %d %b %Y} is in the past for this mechanic ({timezone}): "
            "past days are history and stay as they were."
        )


def set_override(
    engine: Engine,
    actor: Actor | None,
    mechanic_id: Any,
    day: Any,
    *,
    is_available: bool,
    start: Any = None,
    end: Any = None,
    multiplier: Any = ONE,
    reason: Any = None,
    now: dt.datetime | None = None,
    seen: Override | None | object = UNCHECKED,
) -> Override:
    """Add or replace the override of a mechanic's local date (today or later). ``seen``: the
    override of that date the editor saw (None: none); ChangedMeanwhile if that is no longer so."""
    require_role(actor, *EDITOR_ROLES)
    override = parse_override(
        day, is_available=is_available, start=start, end=end, multiplier=multiplier, reason=reason
    )
    mechanic = parse_uuid(mechanic_id, "Mechanic", ValidationError)
    ov = s.mechanic_availability_overrides
    with engine.begin() as conn:
        actor = require_current_role(conn, actor, *EDITOR_ROLES)
        row = _lock_mechanic(conn, mechanic)
        _check_not_past(row.timezone, override.date, now)
        before = _existing_override(conn, mechanic, override.date)
        _calendar_unchanged(conn, row, seen, before)
        values = {
            "is_available": override.is_available,
            "start_time": override.start,
            "end_time": override.end,
            "price_multiplier": override.multiplier,
            "reason": override.reason,
        }
        if before is None:
            conn.execute(ov.insert().values(mechanic_id=mechanic, date=override.date, **values))
        else:
            conn.execute(ov.update().where(ov.c.mechanic_id == mechanic, ov.c.date == override.date).values(**values))
        record_audit(
            conn,
            actor,
            "override.set",
            CALENDAR,
            mechanic,
            before=before and _override_snapshot(before),
            after=_override_snapshot(override),
        )
    return override


def delete_override(
    engine: Engine,
    actor: Actor | None,
    mechanic_id: Any,
    day: Any,
    now: dt.datetime | None = None,
    seen: Override | object = UNCHECKED,
) -> None:
    """Remove the override of a mechanic's local date (today or later): the weekly hours apply
    again. ``seen``: the override the editor saw; ChangedMeanwhile if it was changed since."""
    require_role(actor, *EDITOR_ROLES)
    date = parse_date(day)
    mechanic = parse_uuid(mechanic_id, "Mechanic", ValidationError)
    ov = s.mechanic_availability_overrides
    with engine.begin() as conn:
        actor = require_current_role(conn, actor, *EDITOR_ROLES)
        row = _lock_mechanic(conn, mechanic)
        _check_not_past(row.timezone, date, now)
        before = _existing_override(conn, mechanic, date)
        if before is None:
            raise ValidationError(f"There is no override on {date:%a %d %b %Y}.")
        _calendar_unchanged(conn, row, seen, before)
        conn.execute(ov.delete().where(ov.c.mechanic_id == mechanic, ov.c.date == date))
        record_audit(conn, actor, "override.delete", CALENDAR, mechanic, before=_override_snapshot(before))


# --- mechanic timezone and base prices ----------------------------------------------------


def set_mechanic_timezone(
    engine: Engine, actor: Actor | None, mechanic_id: Any, timezone: Any, *, seen: str | object = UNCHECKED
) -> str:
    """Change the IANA timezone a mechanic's hours are read in. ``seen``: the timezone the
    editor saw; ChangedMeanwhile if it was changed since."""
    require_role(actor, *EDITOR_ROLES)
    name = str(parse_timezone(timezone))
    mechanic = parse_uuid(mechanic_id, "Mechanic", ValidationError)
    m = s.mechanics
    with engine.begin() as conn:
        actor = require_current_role(conn, actor, *EDITOR_ROLES)
        row = _lock_mechanic(conn, mechanic)
        before = row.timezone
        _calendar_unchanged(conn, row, seen, before)
        if before != name:
            conn.execute(m.update().where(m.c.user_id == mechanic).values(timezone=name))
            record_audit(
                conn, actor, "timezone.set", CALENDAR, mechanic, before={"timezone": before}, after={"timezone": name}
            )
    return name


def set_base_price(
    engine: Engine, actor: Actor | None, session_type: Any, price: Any, *, seen_cents: int | None | object = UNCHECKED
) -> int:
    """Set the base price of a session type from dollars (e.g. ``"49.99"``); returns cents.
    Sessions already booked keep their own price. ``seen_cents``: the price the editor saw
    (None: not set); ChangedMeanwhile saying who changed it and when if it is no longer so."""
    require_role(actor, *EDITOR_ROLES)
    if session_type not in s.SESSION_TYPES:
        raise ValidationError(f"Unknown session type {str(session_type)[:20]!r}.")
    cents = parse_base_price(price)
    bp = s.session_base_prices
    with engine.begin() as conn:
        actor = require_current_role(conn, actor, *EDITOR_ROLES)
        before = conn.execute(
            locking(conn, sa.select(bp.c.price_cents).where(bp.c.session_type == session_type))
        ).scalar()
        unchanged_since_seen(conn, seen_cents, before, f"The {session_type} base price", BASE_PRICE, session_type)
        if before == cents:
            return cents
        values = {"price_cents": cents, "updated_by": actor.email, "updated_at": dt.datetime.now(UTC)}
        if before is None:
            conn.execute(bp.insert().values(session_type=session_type, **values))
        else:
            conn.execute(bp.update().where(bp.c.session_type == session_type).values(**values))
        record_audit(
            conn,
            actor,
            "base_price.set",
            BASE_PRICE,
            session_type,
            before=None if before is None else {"price_cents": before},
            after={"price_cents": cents},
        )
    return cents
