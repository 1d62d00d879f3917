"""The calendar's week grid in money and the manager's home figures (utilisation this week,
unfilled peak hours), with hand-computed answers, on both databases.

Flo works in Berlin (UTC+1 in March 2026): Mondays 09:00-11:00 at 1.00x and 11:00-12:00 at
1.25x, Tuesdays 09:00-09:30 at 1.00x and 09:30-10:00 at 2.00x. Video costs $49.99, chat has no
base price. Sessions last 30 minutes, a start every 30 minutes. The week is Monday 9 March 2026,
shown in UTC.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest

from dashboard.domain.calendars.edits import save_weekly_slots, set_base_price
from queries import calendars as q
from tests.factories import add_mechanic, add_session, weekly_slot
from tests.test_calendars_queries import MANAGER, UTC, WEEK, staff, z

__all__ = ["staff"]  # the staff fixture the edits need
WEDNESDAY = dt.date(2026, 3, 11)


@pytest.fixture
def flo(engine):
    with engine.begin() as conn:
        flo = add_mechanic(conn, "Flo", timezone="Europe/Berlin")
        retired = add_mechanic(conn, "Gus", timezone="UTC", is_active=False)
        add_session(conn, flo, flo, "scheduled", scheduled_at=z("2026-03-09T09:00"), price_cents=4999)
        add_session(conn, flo, flo, "cancelled", scheduled_at=z("2026-03-09T10:00"), price_cents=6249)
        add_session(conn, flo, flo, "completed", scheduled_at=z("2026-03-10T08:00"), price_cents=4999)
        add_session(conn, flo, retired, "completed", scheduled_at=z("2026-03-10T08:00"), price_cents=4999)
    save_weekly_slots(
        engine,
        MANAGER,
        flo,
        [
            weekly_slot(1, "09:00", "11:00", "1.00"),
            weekly_slot(1, "11:00", "12:00", "1.25"),
            weekly_slot(2, "09:00", "09:30", "1.00"),
            weekly_slot(2, "09:30", "10:00", "2.00"),
        ],
    )
    save_weekly_slots(engine, MANAGER, retired, [weekly_slot(1, "09:00", "17:00")])
    set_base_price(engine, MANAGER, "video", "49.99")
    return str(flo), str(retired)


def test_week_prices_show_each_open_hour_at_the_price_customers_are_quoted(engine, flo):
    with engine.connect() as conn:
        grid = q.week_prices(conn, mechanic_id=flo[0], week_start=WEEK, tz="UTC", session_type="video")
        chat = q.week_prices(conn, mechanic_id=flo[0], week_start=WEEK, tz="UTC", session_type="chat")
    assert len(grid) == 7 * 24
    shown = grid[(grid.open_starts > 0) | (grid.sessions > 0)]
    monday, tuesday = dt.date(2026, 3, 9), dt.date(2026, 3, 10)
    # Berlin 09:00 is 08:00Z; 11:00-12:00 Berlin (1.25x) is 10:00-11:00Z: 49.99 x 1.25 = 62.4875 -> $62.49.
    # Tuesday 08:00Z is at 1.00x, 08:30Z at 2.00x: one hour, two prices. Sessions: the scheduled one at
    # Monday 09:00Z and the completed one at Tuesday 08:00Z (the cancelled one does not count).
    assert shown.values.tolist() == [
        [monday, 8, 2, 4999.0, 4999.0, 0],
        [monday, 9, 2, 4999.0, 4999.0, 1],
        [monday, 10, 2, 6249.0, 6249.0, 0],
        [tuesday, 8, 2, 4999.0, 9998.0, 1],
    ]
    assert chat.open_starts.sum() == 8 and chat.price_low_cents.isna().all()


def test_week_prices_in_the_mechanics_own_zone_and_an_empty_week(engine, flo):
    with engine.connect() as conn:
        berlin = q.week_prices(conn, mechanic_id=flo[0], week_start=WEEK, tz="Europe/Berlin", session_type="video")
        idle = q.week_prices(conn, mechanic_id=flo[1], week_start=WEEK, tz="UTC", session_type="video")
    assert berlin[berlin.open_starts > 0][["hour", "price_low_cents"]].values.tolist() == [
        [9, 4999.0],
        [10, 4999.0],
        [11, 6249.0],
        [9, 4999.0],
    ]
    assert idle.open_starts.sum() == 0  # an inactive mechanic offers nothing


def test_utilisation_this_week_counts_every_active_mechanics_hours(engine, flo):
    with engine.connect() as conn:
        week = q.utilisation_this_week(conn, tz="UTC", today=WEDNESDAY)
        earlier = q.utilisation_this_week(conn, tz="UTC", today=dt.date(2026, 3, 1))
    # Flo: Monday 3 h + Tuesday 1 h; Gus is retired. Booked: 2 sessions x 30 minutes.
    assert week.to_dict("records") == [
        {
            "week_start": WEEK,
            "week_end": dt.date(2026, 3, 15),
            "available_hours": 4.0,
            "booked_hours": 1.0,
            "utilisation": 0.25,
        }
    ]
    assert earlier.week_start[0] == dt.date(2026, 2, 23) and earlier.available_hours[0] == 4.0
    assert earlier.booked_hours[0] == 0.0 and earlier.utilisation[0] == 0.0


def test_unfilled_peak_hours_are_the_most_wanted_hours_without_room(engine, flo):
    mechanic = flo[0]
    with engine.begin() as conn:
        for week in range(4):  # the four weeks before 9 March
            monday = dt.datetime(2026, 2, 9, tzinfo=UTC) + dt.timedelta(weeks=week)
            add_session(conn, mechanic, mechanic, scheduled_at=monday + dt.timedelta(hours=8, minutes=15))
            tuesday = monday + dt.timedelta(days=1, hours=8)
            add_session(conn, mechanic, mechanic, scheduled_at=tuesday)
            add_session(conn, mechanic, mechanic, scheduled_at=tuesday + dt.timedelta(minutes=20))
            add_session(conn, mechanic, mechanic, "cancelled", scheduled_at=monday + dt.timedelta(days=2, hours=14))
        for day in (13, 20):
            add_session(conn, mechanic, mechanic, scheduled_at=dt.datetime(2026, 2, day, 15, tzinfo=UTC))
        add_session(conn, mechanic, mechanic, scheduled_at=z("2026-03-13T15:00"))  # this week: not history
    with engine.connect() as conn:
        peaks = q.unfilled_peak_hours(conn, tz="UTC", today=WEDNESDAY)
        one = q.unfilled_peak_hours(conn, tz="UTC", today=WEDNESDAY, limit=1)
    # Monday 08:00: 1 a week, room for 2 (60 minutes / 30): 50% full, not unfilled.
    # Tuesday 08:00: 2 a week, room for 2: unfilled. Friday 15:00: 2 in 4 weeks, no room at all.
    assert peaks.values.tolist() == [
        [2, dt.date(2026, 3, 10), 8, 2.0, 2.0, 1.0],
        [5, dt.date(2026, 3, 13), 15, 0.5, 0.0, 0.0],
    ]
    assert len(one) == 1 and one.hour[0] == 8


def test_no_demand_means_no_unfilled_hours(engine, flo):
    with engine.connect() as conn:
        peaks = q.unfilled_peak_hours(conn, tz="UTC", today=dt.date(2026, 1, 7))
        week = q.utilisation_this_week(conn, tz="Pacific/Kiritimati", today=dt.date(2026, 1, 7))
    assert peaks.empty and list(peaks.columns) == [
        "day_of_week",
        "day",
        "hour",
        "sessions_per_week",
        "room",
        "available_hours",
    ]
    assert week.available_hours[0] == 4.0 and not math.isnan(week.utilisation[0])
