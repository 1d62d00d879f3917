"""The calendar page's queries, with hand-computed answers, on both databases.

Week of Monday 9 March 2026. Asha (Asia/Kolkata, +5:30) works Mondays 02:00-06:00 at 1.50x,
which is Sunday 20:30Z to Monday 00:30Z. Ben (UTC) works Mondays 09:00-12:00 at 1.00x.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import pandas as pd
import pytest

from dashboard.core.auth import Actor
from dashboard.domain.calendars.edits import save_weekly_slots, set_base_price, set_override
from dashboard.domain.calendars.slots import Override, WeeklySlot
from dashboard.tools.bench.cases import CASES, BenchContext
from queries import calendars as q
from tests.factories import add_mechanic, add_session, staff_fixture, weekly_slot

UTC = dt.UTC
MANAGER = Actor("manager@example.com", "manager")
staff = staff_fixture(MANAGER)
WEEK = dt.date(2026, 3, 9)


def z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def people(engine):
    with engine.begin() as conn:
        asha = add_mechanic(conn, "Asha", timezone="Asia/Kolkata")
        ben = add_mechanic(conn, "Ben", timezone="UTC")
        retired = add_mechanic(conn, "Cy", timezone="UTC", is_active=False)
        lost = add_mechanic(conn, "Dee", timezone="Mars/Olympus_Mons")  # not an IANA name: offers nothing
        add_session(conn, asha, asha, "scheduled", scheduled_at=z("2026-03-15T21:00"), price_cents=4999)
        add_session(conn, ben, ben, "scheduled", scheduled_at=z("2026-03-09T09:00"), price_cents=4999)
        add_session(conn, ben, ben, "completed", scheduled_at=z("2026-03-09T09:40"), price_cents=4999)
        add_session(conn, ben, ben, "cancelled", scheduled_at=z("2026-03-09T10:00"), price_cents=4999)
    save_weekly_slots(engine, MANAGER, asha, [weekly_slot(1, "02:00", "06:00", "1.50")])
    save_weekly_slots(engine, MANAGER, ben, [weekly_slot(1, "09:00", "12:00")])
    save_weekly_slots(engine, MANAGER, retired, [weekly_slot(1, "09:00", "12:00")])
    save_weekly_slots(engine, MANAGER, lost, [weekly_slot(1, "09:00", "12:00")])
    set_base_price(engine, MANAGER, "video", "49.99")
    return {"asha": str(asha), "ben": str(ben), "cy": str(retired), "dee": str(lost)}


def test_mechanics_and_their_slots(engine, people):
    with engine.connect() as conn:
        assert list(q.mechanics(conn)["display_name"]) == ["Asha", "Ben", "Dee"]
        assert list(q.mechanics(conn, active_only=False)["display_name"]) == ["Asha", "Ben", "Cy", "Dee"]
        slots = q.weekly_slots(conn, mechanic_id=people["asha"])
    assert slots[["day_of_week", "start_time", "end_time", "is_available", "price_multiplier"]].values.tolist() == [
        [1, dt.time(2), dt.time(6), True, 1.5]
    ]


def test_hour_grid_in_utc_for_everyone(engine, people):
    with engine.connect() as conn:
        grid = q.hour_grid(conn, mechanic_ids=None, week_start=WEEK, tz="UTC", session_minutes=30)
    assert len(grid) == 7 * 24
    cells = grid.set_index(["local_date", "hour"])
    open_cells = cells[cells.available_minutes > 0]
    mar = lambda d: dt.date(2026, 3, d)  # noqa: E731
    assert open_cells["available_minutes"].to_dict() == {
        (mar(9), 0): 30.0,
        (mar(9), 9): 60.0,
        (mar(9), 10): 60.0,
        (mar(9), 11): 60.0,  # Asha's tail, Ben
        (mar(15), 20): 30.0,
        (mar(15), 21): 60.0,
        (mar(15), 22): 60.0,
        (mar(15), 23): 60.0,
    }  # Asha's next Monday
    assert cells.loc[(mar(9), 0), "multiplier"] == 1.5 and cells.loc[(mar(9), 9), "multiplier"] == 1.0
    assert math.isnan(cells.loc[(mar(9), 1), "multiplier"])
    # Ben: two sessions start at 09:xx (the cancelled one does not count); Asha one at Sunday 21:00
    assert cells.loc[(mar(9), 9), ["sessions", "booked_minutes", "utilisation"]].tolist() == [2, 60, 1.0]
    assert cells.loc[(mar(9), 10), "utilisation"] == 0.0
    assert cells.loc[(mar(15), 21), "utilisation"] == 0.5
    assert math.isnan(cells.loc[(mar(10), 9), "utilisation"])


def test_hour_grid_in_the_mechanics_own_zone(engine, people):
    with engine.connect() as conn:
        grid = q.hour_grid(conn, mechanic_ids=(people["asha"],), week_start=WEEK, tz="Asia/Kolkata", session_minutes=30)
    open_cells = grid[grid.available_minutes > 0]
    assert open_cells[["local_date", "hour", "available_minutes"]].values.tolist() == [
        [dt.date(2026, 3, 9), h, 60.0] for h in (2, 3, 4, 5)
    ]


def test_booked_by_hour_groups_in_the_viewers_zone(engine, people):
    start, end = q.week_bounds(WEEK, "Asia/Kolkata")
    with engine.connect() as conn:
        frame = q.booked_by_hour(conn, mechanic_ids=(people["ben"],), start=start, end=end, tz="Asia/Kolkata")
    # 09:00Z = 14:30 IST, 09:40Z = 15:10 IST
    assert frame.values.tolist() == [[dt.date(2026, 3, 9), 14, 1], [dt.date(2026, 3, 9), 15, 1]]


def test_bookable_and_preview(engine, people):
    now = z("2026-03-09T06:00")
    with engine.connect() as conn:
        frame = q.bookable(conn, mechanic_ids=(people["ben"],), days=1, session_type="video", now=now)
        # 09:00 and 09:30 clash with the 09:00 session, 10:00 with the 09:40 one (10-minute buffer)
        assert [f"{t:%H:%M}" for t in frame.start_utc] == ["10:30", "11:00", "11:30"]
        assert set(frame.price_cents) == {4999}
        preview = q.preview(
            conn,
            mechanic_id=people["ben"],
            days=1,
            session_type="video",
            now=now,
            slots=(WeeklySlot(1, dt.time(11), dt.time(12), 2),),
        )
        assert preview[["multiplier", "price_cents"]].values.tolist() == [[2.0, 9998], [2.0, 9998]]
        day_off = q.preview(
            conn,
            mechanic_id=people["ben"],
            days=1,
            session_type="video",
            now=now,
            override=Override(WEEK, False, reason="Sick"),
        )
        assert day_off.empty
        peak = q.peak_preview(
            conn,
            mechanic_ids=(people["ben"], people["asha"]),
            days=(1,),
            start=dt.time(11),
            end=dt.time(14),
            multiplier=Decimal("1.50"),
        )
        assert peak[["display_name", "slots_repriced", "hours_repriced", "slots_split_off"]].values.tolist() == [
            ["Ben", 1, 1.0, 1],
            ["Asha", 0, 0.0, 0],
        ]
        unpriced = q.bookable(conn, mechanic_ids=(people["ben"],), days=1, session_type="chat", now=now)
        assert unpriced.price_cents.isna().all() and len(unpriced) == 3
        everyone = q.bookable(conn, mechanic_ids=None, days=8, session_type="video", now=now)
    # Eight local days from each one's today (Monday 9 March) reach the next Monday. Asha: her 9 March
    # is over (it is 11:30 in Kolkata); on 16 March the 21:00Z session (02:30 IST) takes 3 of 8 starts.
    # Ben: 3 on 9 March, 6 on 16 March. Cy is retired, Dee's timezone is unknown.
    by_mechanic = everyone.groupby("mechanic_id").size().to_dict()
    assert by_mechanic == {people["ben"]: 3 + 6, people["asha"]: 8 - 3}
    asha = everyone[everyone.mechanic_id == people["asha"]]
    assert f"{asha.start_local.iloc[0]:%a %H:%M}" == "Mon 03:30" and set(asha.price_cents) == {7499}


def test_availability_and_sessions_of_the_week(engine, people):
    start, end = q.week_bounds(WEEK, "UTC")
    with engine.connect() as conn:
        windows = q.availability(conn, mechanic_ids=None, start=start, end=end)
        sessions = q.booked_sessions(conn, mechanic_ids=None, start=start, end=end)
        busiest = q.busiest_mechanics(conn, start=start, end=end, limit=2)
    assert sorted((w.mechanic_id, w.start_utc, w.end_utc) for w in windows.itertuples()) == sorted(
        [
            (people["asha"], z("2026-03-09T00:00"), z("2026-03-09T00:30")),
            (people["asha"], z("2026-03-15T20:30"), z("2026-03-16T00:00")),
            (people["ben"], z("2026-03-09T09:00"), z("2026-03-09T12:00")),
        ]
    )
    assert list(sessions.status) == ["scheduled", "completed", "scheduled"]
    assert list(busiest.display_name) == ["Ben", "Asha"] and list(busiest.sessions) == [2, 1]


def test_overrides_prices_and_audit_trail(engine, people):
    set_override(
        engine,
        MANAGER,
        people["asha"],
        "2026-03-16",
        is_available=True,
        start="03:00",
        end="04:00",
        multiplier="2.50",
        reason="Festival",
        now=z("2026-03-09T00:00"),
    )
    with engine.connect() as conn:
        overrides = q.overrides(conn, mechanic_id=people["asha"], first_day=WEEK)
        prices = q.base_prices(conn)
        trail = q.pricing_audit(conn)
        mine = q.pricing_audit(conn, mechanic_id=people["asha"])
    assert overrides.values.tolist() == [[dt.date(2026, 3, 16), True, dt.time(3), dt.time(4), 2.5, "Festival"]]
    assert prices.session_type.tolist() == ["chat", "video"]
    assert pd.isna(prices.price_cents[0]) and prices.price_cents[1] == 4999
    assert trail.action.tolist()[0] == "override.set" and len(trail) == 4 + 1 + 1
    assert set(trail.subject) == {"Asha", "Ben", "Cy", "Dee", "video"}
    assert mine.action.tolist() == ["override.set", "slot.create"]
    assert mine.after[0]["price_multiplier"] == "2.50" and mine.before[0] is None
    assert mine.change.tolist() == ["2026-03-16 03:00-04:00 x2.50: Festival", "Monday 02:00-06:00 x1.50"]
    assert trail.change[trail.subject == "video"].tolist() == ["$49.99"]


def test_benchmark_cases_run(engine, people):
    ctx = BenchContext(
        start=z("2026-03-01T00:00"),
        end=z("2026-03-09T06:00"),
        sample={"mechanic_id": people["ben"], "customer_id": None},
    )
    cases = [case for case in CASES if case.name.startswith("calendars.")]
    assert "calendars.bookable_200x14" in {case.name for case in cases}
    with engine.connect() as conn:
        for case in cases:
            assert isinstance(case.query(conn, **case.arguments(conn, ctx)), pd.DataFrame), case.name
