"""Slot rules without a database: parsing, overlaps, DST-correct expansion, prices.

Every expected instant below was worked out by hand from the zone's offsets:
New York EST -5 / EDT -4 (2026: spring forward 8 March 02:00, fall back 1 November 02:00),
Berlin CET +1 / CEST +2 (29 March 02:00 -> 03:00, 25 October 03:00 -> 02:00), Kolkata +5:30.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from dashboard.core.settings import ConfigError, load_settings
from dashboard.domain.calendars.edits import apply_peak, parse_override
from dashboard.domain.calendars.slots import (
    Calendar,
    Override,
    SlotRules,
    ValidationError,
    WeeklySlot,
    availability_windows,
    bookable_slots,
    bookable_starts,
    day_of_week,
    overlaps,
    parse_base_price,
    parse_day,
    parse_multiplier,
    parse_time,
    parse_timezone,
    price_cents,
    validate_weekly_rows,
    wall_clock,
    wall_seconds,
)

UTC = dt.UTC
T = dt.time
FAR_PAST = dt.datetime(2020, 1, 1, tzinfo=UTC)
SUN, MON, SAT = 0, 1, 6


def z(day: str, hhmm: str) -> dt.datetime:
    """A UTC instant from '2026-03-08' and '13:00'."""
    return dt.datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=UTC)


def starts(calendar: Calendar, day: dt.date, days: int = 1, **kw) -> list[dt.datetime]:
    kw.setdefault("now", FAR_PAST)
    return [slot.start_utc for slot in bookable_slots(calendar, day, days, **kw)]


def local_clock(calendar: Calendar, day: dt.date) -> list[str]:
    return [f"{slot.start_local:%H:%M %Z}" for slot in bookable_slots(calendar, day, 1, now=FAR_PAST)]


def cal(tz: str, *slots: WeeklySlot, overrides=(), booked=()) -> Calendar:
    return Calendar(None, tz, tuple(slots), tuple(overrides), tuple(booked))


# --- parsing and validation ---------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, "0", "3.01", 3.01, "abc", "-1", -0.5, "0.49", "1.234", None, "", "NaN", "inf"])
def test_multiplier_out_of_range_or_not_a_number_is_rejected(bad):
    with pytest.raises(ValidationError):
        parse_multiplier(bad)


@pytest.mark.parametrize(
    "good,expected", [("0.50", "0.50"), (1, "1.00"), (1.1, "1.10"), ("3.00", "3.00"), (" 1.25 ", "1.25")]
)
def test_multiplier_accepts_two_decimals_in_range(good, expected):
    assert parse_multiplier(good) == Decimal(expected)


@pytest.mark.parametrize("value,expected", [(0, SUN), ("6", SAT), ("Sunday", SUN), ("mon", MON), (1.0, MON)])
def test_day_accepts_numbers_and_names(value, expected):
    assert parse_day(value) == expected


@pytest.mark.parametrize("bad", [7, -1, "Funday", 1.5, None, "abc"])
def test_day_rejects_anything_else(bad):
    with pytest.raises(ValidationError):
        parse_day(bad)


@pytest.mark.parametrize("bad", ["25:00", "abc", "", None, "9.30"])
def test_time_rejects_non_times(bad):
    with pytest.raises(ValidationError):
        parse_time(bad)


def test_time_reads_text_and_times():
    assert parse_time("9:05") == T(9, 5)
    assert parse_time(T(17, 30)) == T(17, 30)


@pytest.mark.parametrize("bad", ["Mars/Olympus_Mons", "", None, "../../etc/passwd", "europe/berlin", 5])
def test_unknown_timezone_is_rejected(bad):
    with pytest.raises(ValidationError, match="IANA timezone"):
        parse_timezone(bad)


@pytest.mark.parametrize("bad", ["0", "-5", "abc", "49.999", "1000.01", None])
def test_base_price_rejects_bad_values(bad):
    with pytest.raises(ValidationError):
        parse_base_price(bad)


def test_base_price_is_read_in_dollars():
    assert parse_base_price("49.99") == 4999
    assert parse_base_price(29) == 2900
    assert parse_base_price("1000") == 100_000


def test_overlaps_on_the_same_day_only_touching_is_fine():
    slots = [
        WeeklySlot(MON, T(9), T(12)),
        WeeklySlot(MON, T(12), T(14)),  # touches the first: fine
        WeeklySlot(MON, T(13), T(15)),  # overlaps the second
        WeeklySlot(SUN, T(9), T(12)),  # same hours, other day: fine
        WeeklySlot(MON, T(8), T(18)),  # overlaps 0, 1 and 2
    ]
    assert overlaps(slots) == [(0, 4), (1, 2), (1, 4), (2, 4)]


def test_validate_rows_names_each_offending_row():
    rows = [
        {"day_of_week": "Monday", "start_time": "09:00", "end_time": "12:00", "price_multiplier": "1.00"},
        {"day_of_week": 1, "start_time": "11:00", "end_time": "13:00", "price_multiplier": "1.50"},
        {"day_of_week": 2, "start_time": "17:00", "end_time": "09:00", "price_multiplier": "abc"},
        {"day_of_week": 3, "start_time": "09:00", "end_time": "17:00", "price_multiplier": 0},
        {"day_of_week": 4, "start_time": "09:00", "end_time": "17:00", "price_multiplier": 2},
    ]
    with pytest.raises(ValidationError) as caught:
        validate_weekly_rows(rows)
    errors = caught.value.row_errors
    assert sorted(errors) == [0, 1, 2, 3]
    assert errors[0] == ["Overlaps Monday 11:00-13:00 (row 2)."]
    assert errors[1] == ["Overlaps Monday 09:00-12:00 (row 1)."]
    assert "not a number" in errors[2][0] and "must be before end" in errors[2][0]
    assert "from 0.50 to 3.00" in errors[3][0]
    assert str(caught.value) == "4 rows need fixing."


def test_validate_rows_returns_slots_and_defaults_to_available():
    [slot] = validate_weekly_rows(
        [
            {
                "day_of_week": "Sun",
                "start_time": T(9),
                "end_time": T(17),
                "price_multiplier": 1.5,
                "is_available": None,
                "id": None,
            }
        ]
    )
    assert slot == WeeklySlot(SUN, T(9), T(17), Decimal("1.50"), True, None)


def test_override_rules():
    with pytest.raises(ValidationError, match="whole day"):
        parse_override("2026-05-01", is_available=False, start="10:00", end="12:00", reason="holiday")
    with pytest.raises(ValidationError, match="reason"):
        parse_override("2026-05-01", is_available=False, reason="  ")
    with pytest.raises(ValidationError, match="before end"):
        parse_override("2026-05-01", is_available=True, start="12:00", end="10:00", reason="short day")
    with pytest.raises(ValidationError, match="not a date"):
        parse_override("01/05/2026", is_available=False, reason="holiday")
    assert parse_override(
        dt.date(2026, 5, 1), is_available=True, start="10:00", end="12:00", multiplier="2", reason="event"
    ) == Override(dt.date(2026, 5, 1), True, T(10), T(12), Decimal("2.00"), "event")


def test_slot_rules_from_settings():
    chosen = {"scheduling": {"session_minutes": 45, "buffer_minutes": 0}}
    assert SlotRules.from_settings(load_settings({}, secrets=chosen)) == SlotRules(session_minutes=45, buffer_minutes=0)
    for bad in ({"session_minutes": 0}, {"buffer_minutes": "10"}, {"notice": 5}, {"interval_minutes": True}):
        with pytest.raises(ConfigError, match=rf"^\[scheduling\] {next(iter(bad))} (must be|is not a setting)"):
            load_settings({}, secrets={"scheduling": bad})


# --- prices -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base,multiplier,expected",
    [
        (4999, "1.25", 6249),  # 6,248.75 -> up
        (1999, "1.50", 2999),  # 2,998.5: half goes up
        (2999, "0.50", 1500),  # 1,499.5: half goes up
        (1001, "0.75", 751),  # 750.75
        (1003, "1.10", 1103),  # 1,103.3 -> down
        (1000, "3.00", 3000),
    ],
)
def test_price_is_base_times_multiplier_rounded_half_up(base, multiplier, expected):
    assert price_cents(base, Decimal(multiplier)) == expected


# --- expansion across daylight saving -------------------------------------------------------


def test_new_york_spring_forward_keeps_local_hours():
    nine_to_five = cal("America/New_York", WeeklySlot(SAT, T(9), T(17)), WeeklySlot(SUN, T(9), T(17)))
    saturday = starts(nine_to_five, dt.date(2026, 3, 7))
    sunday = starts(nine_to_five, dt.date(2026, 3, 8))
    assert (saturday[0], saturday[-1], len(saturday)) == (z("2026-03-07", "14:00"), z("2026-03-07", "21:30"), 16)
    assert (sunday[0], sunday[-1], len(sunday)) == (z("2026-03-08", "13:00"), z("2026-03-08", "20:30"), 16)
    assert local_clock(nine_to_five, dt.date(2026, 3, 8))[0] == "09:00 EDT"


def test_new_york_spring_forward_skips_the_missing_hour():
    night = cal("America/New_York", WeeklySlot(SUN, T(1), T(4)))
    # 01:00 EST = 06:00Z to 04:00 EDT = 08:00Z: two real hours
    assert starts(night, dt.date(2026, 3, 8)) == [z("2026-03-08", t) for t in ("06:00", "06:30", "07:00", "07:30")]
    assert local_clock(night, dt.date(2026, 3, 8)) == ["01:00 EST", "01:30 EST", "03:00 EDT", "03:30 EDT"]
    # a start inside the gap is read with the offset before it: 02:30 EST = 07:30Z = 03:30 EDT
    in_gap = cal("America/New_York", WeeklySlot(SUN, T(2, 30), T(4)))
    assert starts(in_gap, dt.date(2026, 3, 8)) == [z("2026-03-08", "07:30")]
    # both ends inside the gap: nothing left
    assert starts(cal("America/New_York", WeeklySlot(SUN, T(2, 30), T(3))), dt.date(2026, 3, 8)) == []


def test_a_slot_the_gap_overlaps_keeps_its_own_multiplier():
    # 01:00-02:30 is 06:00Z-07:30Z (02:30 read as EST), 03:00-04:00 EDT is 07:00Z-08:00Z: they
    # overlap without touching, so each is its own run and 07:00Z is offered once by each
    night = cal("America/New_York", WeeklySlot(SUN, T(1), T(2, 30)), WeeklySlot(SUN, T(3), T(4), Decimal("2.00")))
    found = bookable_slots(night, dt.date(2026, 3, 8), 1, now=FAR_PAST)
    assert [(f"{s.start_utc:%H:%M}", s.multiplier) for s in found] == [
        ("06:00", Decimal("1.00")),
        ("06:30", Decimal("1.00")),
        ("07:00", Decimal("1.00")),
        ("07:00", Decimal("2.00")),
        ("07:30", Decimal("2.00")),
    ]


def test_bookable_starts_of_several_calendars_keep_their_bookings_apart():
    # Ann's 10:00Z session blocks her 09:30, 10:00 and 10:30 (30-minute sessions, 10-minute
    # buffer: 40 minutes either side); Bob, open 10:00-11:00 at x2.00, keeps both his starts.
    monday = dt.date(2026, 3, 9)
    ann = cal("UTC", WeeklySlot(MON, T(9), T(11)), booked=(z("2026-03-09", "10:00"),))
    bob = cal("UTC", WeeklySlot(MON, T(10), T(11), Decimal("2.00")))
    found = bookable_starts([ann, bob], [monday, monday], 1, now=FAR_PAST)
    assert found.calendar.tolist() == [0, 1, 1]
    assert [z("1970-01-01", "00:00") + dt.timedelta(microseconds=at) for at in found.start.tolist()] == [
        z("2026-03-09", "09:00"),
        z("2026-03-09", "10:00"),
        z("2026-03-09", "10:30"),
    ]
    assert [found.multipliers[w] for w in found.window.tolist()] == [
        Decimal("1.00"),
        Decimal("2.00"),
        Decimal("2.00"),
    ]
    assert len(bookable_starts([cal("UTC")], [monday], 1, now=FAR_PAST).start) == 0


def test_new_york_fall_back_offers_the_repeated_hour_twice():
    night = cal("America/New_York", WeeklySlot(SUN, T(0), T(3)))
    # 00:00 EDT = 04:00Z to 03:00 EST = 08:00Z: four real hours
    assert starts(night, dt.date(2026, 11, 1)) == [
        z("2026-11-01", t) for t in ("04:00", "04:30", "05:00", "05:30", "06:00", "06:30", "07:00", "07:30")
    ]
    assert local_clock(night, dt.date(2026, 11, 1)) == [
        "00:00 EDT",
        "00:30 EDT",
        "01:00 EDT",
        "01:30 EDT",
        "01:00 EST",
        "01:30 EST",
        "02:00 EST",
        "02:30 EST",
    ]
    # an end time shown twice is its first occurrence: 01:30 EDT = 05:30Z
    assert starts(cal("America/New_York", WeeklySlot(SUN, T(0), T(1, 30))), dt.date(2026, 11, 1)) == [
        z("2026-11-01", t) for t in ("04:00", "04:30", "05:00")
    ]
    nine_to_five = cal("America/New_York", WeeklySlot(SAT, T(9), T(17)), WeeklySlot(SUN, T(9), T(17)))
    assert starts(nine_to_five, dt.date(2026, 10, 31), 2)[::16] == [z("2026-10-31", "13:00"), z("2026-11-01", "14:00")]


def test_berlin_spring_forward():
    berlin = cal(
        "Europe/Berlin", WeeklySlot(SAT, T(9), T(17)), WeeklySlot(SUN, T(1), T(4)), WeeklySlot(SUN, T(9), T(17))
    )
    found = starts(berlin, dt.date(2026, 3, 28), 2)
    assert found[0] == z("2026-03-28", "08:00")  # 09:00 CET
    # 01:00 CET = 00:00Z to 04:00 CEST = 02:00Z, then 09:00 CEST = 07:00Z
    assert found[16:21] == [z("2026-03-29", t) for t in ("00:00", "00:30", "01:00", "01:30", "07:00")]
    assert len(found) == 16 + 4 + 16


def test_berlin_fall_back():
    berlin = cal("Europe/Berlin", WeeklySlot(SUN, T(1), T(4)), WeeklySlot(SUN, T(9), T(17)))
    found = starts(berlin, dt.date(2026, 10, 25))
    # 01:00 CEST = 23:00Z the day before, to 04:00 CET = 03:00Z: four real hours
    assert found[:8] == [z("2026-10-24", "23:00"), z("2026-10-24", "23:30")] + [
        z("2026-10-25", t) for t in ("00:00", "00:30", "01:00", "01:30", "02:00", "02:30")
    ]
    assert local_clock(berlin, dt.date(2026, 10, 25))[:8] == [
        "01:00 CEST",
        "01:30 CEST",
        "02:00 CEST",
        "02:30 CEST",
        "02:00 CET",
        "02:30 CET",
        "03:00 CET",
        "03:30 CET",
    ]
    assert found[8] == z("2026-10-25", "08:00")  # 09:00 CET


def test_kolkata_seen_from_utc():
    early = cal("Asia/Kolkata", WeeklySlot(MON, T(2), T(6), Decimal("1.50")))
    # 02:00 IST Monday = 20:30Z Sunday; 06:00 IST = 00:30Z Monday
    [window] = availability_windows(early, dt.date(2026, 3, 9), 1)
    assert (window.start, window.end) == (z("2026-03-08", "20:30"), z("2026-03-09", "00:30"))
    assert starts(early, dt.date(2026, 3, 9)) == [
        z("2026-03-08", t) for t in ("20:30", "21:00", "21:30", "22:00", "22:30", "23:00", "23:30")
    ] + [z("2026-03-09", "00:00")]


HOUR = 3600


def wall(day: str, hhmm: str = "00:00") -> int:
    """Seconds from 1970-01-01 00:00 to a wall time, worked out with plain calendar arithmetic."""
    hours, minutes = map(int, hhmm.split(":"))
    return (dt.date.fromisoformat(day) - dt.date(1970, 1, 1)).days * 86400 + hours * HOUR + minutes * 60


def test_wall_seconds_count_from_1970():
    assert wall_seconds(dt.date(1970, 1, 2)) == 86400
    assert wall_seconds(dt.date(2026, 3, 8)) == 20520 * 86400  # 56 years of 365 days, 14 leap days, 66 days


@pytest.mark.parametrize(
    "zone, first, expected",
    [
        # no change in the range: one offset, the switch at the range's end (3 days on)
        ("Asia/Kolkata", "2026-03-07", (wall("2026-03-10"), 5 * HOUR + 30 * 60, 5 * HOUR + 30 * 60)),
        # New York springs forward at 02:00 EST: wall times up to 03:00 are read at -5, from 03:00 at -4
        ("America/New_York", "2026-03-07", (wall("2026-03-08", "03:00"), -5 * HOUR, -4 * HOUR)),
        # ... and falls back at 02:00 EDT: 01:30 is its first occurrence (-4), 02:00 is EST (-5)
        ("America/New_York", "2026-10-31", (wall("2026-11-01", "02:00"), -4 * HOUR, -5 * HOUR)),
        # Berlin falls back at 03:00 CEST: 02:30 is read as CEST (+2), 03:00 as CET (+1)
        ("Europe/Berlin", "2026-10-24", (wall("2026-10-25", "03:00"), 2 * HOUR, HOUR)),
    ],
)
def test_wall_clock_reads_local_times_as_the_slot_rules_do(zone, first, expected):
    assert wall_clock(ZoneInfo(zone), dt.date.fromisoformat(first), 3) == expected


def test_wall_clock_instants_match_the_slot_rules_across_the_spring_gap():
    switch, before, after = wall_clock(ZoneInfo("America/New_York"), dt.date(2026, 3, 8), 1)
    assert wall("2026-03-08", "02:30") < switch  # skipped: read at EST, 07:30Z (= 03:30 EDT)
    assert wall("2026-03-08", "02:30") - before == z("2026-03-08", "07:30").timestamp()
    assert wall("2026-03-08", "03:15") - after == z("2026-03-08", "07:15").timestamp()


def test_day_of_week_counts_from_sunday():
    assert [day_of_week(dt.date(2026, 3, d)) for d in (8, 9, 14)] == [SUN, MON, SAT]


# --- overrides, bookings, notice ------------------------------------------------------------


def test_overrides_replace_the_days_weekly_hours():
    monday = dt.date(2026, 3, 9)
    weekly = WeeklySlot(MON, T(9), T(17))
    time_off = cal("UTC", weekly, overrides=[Override(monday, False, reason="holiday")])
    assert starts(time_off, monday) == []
    short_day = cal("UTC", weekly, overrides=[Override(monday, True, T(10), T(11), Decimal("2.00"), "event")])
    slots = bookable_slots(short_day, monday, 1, now=FAR_PAST, base_price_cents=1000)
    assert [(s.start_utc, s.multiplier, s.price_cents) for s in slots] == [
        (z("2026-03-09", "10:00"), Decimal("2.00"), 2000),
        (z("2026-03-09", "10:30"), Decimal("2.00"), 2000),
    ]
    # an "available" override without hours (older platform rows) keeps the weekly hours
    as_usual = cal("UTC", weekly, overrides=[Override(monday, True)])
    assert len(starts(as_usual, monday)) == 16
    # the next Monday has no override
    assert len(starts(time_off, monday + dt.timedelta(days=7))) == 16


def test_unavailable_weekly_slots_offer_nothing():
    assert starts(cal("UTC", WeeklySlot(MON, T(9), T(17), is_available=False)), dt.date(2026, 3, 9)) == []


def test_booked_sessions_block_their_time_and_the_buffer():
    monday = dt.date(2026, 3, 9)
    morning = cal("UTC", WeeklySlot(MON, T(9), T(12)), booked=[z("2026-03-09", "10:00")])
    # 30-minute sessions, 10-minute buffer: starts within 40 minutes of 10:00 are taken
    assert starts(morning, monday) == [z("2026-03-09", t) for t in ("09:00", "11:00", "11:30")]
    ten_minute_grid = SlotRules(interval_minutes=10)
    found = starts(morning, monday, rules=ten_minute_grid)
    assert z("2026-03-09", "09:20") in found and z("2026-03-09", "10:40") in found  # exactly clear
    assert z("2026-03-09", "09:30") not in found and z("2026-03-09", "10:30") not in found
    no_buffer = starts(morning, monday, rules=SlotRules(buffer_minutes=0))
    assert no_buffer == [z("2026-03-09", t) for t in ("09:00", "09:30", "10:30", "11:00", "11:30")]


def test_minimum_notice():
    monday = dt.date(2026, 3, 9)
    morning = cal("UTC", WeeklySlot(MON, T(9), T(12)))
    found = starts(morning, monday, now=z("2026-03-09", "08:15"))  # 120 minutes' notice: from 10:15
    assert found == [z("2026-03-09", t) for t in ("10:30", "11:00", "11:30")]


def test_touching_slots_form_one_window_priced_by_the_start():
    monday = dt.date(2026, 3, 9)
    banded = cal("UTC", WeeklySlot(MON, T(9), T(10, 15)), WeeklySlot(MON, T(10, 15), T(11), Decimal("1.50")))
    slots = bookable_slots(banded, monday, 1, now=FAR_PAST, base_price_cents=4999)
    assert [(f"{s.start_utc:%H:%M}", s.price_cents) for s in slots] == [
        ("09:00", 4999),
        ("09:30", 4999),
        ("10:00", 4999),
        ("10:30", 7499),
    ]  # 7,498.5 rounds up


def test_sessions_fit_inside_the_window():
    monday = dt.date(2026, 3, 9)
    assert starts(cal("UTC", WeeklySlot(MON, T(9), T(10, 45))), monday) == [
        z("2026-03-09", t) for t in ("09:00", "09:30", "10:00")
    ]
    assert starts(cal("UTC", WeeklySlot(MON, T(9), T(9, 20))), monday) == []


def test_unknown_timezone_of_a_mechanic_is_a_clear_error():
    with pytest.raises(ValidationError, match="IANA"):
        starts(cal("Mars/Olympus_Mons", WeeklySlot(MON, T(9), T(17))), dt.date(2026, 3, 9))


# --- bulk peak --------------------------------------------------------------------------


def test_apply_peak_splits_slots_at_the_window():
    slots = [
        WeeklySlot(MON, T(9), T(17), id="a"),
        WeeklySlot(TUE := 2, T(18), T(21), id="b"),
        WeeklySlot(MON, T(18), T(20), is_available=False, id="c"),
        WeeklySlot(SUN, T(16), T(19), id="d"),
    ]
    result = apply_peak(slots, {MON, TUE}, T(16), T(19), Decimal("1.50"))
    assert result == [
        WeeklySlot(SUN, T(16), T(19), id="d"),  # Sunday not chosen
        WeeklySlot(MON, T(9), T(16), id=None),  # outside the window, old multiplier, new slot
        WeeklySlot(MON, T(16), T(17), Decimal("1.50"), id="a"),
        WeeklySlot(MON, T(18), T(20), is_available=False, id="c"),  # unavailable: untouched
        WeeklySlot(TUE, T(18), T(19), Decimal("1.50"), id="b"),
        WeeklySlot(TUE, T(19), T(21), id=None),
    ]
    assert overlaps(result) == []
    assert apply_peak(result, {MON, TUE}, T(16), T(19), Decimal("1.50")) == result  # idempotent
