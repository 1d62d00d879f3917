"""Bookable slots by day for customers (``dashboard.domain.calendars.slots.slots_by_day``), on both backends.

Mia in Berlin (CET, +1 until 29 March 2026) works Mondays 09:00-11:00 at 1.00x and
11:00-12:00 at 1.25x, i.e. 08:00-11:00Z; a video session costs $49.99, so 1.25x is
6,248.75 -> 6,249 cents. Starts every 30 minutes, 30 minutes long, 10 minutes' buffer,
120 minutes' notice. New York is on EDT (-4) from 8 March, Kiritimati is +14.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from dashboard.core import schema as s
from dashboard.core.auth import Actor
from dashboard.core.errors import NotFound
from dashboard.domain.calendars.edits import save_weekly_slots, set_base_price
from dashboard.domain.calendars.slots import ValidationError, check_booking, slots_by_day
from tests.factories import add_mechanic, staff_fixture

UTC = dt.UTC
MANAGER = Actor("manager@example.com", "manager")
staff = staff_fixture(MANAGER)
NOW = dt.datetime(2026, 3, 9, 6, 0, tzinfo=UTC)
MONDAY, NEXT_MONDAY = dt.date(2026, 3, 9), dt.date(2026, 3, 16)


@pytest.fixture
def mia(engine):
    with engine.begin() as conn:
        mechanic = add_mechanic(conn, "Mia", timezone="Europe/Berlin")
        # booked at 09:30Z: 09:00, 09:30 and 10:00Z are within 40 minutes (length + buffer)
        conn.execute(
            s.sessions.insert().values(
                customer_id=mechanic,
                mechanic_id=mechanic,
                status="scheduled",
                scheduled_at=dt.datetime(2026, 3, 9, 9, 30, tzinfo=UTC),
            )
        )
    rows = [
        {"day_of_week": 1, "start_time": "09:00", "end_time": "11:00", "price_multiplier": "1.00"},
        {"day_of_week": 1, "start_time": "11:00", "end_time": "12:00", "price_multiplier": "1.25"},
    ]
    save_weekly_slots(engine, MANAGER, mechanic, rows)
    set_base_price(engine, MANAGER, "video", "49.99")
    return mechanic


def _clock(day: list[dict]) -> list[tuple[str, str, int, str]]:
    return [(f"{x['start']:%H:%M %Z}", f"{x['end']:%H:%M}", x["price_cents"], x["multiplier"]) for x in day]


def test_slots_are_listed_per_day_of_the_customers_zone(engine, mia):
    days = slots_by_day(
        engine, mia, start=MONDAY, end=NEXT_MONDAY, zone="America/New_York", session_type="video", now=NOW
    )
    assert list(days) == [f"2026-03-{d:02d}" for d in range(9, 17)]
    assert _clock(days["2026-03-09"]) == [
        ("04:00 EDT", "04:30", 4999, "1.00"),
        ("04:30 EDT", "05:00", 4999, "1.00"),
        ("06:30 EDT", "07:00", 6249, "1.25"),
    ]
    assert _clock(days["2026-03-16"]) == [
        ("04:00 EDT", "04:30", 4999, "1.00"),
        ("04:30 EDT", "05:00", 4999, "1.00"),
        ("05:00 EDT", "05:30", 4999, "1.00"),
        ("05:30 EDT", "06:00", 4999, "1.00"),
        ("06:00 EDT", "06:30", 6249, "1.25"),
        ("06:30 EDT", "07:00", 6249, "1.25"),
    ]
    assert all(days[d] == [] for d in days if d not in ("2026-03-09", "2026-03-16"))
    with engine.connect() as conn:  # the booking re-check agrees with every slot offered
        for day in days.values():
            for slot in day:
                assert (
                    check_booking(
                        conn, mia, "video", slot["start"], now=NOW, quoted_price_cents=slot["price_cents"]
                    ).start_utc
                    == slot["start"]
                )


def test_a_mechanics_day_can_fall_on_two_of_the_customers_days(engine, mia):
    tuesday = slots_by_day(
        engine, mia, start="2026-03-10", end="2026-03-10", zone="Pacific/Kiritimati", session_type="video", now=NOW
    )
    assert _clock(tuesday["2026-03-10"]) == [("00:30 +14", "01:00", 6249, "1.25")]  # 10:30Z; 10:00Z is blocked
    monday = slots_by_day(
        engine, mia, start=MONDAY, end=MONDAY, zone="Pacific/Kiritimati", session_type="video", now=NOW
    )
    assert _clock(monday["2026-03-09"]) == [("22:00 +14", "22:30", 4999, "1.00"), ("22:30 +14", "23:00", 4999, "1.00")]


def test_bad_requests_for_slots_are_refused_with_a_reason(engine, mia):
    with engine.begin() as conn:
        retired = add_mechanic(conn, "Mia", timezone="Europe/Berlin", is_active=False)
    stranger = uuid.uuid4()
    good = {"mechanic_id": mia, "start": MONDAY, "end": NEXT_MONDAY, "zone": "UTC", "session_type": "video"}
    for changes, message in [
        ({"end": MONDAY + dt.timedelta(days=31)}, "at most 31 days"),
        ({"end": MONDAY - dt.timedelta(days=1)}, "before the start date"),
        ({"start": "2026-13-01"}, "not a date"),
        ({"start": dt.datetime(2026, 3, 9, tzinfo=UTC)}, "must be a date"),
        ({"zone": "Mars/Olympus"}, "IANA timezone"),
        ({"zone": "<b>UTC</b>"}, "IANA timezone"),
        ({"session_type": "phone"}, "Unknown session type"),
        ({"session_type": "chat"}, "No base price"),
        ({"mechanic_id": "garbage"}, "not a valid id"),
        ({"mechanic_id": stranger}, f"No mechanic with id {stranger}"),
        ({"mechanic_id": retired}, "not taking bookings"),
    ]:
        call = {**good, **changes}
        with pytest.raises(NotFound if message.startswith("No mechanic") else ValidationError, match=message):
            slots_by_day(engine, call.pop("mechanic_id"), now=NOW, **call)
    assert len(slots_by_day(engine, now=NOW, **{**good, "end": MONDAY + dt.timedelta(days=30)})) == 31
