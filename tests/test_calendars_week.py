"""The calendar's week grid in money and the manager's home figures (utilisation this week,
unfilled peak hours), with hand-computed answers, on both databases.

Flo works in Berlin (UTC+1 in March 2026): Mondays 09:00-11:00 at 1.00x and 11:00-12:00 at
1.25x, Tuesdays 09:00-09:30 at 1.00x and 09:30-10:00 at 2.00x. Video costs $49.99, chat has no
base price. Sessions last 30 minutes, a start every 30 minutes. The week is Monday 9 March 2026,
shown in UTC.
"""

from __future__ import annotations

import datetime as dt

import pytest

from dashboard.domain.calendars.edits import save_weekly_slots, set_base_price
from queries import calendars as q
from tests.factories import add_mechanic, add_session, weekly_slot
from tests.test_calendars_queries import MANAGER, WEEK, staff, z

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
