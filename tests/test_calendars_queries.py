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

from dashboard.core import schema as s
from dashboard.core.auth import Actor
from dashboard.domain.calendars.edits import save_weekly_slots, set_base_price, set_override
from dashboard.domain.calendars.slots import Override, WeeklySlot
from dashboard.tools.bench.cases import CASES, BenchContext
from queries import calendars as q
from tests.factories import add_mechanic, add_session, add_user, staff_fixture, weekly_slot

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


def test_hour_grid_counts_a_chosen_inactive_mechanic_and_no_unknown_timezone(engine, people):
    with engine.connect() as conn:
        grid = q.hour_grid(
            conn, mechanic_ids=(people["cy"], people["dee"]), week_start=WEEK, tz="UTC", session_minutes=30
        )
    open_cells = grid[grid.available_minutes > 0]
    assert open_cells[["local_date", "hour", "available_minutes"]].values.tolist() == [
        [dt.date(2026, 3, 9), h, 60.0] for h in (9, 10, 11)
    ]  # Cy, retired but chosen; Dee's zone is not an IANA name


AUTUMN = dt.date(2026, 10, 26)  # a Monday; New York falls back on Sunday 1 November (02:00 EDT -> 01:00 EST)


def slot_rows(*rows) -> list[dict]:
    return [
        {"mechanic_id": who, "day_of_week": day, "start_time": start, "end_time": end, "price_multiplier": Decimal(x)}
        for who, day, start, end, x in rows
    ]


@pytest.fixture
def autumn(engine):
    """Nia (New York): Sundays 00:00-04:00 at x2.00, Thursdays 09:00-10:00 (off on 29 October),
    Fridays 09:00-17:00 (on 30 October only 10:00-11:30, at x1.50). Omar (London, on GMT since
    25 October): Mondays 09:00-10:00, and 14:00-15:00 on Tuesday 27 October, a day he has no hours.
    Nia's sessions: 1 November 01:30 EDT (05:30Z) and 01:30 EST (06:30Z); one at 02:10 EST cancelled."""
    with engine.begin() as conn:
        nia = add_mechanic(conn, "Nia", timezone="America/New_York")
        omar = add_mechanic(conn, "Omar", timezone="Europe/London")
        conn.execute(
            s.mechanic_availability_slots.insert(),
            slot_rows(
                (nia, 0, dt.time(0), dt.time(4), "2.00"),
                (nia, 4, dt.time(9), dt.time(10), "1.00"),
                (nia, 5, dt.time(9), dt.time(17), "1.00"),
                (omar, 1, dt.time(9), dt.time(10), "1.00"),
            ),
        )
        conn.execute(
            s.mechanic_availability_overrides.insert(),
            [
                {
                    "mechanic_id": who,
                    "date": day,
                    "is_available": start is not None,
                    "start_time": start,
                    "end_time": end,
                    "price_multiplier": Decimal(x),
                    "reason": reason,
                }
                for who, day, start, end, x, reason in (
                    (nia, dt.date(2026, 10, 29), None, None, "1.00", "Dentist"),
                    (nia, dt.date(2026, 10, 30), dt.time(10), dt.time(11, 30), "1.50", "Half day"),
                    (omar, dt.date(2026, 10, 27), dt.time(14), dt.time(15), "1.00", "Cover"),
                )
            ],
        )
        customer = add_user(conn)
        for at, status in (("05:30", "scheduled"), ("06:30", "accepted"), ("07:10", "cancelled")):
            add_session(conn, customer, nia, status, scheduled_at=z(f"2026-11-01T{at}"))
    return engine


def open_hours(grid: pd.DataFrame) -> dict:
    cells = grid[grid.available_minutes > 0]
    return {
        (d.day, h): (m, x)
        for d, h, m, x in zip(cells.local_date, cells.hour, cells.available_minutes, cells.multiplier)
    }


def test_hour_grid_over_a_clock_change_with_overrides(autumn):
    with autumn.connect() as conn:
        grid = q.hour_grid(conn, mechanic_ids=None, week_start=AUTUMN, tz="America/New_York", session_minutes=30)
        in_utc = q.hour_grid(conn, mechanic_ids=None, week_start=AUTUMN, tz="UTC", session_minutes=30)
    assert open_hours(grid) == {
        (26, 5): (60.0, 1.0),  # Omar's Monday 09:00 GMT
        (27, 10): (60.0, 1.0),  # Omar's extra Tuesday 14:00 GMT
        (30, 10): (60.0, 1.5),  # Nia's half day replaces her Friday; Thursday 29 is off
        (30, 11): (30.0, 1.5),
        (1, 0): (60.0, 2.0),  # Nia's Sunday 00:00 EDT - 04:00 EST is five hours
        (1, 1): (120.0, 2.0),  # 01:00 happens twice
        (1, 2): (60.0, 2.0),
        (1, 3): (60.0, 2.0),
    }
    cells = grid.set_index(["local_date", "hour"])
    assert cells.loc[(dt.date(2026, 11, 1), 1), ["sessions", "booked_minutes", "utilisation"]].tolist() == [2, 60, 0.5]
    assert grid.sessions.sum() == 2 and grid.available_minutes.sum() == 510.0
    assert open_hours(in_utc) == {
        (26, 9): (60.0, 1.0),
        (27, 14): (60.0, 1.0),
        (30, 14): (60.0, 1.5),
        (30, 15): (30.0, 1.5),
        **{(1, h): (60.0, 2.0) for h in (4, 5, 6, 7, 8)},
    }


