"""Calendar and price edits, and the booking check, on both databases.

Every rejected edit must leave the calendar and the audit log exactly as they were.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic import command

from dashboard.core import schema as s
from dashboard.core.auth import Actor, PermissionDenied
from dashboard.core.db import make_engine
from dashboard.core.errors import ChangedMeanwhile, NotFound
from dashboard.core.migrate import alembic_config
from dashboard.domain.calendars.edits import (
    delete_override,
    save_weekly_slots,
    set_base_price,
    set_mechanic_timezone,
    set_override,
    set_peak_multiplier,
)
from dashboard.domain.calendars.slots import BookingRejected, Override, ValidationError, check_booking
from tests.factories import add_mechanic, add_session, staff_fixture, weekly_slot

UTC = dt.UTC
MANAGER = Actor("manager@example.com", "manager")
SUPPORT = Actor("support@example.com", "support")
OTHER_MANAGER = Actor("mo@example.com", "manager")
staff = staff_fixture(MANAGER, OTHER_MANAGER, SUPPORT, Actor("admin@example.com", "admin"))
NOW = dt.datetime(2026, 3, 9, 6, 0, tzinfo=UTC)  # Monday 07:00 in Berlin


def slots_of(engine, mechanic) -> list[tuple]:
    sl = s.mechanic_availability_slots
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(sl.c.day_of_week, sl.c.start_time, sl.c.end_time, sl.c.price_multiplier, sl.c.is_available)
                .where(sl.c.mechanic_id == mechanic)
                .order_by(sl.c.day_of_week, sl.c.start_time)
            )
        ]


def slot_ids(engine, mechanic) -> list[str]:
    sl = s.mechanic_availability_slots
    with engine.connect() as conn:
        return [
            str(i)
            for i in conn.execute(
                sa.select(sl.c.id).where(sl.c.mechanic_id == mechanic).order_by(sl.c.day_of_week, sl.c.start_time)
            ).scalars()
        ]


def audit_actions(engine) -> list[tuple]:
    a = s.audit_log
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(a.c.action, a.c.entity_type, a.c.entity_id, a.c.actor_email, a.c.reason).order_by(
                    a.c.created_at, a.c.action
                )
            )
        ]


@pytest.fixture
def mechanic(engine):
    with engine.begin() as conn:
        return add_mechanic(conn, "Mia", timezone="Europe/Berlin")


T = dt.time


# --- weekly slots --------------------------------------------------------------------------


def test_save_weekly_slots_creates_updates_deletes_with_audit(engine, mechanic):
    changes = save_weekly_slots(
        engine, MANAGER, mechanic, [weekly_slot(1, "09:00", "12:00"), weekly_slot(1, "13:00", "17:00")]
    )
    assert (changes.created, changes.updated, changes.deleted) == (2, 0, 0)
    morning, afternoon = slot_ids(engine, mechanic)
    changes = save_weekly_slots(
        engine,
        MANAGER,
        mechanic,
        [weekly_slot(1, "09:00", "12:00", "1.50", slot_id=morning), weekly_slot(2, "09:00", "12:00")],
    )
    assert (changes.created, changes.updated, changes.deleted) == (1, 1, 1)
    assert slots_of(engine, mechanic) == [
        (1, T(9), T(12), Decimal("1.50"), True),
        (2, T(9), T(12), Decimal("1.00"), True),
    ]
    actions = audit_actions(engine)
    assert sorted(a[0] for a in actions) == ["slot.create", "slot.create", "slot.create", "slot.delete", "slot.update"]
    assert {(a[1], a[2], a[3]) for a in actions} == {("mechanic_calendar", str(mechanic), MANAGER.email)}
    a = s.audit_log
    with engine.connect() as conn:
        before, after = conn.execute(sa.select(a.c.before, a.c.after).where(a.c.action == "slot.update")).one()
    if isinstance(before, str):  # DuckDB returns JSON as text
        import json

        before, after = json.loads(before), json.loads(after)
    assert before["price_multiplier"] == "1.00" and after["price_multiplier"] == "1.50"
    assert after == {
        "slot_id": morning,
        "day": "Monday",
        "start_time": "09:00",
        "end_time": "12:00",
        "is_available": True,
        "price_multiplier": "1.50",
    }
    # saving the same schedule again changes nothing and audits nothing
    assert (
        save_weekly_slots(
            engine,
            MANAGER,
            mechanic,
            [
                weekly_slot(1, "09:00", "12:00", "1.5", slot_id=morning),
                weekly_slot(2, "09:00", "12:00", slot_id=slot_ids(engine, mechanic)[1]),
            ],
        ).total
        == 0
    )
    assert len(audit_actions(engine)) == 5


BAD_SCHEDULES = {
    "overlap": [weekly_slot(1, "09:00", "12:00"), weekly_slot(1, "11:00", "13:00")],
    "start_after_end": [weekly_slot(1, "17:00", "09:00")],
    "start_equals_end": [weekly_slot(1, "09:00", "09:00")],
    "multiplier_zero": [weekly_slot(1, "09:00", "12:00", 0)],
    "multiplier_3.01": [weekly_slot(1, "09:00", "12:00", "3.01")],
    "multiplier_abc": [weekly_slot(1, "09:00", "12:00", "abc")],
    "multiplier_negative": [weekly_slot(1, "09:00", "12:00", "-1.00")],
    "day_7": [weekly_slot(7, "09:00", "12:00")],
    "time_abc": [weekly_slot(1, "abc", "12:00")],
}


@pytest.mark.parametrize("name", BAD_SCHEDULES)
def test_bad_weekly_slots_change_nothing(engine, mechanic, name):
    save_weekly_slots(engine, MANAGER, mechanic, [weekly_slot(3, "09:00", "17:00")])
    before, audited = slots_of(engine, mechanic), audit_actions(engine)
    with pytest.raises(ValidationError) as caught:
        save_weekly_slots(engine, MANAGER, mechanic, BAD_SCHEDULES[name])
    assert caught.value.row_errors  # each problem names its row
    assert slots_of(engine, mechanic) == before and audit_actions(engine) == audited


def test_support_cannot_edit_anything(engine, mechanic):
    attempts = [
        lambda: save_weekly_slots(engine, SUPPORT, mechanic, [weekly_slot(1, "09:00", "12:00")]),
        lambda: set_override(engine, SUPPORT, mechanic, "2026-03-10", is_available=False, reason="x", now=NOW),
        lambda: delete_override(engine, SUPPORT, mechanic, "2026-03-10", now=NOW),
        lambda: set_base_price(engine, SUPPORT, "video", "49.99"),
        lambda: set_peak_multiplier(engine, SUPPORT, [mechanic], [1], "17:00", "20:00", "1.50"),
        lambda: set_mechanic_timezone(engine, SUPPORT, mechanic, "Europe/Paris"),
        lambda: save_weekly_slots(engine, None, mechanic, [weekly_slot(1, "09:00", "12:00")]),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied):
            attempt()
    assert slots_of(engine, mechanic) == [] and audit_actions(engine) == []


def test_unknown_mechanic_and_stale_slot_ids_are_rejected(engine, mechanic):
    for unknown in (uuid.uuid4(), "not-a-uuid"):
        with pytest.raises(
            NotFound if isinstance(unknown, uuid.UUID) else ValidationError, match="Unknown mechanic|not a valid id"
        ):
            save_weekly_slots(engine, MANAGER, unknown, [weekly_slot(1, "09:00", "12:00")])
    with pytest.raises(ValidationError, match="reload") as caught:
        save_weekly_slots(engine, MANAGER, mechanic, [weekly_slot(1, "09:00", "12:00", slot_id=uuid.uuid4())])
    assert caught.value.row_errors == {0: ["This slot was deleted meanwhile: reload the page."]}
    assert slots_of(engine, mechanic) == [] and audit_actions(engine) == []


def test_admin_may_edit(engine, mechanic):
    save_weekly_slots(engine, Actor("admin@example.com", "admin"), mechanic, [weekly_slot(1, "09:00", "12:00")])
    assert len(slots_of(engine, mechanic)) == 1


# --- bulk peak --------------------------------------------------------------------------------


def test_peak_multiplier_across_mechanics_in_one_transaction(engine, mechanic):
    with engine.begin() as conn:
        other = add_mechanic(conn, "Noah", timezone="America/New_York")
        idle = add_mechanic(conn, "Ira", timezone="Asia/Kolkata")
    save_weekly_slots(engine, MANAGER, mechanic, [weekly_slot(1, "09:00", "18:00"), weekly_slot(2, "09:00", "12:00")])
    save_weekly_slots(engine, MANAGER, other, [weekly_slot(1, "16:00", "20:00"), weekly_slot(5, "17:00", "19:00")])
    audited = len(audit_actions(engine))
    changes = set_peak_multiplier(engine, MANAGER, [mechanic, other, idle], ["Monday", 5], "17:00", "19:00", "1.75")
    assert slots_of(engine, mechanic) == [
        (1, T(9), T(17), Decimal("1.00"), True),
        (1, T(17), T(18), Decimal("1.75"), True),
        (2, T(9), T(12), Decimal("1.00"), True),
    ]
    assert slots_of(engine, other) == [
        (1, T(16), T(17), Decimal("1.00"), True),
        (1, T(17), T(19), Decimal("1.75"), True),
        (1, T(19), T(20), Decimal("1.00"), True),
        (5, T(17), T(19), Decimal("1.75"), True),
    ]
    assert (changes.created, changes.updated, changes.deleted) == (3, 3, 0)
    new_rows = audit_actions(engine)[audited:]
    assert len(new_rows) == 6 and {r[4] for r in new_rows} == {"peak x1.75 on Mon, Fri 17:00-19:00"}


@pytest.mark.parametrize(
    "args,message",
    [
        (([], [1], "17:00", "19:00", "1.5"), "at least one mechanic"),
        ((None, [], "17:00", "19:00", "1.5"), "at least one day"),
        ((None, [1], "19:00", "17:00", "1.5"), "before end"),
        ((None, [1], "17:00", "19:00", "3.01"), "from 0.50 to 3.00"),
        ((None, [9], "17:00", "19:00", "1.5"), "Sunday"),
        (([uuid.uuid4()], [1], "17:00", "19:00", "1.5"), "Unknown mechanic"),
    ],
)
def test_bad_peak_changes_nothing(engine, mechanic, args, message):
    save_weekly_slots(engine, MANAGER, mechanic, [weekly_slot(1, "09:00", "18:00")])
    before, audited = slots_of(engine, mechanic), audit_actions(engine)
    ids = [mechanic] if args[0] is None else [mechanic, *args[0]] if args[0] else []
    with pytest.raises(NotFound if message == "Unknown mechanic" else ValidationError, match=message):
        set_peak_multiplier(engine, MANAGER, ids, *args[1:])
    assert slots_of(engine, mechanic) == before and audit_actions(engine) == audited


# --- overrides --------------------------------------------------------------------------------


def overrides_of(engine, mechanic) -> list[tuple]:
    ov = s.mechanic_availability_overrides
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(
                    ov.c.date, ov.c.is_available, ov.c.start_time, ov.c.end_time, ov.c.price_multiplier, ov.c.reason
                )
                .where(ov.c.mechanic_id == mechanic)
                .order_by(ov.c.date)
            )
        ]


def test_overrides_are_set_replaced_and_deleted_with_audit(engine, mechanic):
    set_override(engine, MANAGER, mechanic, dt.date(2026, 3, 9), is_available=False, reason="Dentist", now=NOW)
    set_override(
        engine,
        MANAGER,
        mechanic,
        "2026-03-09",
        is_available=True,
        start="10:00",
        end="12:00",
        multiplier="2.00",
        reason="Short day",
        now=NOW,
    )
    assert overrides_of(engine, mechanic) == [(dt.date(2026, 3, 9), True, T(10), T(12), Decimal("2.00"), "Short day")]
    delete_override(engine, MANAGER, mechanic, "2026-03-09", now=NOW)
    assert overrides_of(engine, mechanic) == []
    assert [a[0] for a in audit_actions(engine)] == ["override.set", "override.set", "override.delete"]


def test_override_in_the_past_is_rejected_in_the_mechanics_timezone(engine):
    with engine.begin() as conn:
        honolulu = add_mechanic(conn, "Mia", timezone="Pacific/Honolulu")
    # 06:00Z on 9 March is still 8 March (20:00) in Honolulu: the 8th is today there, the 7th is past
    set_override(engine, MANAGER, honolulu, "2026-03-08", is_available=False, reason="Off", now=NOW)
    with pytest.raises(ValidationError, match="in the past"):
        set_override(engine, MANAGER, honolulu, "2026-03-07", is_available=False, reason="Off", now=NOW)
    with pytest.raises(ValidationError, match="in the past"):
        delete_override(engine, MANAGER, honolulu, "2026-03-07", now=NOW)
    assert len(overrides_of(engine, honolulu)) == 1 and len(audit_actions(engine)) == 1


def test_bad_overrides_change_nothing(engine, mechanic):
    for kwargs in (
        {"is_available": False, "reason": ""},
        {"is_available": False, "start": "10:00", "end": "12:00", "reason": "x"},
        {"is_available": True, "start": "12:00", "end": "10:00", "reason": "x"},
        {"is_available": True, "start": "10:00", "end": "12:00", "multiplier": "0", "reason": "x"},
    ):
        with pytest.raises(ValidationError):
            set_override(engine, MANAGER, mechanic, "2026-03-10", now=NOW, **kwargs)
    with pytest.raises(ValidationError, match="no override"):
        delete_override(engine, MANAGER, mechanic, "2026-03-10", now=NOW)
    assert overrides_of(engine, mechanic) == [] and audit_actions(engine) == []


def test_override_columns_have_checks(engine, mechanic):
    ov = s.mechanic_availability_overrides
    for bad in (
        {"is_available": False, "start_time": T(9), "end_time": T(10)},
        {"is_available": True, "start_time": T(10), "end_time": T(9)},
        {"is_available": True, "start_time": T(10)},
        {"is_available": True, "price_multiplier": "3.01"},
    ):
        with pytest.raises(sa.exc.DBAPIError):
            with engine.begin() as conn:
                conn.execute(ov.insert().values(mechanic_id=mechanic, date=dt.date(2026, 3, 10), **bad))
    for bad in ({"session_type": "video", "price_cents": 0}, {"session_type": "phone", "price_cents": 100}):
        with pytest.raises(sa.exc.DBAPIError):
            with engine.begin() as conn:
                conn.execute(s.session_base_prices.insert().values(**bad))


# --- timezone and base prices -------------------------------------------------------------------


def test_mechanic_timezone_must_be_iana(engine, mechanic):
    with pytest.raises(ValidationError, match="IANA"):
        set_mechanic_timezone(engine, MANAGER, mechanic, "Mars/Olympus_Mons")
    assert set_mechanic_timezone(engine, MANAGER, mechanic, "Asia/Kolkata") == "Asia/Kolkata"
    assert [a[0] for a in audit_actions(engine)] == ["timezone.set"]


def test_base_price_change_never_reprices_booked_sessions(engine, mechanic):
    with engine.begin() as conn:
        session = add_session(
            conn, mechanic, mechanic, "scheduled", scheduled_at=NOW + dt.timedelta(days=1), price_cents=4999
        )
    assert set_base_price(engine, MANAGER, "video", "59.99") == 5999
    assert set_base_price(engine, MANAGER, "video", "64.50") == 6450
    for bad in ("0", "abc", "-1", "12.345"):
        with pytest.raises(ValidationError):
            set_base_price(engine, MANAGER, "video", bad)
    with pytest.raises(ValidationError, match="session type"):
        set_base_price(engine, MANAGER, "phone", "10")
    with engine.connect() as conn:
        assert conn.execute(sa.select(s.sessions.c.price_cents).where(s.sessions.c.id == session)).scalar() == 4999
        assert conn.execute(sa.select(s.session_base_prices.c.price_cents)).scalar() == 6450
    assert [(a[0], a[2]) for a in audit_actions(engine)] == [("base_price.set", "video")] * 2


# --- the booking check ------------------------------------------------------------------------


@pytest.fixture
def bookable_mechanic(engine, mechanic):
    """Mia in Berlin works Mondays 09:00-12:00 (08:00-11:00Z), 11:00-12:00 at 1.25x; video costs $49.99."""
    save_weekly_slots(
        engine, MANAGER, mechanic, [weekly_slot(1, "09:00", "11:00"), weekly_slot(1, "11:00", "12:00", "1.25")]
    )
    set_base_price(engine, MANAGER, "video", "49.99")
    return mechanic


def at(hhmm: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"2026-03-09T{hhmm}").replace(tzinfo=UTC)


def test_booking_check_returns_the_server_price(engine, bookable_mechanic):
    with engine.connect() as conn:
        slot = check_booking(conn, bookable_mechanic, "video", at("10:00"), now=NOW, quoted_price_cents=6249)
    assert (slot.start_local.hour, slot.multiplier, slot.price_cents) == (11, Decimal("1.25"), 6249)
    with engine.connect() as conn:
        with pytest.raises(BookingRejected, match=r"price is now \$62.49"):
            check_booking(conn, bookable_mechanic, "video", at("10:00"), now=NOW, quoted_price_cents=4999)


@pytest.mark.parametrize(
    "start,now,message,reason",
    [
        (at("07:30"), NOW, "not an open start time", "outside_hours"),  # 08:30 local, before the slot
        (at("08:15"), NOW, "not an open start time", "outside_hours"),  # off the 30-minute grid
        (at("10:45"), NOW, "not an open start time", "outside_hours"),  # would end after 12:00 local
        (at("08:00") + dt.timedelta(days=1), NOW, "does not work on Tue 10 Mar 2026", "day_off"),  # no slot on Tuesdays
        (at("08:00"), at("07:00"), "120 minutes' notice", "too_soon"),
        (at("09:00"), NOW, "clashes with a booked session", "taken"),  # 09:30Z is booked
    ],
)
def test_booking_check_rejects_with_a_reason(engine, bookable_mechanic, start, now, message, reason):
    with engine.begin() as conn:
        add_session(conn, bookable_mechanic, bookable_mechanic, "scheduled", scheduled_at=at("09:30"), price_cents=4999)
        add_session(
            conn, bookable_mechanic, bookable_mechanic, "cancelled", scheduled_at=at("08:00"), price_cents=4999
        )  # cancelled frees its time
    with engine.connect() as conn:
        assert check_booking(conn, bookable_mechanic, "video", at("08:30"), now=NOW).price_cents == 4999
        with pytest.raises(BookingRejected, match=message) as rejected:
            check_booking(conn, bookable_mechanic, "video", start, now=now)
    assert rejected.value.reason == reason


def test_booking_check_rejects_unknown_inputs(engine, bookable_mechanic):
    with engine.begin() as conn:
        retired = add_mechanic(conn, "Mia", timezone="Europe/Berlin", is_active=False)
    with engine.connect() as conn:
        for mechanic in (uuid.uuid4(), "garbage", retired):
            with pytest.raises(BookingRejected, match="not taking bookings"):
                check_booking(conn, mechanic, "video", at("08:00"), now=NOW)
        with pytest.raises(BookingRejected, match="session type"):
            check_booking(conn, bookable_mechanic, "phone", at("08:00"), now=NOW)
        with pytest.raises(BookingRejected, match="No base price"):
            check_booking(conn, bookable_mechanic, "chat", at("08:00"), now=NOW)
        with pytest.raises(BookingRejected, match="timezone"):
            check_booking(conn, bookable_mechanic, "video", at("08:00").replace(tzinfo=None), now=NOW)


# --- migration of existing platform overrides ------------------------------------------------------


def test_step_14_keeps_existing_overrides(empty_url):
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0013_reputation")
    with engine.begin() as conn:
        mechanic = add_mechanic(conn, "Mia", timezone="Europe/Berlin")
        conn.execute(
            sa.text(
                "INSERT INTO mechanic_availability_overrides (mechanic_id, date, is_available, reason) "
                "VALUES (:m, '2026-03-10', false, 'holiday')"
            ),
            {"m": mechanic},
        )
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    assert overrides_of(engine, mechanic) == [(dt.date(2026, 3, 10), False, None, None, Decimal("1.00"), "holiday")]
    engine.dispose()


# --- edits from an out-of-date view --------------------------------------------------------


def test_a_slot_added_meanwhile_is_not_deleted_by_a_save_from_an_old_view(engine, mechanic):
    save_weekly_slots(engine, MANAGER, mechanic, [weekly_slot(1, "09:00", "12:00")])
    (monday,) = slot_ids(engine, mechanic)
    seen = [weekly_slot(1, T(9), T(12), Decimal("1.00"), slot_id=monday)]  # what the first manager's view shows
    save_weekly_slots(engine, OTHER_MANAGER, mechanic, [*seen, weekly_slot(2, "09:00", "12:00")])  # adds Tuesday
    with pytest.raises(
        ChangedMeanwhile,
        match=r"Mia's calendar was changed by mo@example.com at "
        r"\d\d \w{3} \d{4} \d\d:\d\d UTC: reload the page",
    ):
        save_weekly_slots(engine, MANAGER, mechanic, [weekly_slot(1, "09:00", "13:00", slot_id=monday)], seen=seen)
    assert slots_of(engine, mechanic) == [
        (1, T(9), T(12), Decimal("1.00"), True),
        (2, T(9), T(12), Decimal("1.00"), True),
    ]
    assert len(audit_actions(engine)) == 2
    fresh = [
        weekly_slot(1, T(9), T(12), 1.0, slot_id=monday),
        weekly_slot(2, T(9), T(12), 1.0, slot_id=slot_ids(engine, mechanic)[1]),
    ]
    assert (
        save_weekly_slots(
            engine, MANAGER, mechanic, [weekly_slot(1, "09:00", "13:00", slot_id=monday), fresh[1]], seen=fresh
        ).updated
        == 1
    )


def test_a_base_price_changed_meanwhile_is_not_overwritten(engine):
    set_base_price(engine, OTHER_MANAGER, "video", "45.00")
    with pytest.raises(ChangedMeanwhile, match="The video base price was changed by mo@example.com at"):
        set_base_price(engine, MANAGER, "video", "55.00", seen_cents=None)  # the view showed no price
    with pytest.raises(ChangedMeanwhile):
        set_base_price(engine, MANAGER, "video", "55.00", seen_cents=4000)
    assert set_base_price(engine, MANAGER, "video", "55.00", seen_cents=4500) == 5500


@pytest.mark.parametrize(
    "value, message",
    [
        ("1e30", "Multiplier must be from 0.50 to 3.00, got 1e30"),
        (1e30, "Multiplier must be from 0.50 to 3.00"),
        ("9" * 40, "Multiplier must be from 0.50 to 3.00"),
        (10**40, "Multiplier must be from 0.50 to 3.00"),
        ("inf", "Multiplier must be a finite number"),
        (float("-inf"), "Multiplier must be a finite number"),
        ("1\x00", "is not a number"),
        (True, "Multiplier must be a number, not yes or no"),
        ([1], "is not a number"),
        ("1.005", "at most two decimals"),
    ],
)
def test_multiplier_input_gets_its_own_message(engine, mechanic, value, message):
    with pytest.raises(ValidationError) as info:
        save_weekly_slots(engine, MANAGER, mechanic, [weekly_slot(1, "09:00", "12:00", multiplier=value)])
    assert message in " ".join(info.value.row_errors[0])
    assert slots_of(engine, mechanic) == []


@pytest.mark.parametrize(
    "value, message",
    [
        ("1e30", "Price must be above \\$0.00 and at most \\$1,000.00"),
        ("9" * 40, "Price must be above"),
        (float("inf"), "Price must be a finite number"),
        ("4\x009", "is not a number"),
        (False, "Price must be a number, not yes or no"),
    ],
)
def test_base_price_input_gets_its_own_message(engine, value, message):
    with pytest.raises(ValidationError, match=message):
        set_base_price(engine, MANAGER, "video", value)


@pytest.mark.parametrize("day", [float("inf"), True, "Mon\x00", [1]])
def test_a_day_that_is_not_a_day_gets_its_own_message(engine, mechanic, day):
    with pytest.raises(ValidationError) as info:
        save_weekly_slots(engine, MANAGER, mechanic, [weekly_slot(day, "09:00", "12:00")])
    assert "is not a day of the week" in " ".join(info.value.row_errors[0])


@pytest.mark.parametrize(
    "reason, message", [("holiday\x00", "contains a NUL character"), (42, "must be text, not int")]
)
def test_an_override_reason_that_is_not_text_gets_its_own_message(engine, mechanic, reason, message):
    with pytest.raises(ValidationError, match=message):
        set_override(engine, MANAGER, mechanic, "2099-01-01", is_available=False, reason=reason)


def test_overrides_and_timezone_changed_meanwhile_are_not_overwritten(engine, mechanic):
    day = "2099-01-01"
    set_override(engine, OTHER_MANAGER, mechanic, day, is_available=False, reason="training")
    with pytest.raises(ChangedMeanwhile, match="Mia's calendar was changed by mo@example.com"):
        set_override(engine, MANAGER, mechanic, day, is_available=False, reason="holiday", seen=None)
    with pytest.raises(ChangedMeanwhile):  # removing what the view showed, but it was replaced since
        delete_override(engine, MANAGER, mechanic, day, seen=Override(dt.date(2099, 1, 1), reason="dentist"))
    with pytest.raises(ChangedMeanwhile):
        set_mechanic_timezone(engine, MANAGER, mechanic, "Europe/Paris", seen="Europe/Lisbon")
    with engine.connect() as conn:
        assert conn.execute(sa.select(s.mechanic_availability_overrides.c.reason)).scalars().all() == ["training"]
        assert conn.execute(sa.select(s.mechanics.c.timezone)).scalar_one() == "Europe/Berlin"
    delete_override(engine, MANAGER, mechanic, day, seen=Override(dt.date(2099, 1, 1), reason="training"))
    assert set_mechanic_timezone(engine, MANAGER, mechanic, "Europe/Paris", seen="Europe/Berlin") == "Europe/Paris"