def test_bookable_over_the_clock_change_with_overrides_matches_the_preview(autumn):
    """From Thursday 29 October 12:00Z (notice: 14:00Z), six days of each one's dates. Nia is off
    on the 29th; on the 30th her 10:00-11:30 EDT (14:00Z-15:30Z) at x1.50 gives three starts; on
    Sunday 1 November 00:00 EDT - 04:00 EST (04:00Z-09:00Z) at x2.00, her sessions at 05:30Z and
    06:30Z block every start less than 40 minutes (session and buffer) from them. Omar's Monday
    2 November 09:00 GMT gives two."""
    with autumn.begin() as conn:
        conn.execute(s.session_base_prices.insert().values(session_type="video", price_cents=4000))
    now = z("2026-10-29T12:00")
    with autumn.connect() as conn:
        frame = q.bookable(conn, mechanic_ids=None, days=6, session_type="video", now=now)
        previews = [
            q.preview(conn, mechanic_id=mechanic, days=6, session_type="video", now=now)
            for mechanic in frame.mechanic_id.unique()
        ]
    starts = zip(frame.timezone, frame.start_utc, frame.start_local, frame.multiplier, frame.price_cents)
    assert sorted((zone, f"{at:%d %H:%M}", f"{local:%H:%M}", x, price) for zone, at, local, x, price in starts) == [
        ("America/New_York", "01 04:00", "00:00", 2.0, 8000),  # EDT
        ("America/New_York", "01 04:30", "00:30", 2.0, 8000),
        ("America/New_York", "01 07:30", "02:30", 2.0, 8000),  # EST
        ("America/New_York", "01 08:00", "03:00", 2.0, 8000),
        ("America/New_York", "01 08:30", "03:30", 2.0, 8000),
        ("America/New_York", "30 14:00", "10:00", 1.5, 6000),
        ("America/New_York", "30 14:30", "10:30", 1.5, 6000),
        ("America/New_York", "30 15:00", "11:00", 1.5, 6000),
        ("Europe/London", "02 09:00", "09:00", 1.0, 4000),
        ("Europe/London", "02 09:30", "09:30", 1.0, 4000),
    ]
    # the SQL windows of every mechanic at once are the slot rules' own, as the editor's preview reads them
    assert pd.concat(previews, ignore_index=True).equals(frame)


def test_hour_grid_skips_the_hour_the_clock_skips(engine):
    """Pat (New York) works Sundays 01:00-02:30 and 02:30-03:15 at x2.00. On 8 March 2026 the clock
    jumps from 02:00 to 03:00: 02:30 is read as 02:30 EST (07:30Z, as the slot rules read it) and
    03:15 EDT is 07:15Z, so the second slot holds nothing."""
    with engine.begin() as conn:
        pat = add_mechanic(conn, "Pat", timezone="America/New_York")
        conn.execute(
            s.mechanic_availability_slots.insert(),
            slot_rows((pat, 0, dt.time(1), dt.time(2, 30), "1.00"), (pat, 0, dt.time(2, 30), dt.time(3, 15), "2.00")),
        )
    spring = dt.date(2026, 3, 2)
    with engine.connect() as conn:
        grid = q.hour_grid(conn, mechanic_ids=None, week_start=spring, tz="America/New_York", session_minutes=30)
        in_utc = q.hour_grid(conn, mechanic_ids=None, week_start=spring, tz="UTC", session_minutes=30)
    assert open_hours(grid) == {(8, 1): (60.0, 1.0), (8, 3): (30.0, 1.0)}  # 01:00 EST; 03:00-03:30 EDT
    assert math.isnan(grid.set_index(["local_date", "hour"]).loc[(dt.date(2026, 3, 8), 2), "multiplier"])
    assert open_hours(in_utc) == {(8, 6): (60.0, 1.0), (8, 7): (30.0, 1.0)}


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


def test_bookable_keeps_clear_of_sessions_outside_the_window(engine):
    """Eve (UTC) works Mondays 09:00-12:00; at 07:20Z the earliest start is 09:20 (two hours'
    notice). Her sessions at 08:55 (before the window and the notice) and 12:05 (after the window)
    block the starts less than 40 minutes (session and buffer) from them: 09:30 and 11:30."""
    with engine.begin() as conn:
        eve = add_mechanic(conn, "Eve", timezone="UTC")
        add_session(conn, eve, eve, "scheduled", scheduled_at=z("2026-03-09T08:55"), price_cents=4999)
        add_session(conn, eve, eve, "scheduled", scheduled_at=z("2026-03-09T12:05"), price_cents=4999)
    save_weekly_slots(engine, MANAGER, eve, [weekly_slot(1, "09:00", "12:00")])
    now = z("2026-03-09T07:20")
    with engine.connect() as conn:
        frame = q.bookable(conn, mechanic_ids=(str(eve),), days=1, session_type="video", now=now)
        preview = q.preview(conn, mechanic_id=str(eve), days=1, session_type="video", now=now)
    assert [f"{t:%H:%M}" for t in frame.start_utc] == ["10:00", "10:30", "11:00"]
    assert preview.equals(frame)


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
