"""Follow-up queries on both backends: SLA states around their boundaries, queue order and
filters (the home's "overdue" and "due soon" links too), counts, the assignee picker's
options (specialties, rating, open load, free today by the calendar rules) and the weekly
trend in the display timezone."""

from __future__ import annotations

import datetime as dt
import math
import uuid

import pytest
import sqlalchemy as sa

from dashboard.core import schema as s
from dashboard.core.period import Period
from dashboard.core.settings import load_settings
from dashboard.domain.followups import FollowUpRules
from queries.followups import answer_events, assignee_options, queue, queue_size, summary, weekly
from tests.factories import add_follow_up, add_mechanic, add_session, add_user

UTC = dt.UTC
NOW = dt.datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
MINUTE = dt.timedelta(minutes=1)
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def queue_db(engine):
    """Targets: quick question 240 min (due soon from 180), mini extension 480 (from 360),
    new issue 1440 (from 1080). At NOW:

    | id      | type  | customer | created        | state    | mechanic | SLA               |
    |---------|-------|----------|----------------|----------|----------|-------------------|
    | q1      | quick | Cal      | -240 min       | open     |          | due soon, due now |
    | q2      | quick | Cal      | -240 min -1 s  | assigned | Rita     | breached by 1 s   |
    | q3      | quick | Pia      | -180 min       | open     |          | due soon          |
    | q4      | quick | Pia      | -180 min +1 s  | assigned | Rita     | on track          |
    | n1      | new   | Cal      | -1200 min      | open     |          | due soon, +240    |
    | m1      | mini  | Pia      | -1 day         | answered | Rita     | met (480 min)     |
    | m2      | mini  | Cal      | -2 days        | closed   | Bo       | missed (+1 s)     |
    | c1      | quick | Cal      | -60 min        | cancelled|          | none              |
    | legacy  | quick | Cal      | -3 days        | (completed: closed) | | none             |
    | legacy2 | quick | Pia      | -30 min        | (matched: open) |   | on track, +210    |
    """
    with engine.begin() as conn:
        cal, pia = add_user(conn, "Cal"), add_user(conn, "Pia")
        conn.execute(s.profiles.update().where(s.profiles.c.id == pia).values(plan="premium"))
        rita, bo = add_mechanic(conn, "Rita"), add_mechanic(conn, "Bo")
        add_mechanic(conn, "Otto", is_active=False)
        cal_session = add_session(
            conn,
            cal,
            rita,
            ended_at=NOW - dt.timedelta(days=4),
            findings="Worn <b>pads</b>",
            summary_submitted_at=NOW - dt.timedelta(days=4),
        )
        pia_session = add_session(conn, pia, bo, ended_at=NOW - dt.timedelta(days=4))
        ids = {
            "q1": add_follow_up(conn, cal, cal_session, created_at=NOW - 240 * MINUTE),
            "q2": add_follow_up(
                conn,
                cal,
                cal_session,
                created_at=NOW - 240 * MINUTE - SECOND,
                state="assigned",
                assigned_mechanic_id=rita,
            ),
            "q3": add_follow_up(conn, pia, pia_session, created_at=NOW - 180 * MINUTE, follow_up_price_cents=0),
            "q4": add_follow_up(
                conn,
                pia,
                pia_session,
                created_at=NOW - 180 * MINUTE + SECOND,
                state="assigned",
                assigned_mechanic_id=rita,
            ),
            "n1": add_follow_up(
                conn,
                cal,
                cal_session,
                "new_issue",
                created_at=NOW - 1200 * MINUTE,
                follow_up_price_cents=2900,
                description="New issue: <script>",
            ),
            "m1": add_follow_up(
                conn,
                pia,
                pia_session,
                "mini_extension",
                created_at=NOW - dt.timedelta(days=1),
                state="answered",
                assigned_mechanic_id=rita,
                answered_at=NOW - dt.timedelta(days=1) + 480 * MINUTE,
            ),
            "m2": add_follow_up(
                conn,
                cal,
                cal_session,
                "mini_extension",
                created_at=NOW - dt.timedelta(days=2),
                state="closed",
                assigned_mechanic_id=bo,
                closed_at=NOW,
                answered_at=NOW - dt.timedelta(days=2) + 480 * MINUTE + SECOND,
            ),
            "c1": add_follow_up(
                conn,
                cal,
                cal_session,
                created_at=NOW - 60 * MINUTE,
                state="cancelled",
                cancelled_at=NOW,
                cancel_reason="Asked twice",
            ),
            "legacy": add_follow_up(
                conn, cal, cal_session, created_at=NOW - dt.timedelta(days=3), state=None, status="completed"
            ),
            "legacy2": add_follow_up(
                conn, pia, pia_session, created_at=NOW - 30 * MINUTE, state=None, status="matched"
            ),
        }
        conn.execute(s.requests.insert().values(customer_id=cal, created_at=NOW))  # not a follow-up
    names = {rid: name for name, rid in ids.items()}
    return {"ids": ids, "names": names, "rita": rita, "bo": bo, "cal_session": cal_session, "pia": pia}


def named(frame, names) -> list[str]:
    return [names[rid] for rid in frame.id]


def test_sla_states_around_the_boundaries(engine, queue_db):
    with engine.connect() as conn:
        frame = queue(conn, now=NOW, states=())
    rows = {queue_db["names"][row.id]: row for row in frame.itertuples()}
    assert {name: row.sla_state for name, row in rows.items()} == {
        "q1": "due_soon",
        "q2": "breached",
        "q3": "due_soon",
        "q4": "on_track",
        "n1": "due_soon",
        "m1": "met",
        "m2": "missed",
        "c1": None,
        "legacy": None,
        "legacy2": "on_track",
    }
    assert {name: row.state for name, row in rows.items()} == {
        "q1": "open",
        "q2": "assigned",
        "q3": "open",
        "q4": "assigned",
        "n1": "open",
        "m1": "answered",
        "m2": "closed",
        "c1": "cancelled",
        "legacy": "closed",
        "legacy2": "open",
    }
    assert (rows["q1"].age_minutes, rows["q1"].minutes_to_due) == (240.0, 0.0)
    assert rows["q1"].due_at == NOW
    assert rows["q2"].minutes_to_due == pytest.approx(-1 / 60)
    assert (rows["n1"].age_minutes, rows["n1"].minutes_to_due) == (1200.0, 240.0)
    assert rows["legacy2"].minutes_to_due == 210.0
    assert set(frame.matching) == {10}
    # one second later q1 is breached too; one second earlier q3 was still on track
    with engine.connect() as conn:
        later = queue(conn, now=NOW + SECOND, types=("quick_question",))
        earlier = queue(conn, now=NOW - SECOND, types=("quick_question",))
    names = queue_db["names"]
    assert dict(zip(named(later, names), later.sla_state))["q1"] == "breached"
    assert dict(zip(named(earlier, names), earlier.sla_state)) == {
        "q2": "due_soon",
        "q1": "due_soon",
        "q3": "on_track",
        "q4": "on_track",
        "legacy2": "on_track",
    }


def test_targets_come_from_the_rules(engine, queue_db):
    rules = FollowUpRules.from_settings(
        load_settings({}, secrets={"followups": {"sla_minutes": {"quick_question": 300}}})
    )
    with engine.connect() as conn:
        frame = queue(conn, now=NOW, rules=rules, types=("quick_question",))
    assert dict(zip(named(frame, queue_db["names"]), frame.sla_state)) == {
        "q2": "due_soon",
        "q1": "due_soon",
        "q3": "on_track",
        "q4": "on_track",
        "legacy2": "on_track",
    }
    assert frame.minutes_to_due.iloc[1] == 60.0  # q1: 300 - 240, due soon from 225


def test_queue_order(engine, queue_db):
    names = queue_db["names"]
    with engine.connect() as conn:
        by_due = queue(conn, now=NOW)
        oldest = queue(conn, now=NOW, order="oldest")
        first_two = queue(conn, now=NOW, limit=2)
        with pytest.raises(ValueError, match="unknown order"):
            queue(conn, now=NOW, order="newest")
    assert named(by_due, names) == ["q2", "q1", "q3", "q4", "legacy2", "n1"]
    assert named(oldest, names) == ["n1", "q2", "q1", "q3", "q4", "legacy2"]
    assert named(first_two, names) == ["q2", "q1"] and set(first_two.matching) == {6}


def test_queue_pages_and_size(engine, queue_db):
    names = queue_db["names"]
    with engine.connect() as conn:
        pages = [named(queue(conn, now=NOW, limit=4, offset=offset), names) for offset in (0, 4, 8)]
        second = queue(conn, now=NOW, order="oldest", limit=2, offset=2)
        sizes = [
            queue_size(conn, now=NOW).follow_ups.iloc[0],
            queue_size(conn, now=NOW, plans=("premium",)).follow_ups.iloc[0],
            queue_size(conn, now=NOW, states=(), mechanic_id=queue_db["rita"]).follow_ups.iloc[0],
            queue_size(conn, now=NOW, states=("open",), mechanic_id=queue_db["bo"]).follow_ups.iloc[0],
        ]
        with pytest.raises(ValueError, match="unknown"):
            queue_size(conn, now=NOW, states=("waiting",))
    # the six waiting ones by due time (test_queue_order), four a page
    assert pages == [["q2", "q1", "q3", "q4"], ["legacy2", "n1"], []]
    assert named(second, names) == ["q1", "q3"] and set(second.matching) == {6}
    assert sizes == [6, 3, 3, 0]  # as many as test_queue_filters lists


def test_queue_filters(engine, queue_db):
    names = queue_db["names"]
    with engine.connect() as conn:

        def ids(**filters):
            return named(queue(conn, now=NOW, **filters), names)

        assert ids(types=("new_issue",)) == ["n1"]
        assert ids(plans=("premium",)) == ["q3", "q4", "legacy2"]
        assert ids(plans=("standard",), types=("quick_question",)) == ["q2", "q1"]
        assert ids(states=(), mechanic_id=queue_db["rita"]) == ["m1", "q2", "q4"]
        assert ids(states=("answered", "closed")) == ["legacy", "m2", "m1"]
        assert ids(states=("cancelled",)) == ["c1"]
        assert ids(states=("open",), mechanic_id=queue_db["bo"]) == []
        for bad in (dict(states=("waiting",)), dict(types=("chat",)), dict(plans=("gold",))):
            with pytest.raises(ValueError, match="unknown"):
                queue(conn, now=NOW, **bad)


def test_queue_rows_carry_the_parent_summary_and_texts(engine, queue_db):
    with engine.connect() as conn:
        frame = queue(conn, now=NOW, types=("new_issue",))
    row = frame.iloc[0]
    assert (row.description, row.price_cents, row.plan, row.customer_name) == (
        "New issue: <script>",
        2900,
        "standard",
        "Cal",
    )
    assert (row.parent_session_id, row.parent_mechanic_name, row.parent_mechanic_active, row.findings) == (
        queue_db["cal_session"],
        "Rita",
        True,
        "Worn <b>pads</b>",
    )
    assert row.parent_ended_at == NOW - dt.timedelta(days=4) and row.steps_taken is None


def test_summary_counts(engine, queue_db):
    with engine.connect() as conn:
        counts = summary(conn, now=NOW).iloc[0].to_dict()
        later = summary(conn, now=NOW + SECOND).iloc[0].to_dict()
    assert counts == {
        "open": 4,
        "assigned": 2,
        "answered": 1,
        "waiting": 6,
        "breached": 1,
        "due_soon": 3,
        "soon": 3,  # q1 (due now), q3 and q4 (in 60 min and 60 min 1 s); n1 and legacy2 are 4 h and 3.5 h away
    }
    assert (later["breached"], later["due_soon"], later["soon"]) == (2, 3, 2)  # q1 crossed its due time


def test_due_filters_of_the_links(engine, queue_db):
    names = queue_db["names"]
    with engine.connect() as conn:
        overdue = queue(conn, now=NOW, due="overdue")
        soon = queue(conn, now=NOW, due="soon")
        soon_all_states = queue(conn, now=NOW, states=(), due="soon")
        soon_later = queue(conn, now=NOW + SECOND, due="soon")
        open_soon = queue(conn, now=NOW, states=("open",), due="soon")
        with pytest.raises(ValueError, match="unknown due filter"):
            queue(conn, now=NOW, due="late")
    assert named(overdue, names) == ["q2"] and set(overdue.matching) == {1}
    assert named(soon, names) == ["q1", "q3", "q4"] == named(soon_all_states, names)  # waiting ones only
    assert named(soon_later, names) == ["q3", "q4"]  # q1 is overdue one second later
    assert named(open_soon, names) == ["q1", "q3"]


def test_answer_and_who_recorded_it(engine, queue_db):
    with engine.begin() as conn:
        conn.execute(s.staff_roles.insert().values(email="sue@example.com", role="support", display_name="Sue Support"))
        conn.execute(
            s.requests.update()
            .where(s.requests.c.id == queue_db["ids"]["m1"])
            .values(answer_text="Use <b>5W-30</b> **oil**", answered_by="sue@example.com")
        )
        conn.execute(
            s.requests.update()
            .where(s.requests.c.id == queue_db["ids"]["m2"])
            .values(answer_text="Gone", answered_by="left@example.com")
        )
        frame = queue(conn, now=NOW, states=("answered", "closed"))
    rows = {queue_db["names"][row.id]: row for row in frame.itertuples()}
    assert (rows["m1"].answer_text, rows["m1"].answered_by, rows["m1"].answered_by_name) == (
        "Use <b>5W-30</b> **oil**",
        "sue@example.com",
        "Sue Support",
    )
    assert rows["m2"].answered_by_name == "left@example.com"  # no longer on the staff list: the email
    assert rows["legacy"].answer_text is None and rows["legacy"].answered_by_name is None
    with engine.connect() as conn:  # the customer lookup's timeline rows: Pia's answer (Cal's other one is his)
        events = conn.execute(answer_events(queue_db["pia"])).all()
    assert [tuple(e) for e in events] == [
        (
            NOW - dt.timedelta(days=1) + 480 * MINUTE,
            "Answered by Rita · recorded by Sue Support",
            "Use <b>5W-30</b> **oil**",
        )
    ]


@pytest.fixture
def assignee_db(engine):
    """NOW is Sunday 10 March 2024 12:00 UTC (13:00 in Berlin, 08:00 in New York, which moved to
    summer time at 02:00 that day, 21:00 in Tokyo).

    | mechanic | timezone         | specialties    | rating     | open | today's hours (local)       | free |
    |----------|------------------|----------------|------------|------|-----------------------------|------|
    | Ana      | Europe/Berlin    | brakes, engine | 4.70 (10)  | 1    | Sunday 08-20                | yes  |
    | Ben      | America/New_York | brakes         | 4.90 (20)  | 2    | Sunday 06-08 (ends now)     | no   |
    | Cy       | UTC              | tyres          | none (0)   | 0    | Sunday 13-14, day off today | no   |
    | Dee      | Asia/Tokyo       | none           | none (0)   | 0    | override: 22-23 today       | yes  |
    | Otto     | UTC (inactive)   |                |            |      |                             |      |
    Ana also has an answered follow-up and Cy a cancelled one (not open load)."""
    with engine.begin() as conn:
        ana = add_mechanic(
            conn, "Ana", timezone="Europe/Berlin", specialties=["brakes", "engine"], avg_rating=4.7, total_reviews=10
        )
        ben = add_mechanic(
            conn, "Ben", timezone="America/New_York", specialties=["brakes"], avg_rating=4.9, total_reviews=20
        )
        cy = add_mechanic(conn, "Cy", timezone="UTC", specialties=["tyres"])
        dee = add_mechanic(conn, "Dee", timezone="Asia/Tokyo")
        add_mechanic(conn, "Otto", is_active=False, specialties=["brakes"])
        slot = s.mechanic_availability_slots.insert()
        conn.execute(
            slot,
            [
                {"mechanic_id": ana, "day_of_week": 0, "start_time": dt.time(8), "end_time": dt.time(20)},
                {"mechanic_id": ben, "day_of_week": 0, "start_time": dt.time(6), "end_time": dt.time(8)},
                {"mechanic_id": ben, "day_of_week": 1, "start_time": dt.time(6), "end_time": dt.time(20)},
                {"mechanic_id": cy, "day_of_week": 0, "start_time": dt.time(13), "end_time": dt.time(14)},
            ],
        )
        conn.execute(
            s.mechanic_availability_overrides.insert(),
            [
                {
                    "mechanic_id": cy,
                    "date": dt.date(2024, 3, 10),
                    "is_available": False,
                    "start_time": None,
                    "end_time": None,
                },
                {
                    "mechanic_id": dee,
                    "date": dt.date(2024, 3, 10),
                    "is_available": True,
                    "start_time": dt.time(22),
                    "end_time": dt.time(23),
                },
            ],
        )
        customer = add_user(conn)
        session = add_session(conn, customer, ana, ended_at=NOW - dt.timedelta(days=1))
        for mechanic, state in [(ana, "assigned"), (ana, "answered"), (ben, "assigned"), (ben, "assigned")]:
            answered = {"answered_at": NOW} if state == "answered" else {}
            add_follow_up(
                conn, customer, session, created_at=NOW - MINUTE, state=state, assigned_mechanic_id=mechanic, **answered
            )
        add_follow_up(
            conn, customer, session, created_at=NOW - MINUTE, state="cancelled", cancelled_at=NOW, cancel_reason="x"
        )
    return {"Ana": ana, "Ben": ben, "Cy": cy, "Dee": dee}


def options(frame) -> list[tuple]:
    return [
        (
            row.display_name,
            row.specialties,
            row.avg_rating if row.avg_rating == row.avg_rating else None,
            row.open_items,
            row.matches,
            row.free_today,
        )
        for row in frame.itertuples()
    ]


def test_assignee_options_best_matches_first(engine, assignee_db):
    with engine.connect() as conn:
        brakes = assignee_options(conn, now=NOW, category="brakes")
        anything = assignee_options(conn, now=NOW)
        monday = assignee_options(conn, now=NOW + dt.timedelta(hours=12))  # Monday 00:00 UTC
        with pytest.raises(ValueError, match="timezone-aware"):
            assignee_options(conn, now=NOW.replace(tzinfo=None))
    assert options(brakes) == [
        ("Ana", ["brakes", "engine"], 4.7, 1, True, True),
        ("Ben", ["brakes"], 4.9, 2, True, False),
        ("Dee", [], None, 0, False, True),
        ("Cy", ["tyres"], None, 0, False, False),
    ]
    # no category: free today first, then fewest open, best rated, by name
    assert [row.display_name for row in anything.itertuples()] == ["Dee", "Ana", "Cy", "Ben"]
    assert not anything.matches.any()
    # Monday 00:00 UTC: still Sunday 20:00 in New York, so Ben's Monday hours do not count yet; it is
    # Monday in Berlin and Tokyo, where Ana and Dee have no hours
    assert not monday.free_today.any()


def free_today(engine, now: dt.datetime, calendars: dict) -> dict[str, bool]:
    """``calendars``: name -> (timezone, weekly slots (day, start h, end h[, available]), overrides
    (date, available[, start h, end h])); each becomes an active mechanic. Their ``free_today``."""
    with engine.begin() as conn:
        for name, (zone, weekly, overrides) in calendars.items():
            mechanic = add_mechanic(conn, name, timezone=zone)
            for day, start, end, *available in weekly:
                conn.execute(
                    s.mechanic_availability_slots.insert().values(
                        mechanic_id=mechanic,
                        day_of_week=day,
                        start_time=start,
                        end_time=end,
                        is_available=available[0] if available else True,
                    )
                )
            for date, available, *hours in overrides:
                conn.execute(
                    s.mechanic_availability_overrides.insert().values(
                        mechanic_id=mechanic,
                        date=date,
                        is_available=available,
                        start_time=hours[0] if hours else None,
                        end_time=hours[1] if hours else None,
                    )
                )
    with engine.connect() as conn:
        frame = assignee_options(conn, now=now)
    return dict(zip(frame.display_name, frame.free_today))


def t(hour: int, minute: int = 0) -> dt.time:
    return dt.time(hour, minute)


def test_free_today_by_each_mechanics_own_day_and_override(engine):
    """Wednesday 12 June 2024 03:00 UTC, no clock change near in these zones (Wednesday = 3):

    | mechanic | zone (local time now)            | today's hours                                   | free |
    |----------|----------------------------------|-------------------------------------------------|------|
    | Early    | UTC (Wed 03:00)                  | 01:00-03:00 (ends now); 05-06 unavailable       | no   |
    | Late     | Asia/Kolkata (Wed 08:30)         | 08:00-09:00                                     | yes  |
    | Off      | Europe/Berlin (Wed 05:00)        | 09-18, but a day off today                      | no   |
    | Swap     | UTC                              | 05-06, replaced by today's override 01:00-02:00 | no   |
    | Open     | UTC                              | an override "available" without hours: 03-03:30 | yes  |
    | West     | America/Los_Angeles (Tue 20:00)  | Tuesday 19-21 (Wednesday's off day is tomorrow) | yes  |
    """
    wednesday = dt.date(2024, 6, 12)
    found = free_today(
        engine,
        dt.datetime(2024, 6, 12, 3, tzinfo=UTC),
        {
            "Early": ("UTC", [(3, t(1), t(3)), (3, t(5), t(6), False)], []),
            "Late": ("Asia/Kolkata", [(3, t(8), t(9))], []),
            "Off": ("Europe/Berlin", [(3, t(9), t(18))], [(wednesday, False)]),
            "Swap": ("UTC", [(3, t(5), t(6))], [(wednesday, True, t(1), t(2))]),
            "Open": ("UTC", [(3, t(3), t(3, 30))], [(wednesday, True)]),
            "West": ("America/Los_Angeles", [(2, t(19), t(21)), (3, t(8), t(9))], [(wednesday, False)]),
        },
    )
    assert found == {"Early": False, "Late": True, "Off": False, "Swap": False, "Open": True, "West": True}


def test_free_today_on_a_clock_change_reads_a_repeated_time_as_its_first_occurrence(engine):
    """Sunday 3 November 2024 06:10 UTC: New York has just turned back from 02:00 EDT to 01:00 EST
    (it is 01:10 EST). Fall's hours end at 01:30, the first 01:30 (EDT, 05:30 UTC), already past
    (by the wall clock 01:30 is still ahead); Late's end at 02:00 EST (07:00 UTC); Utc's at 07:00 UTC."""
    found = free_today(
        engine,
        dt.datetime(2024, 11, 3, 6, 10, tzinfo=UTC),
        {
            "Fall": ("America/New_York", [(0, t(0), t(1, 30))], []),
            "Late": ("America/New_York", [(0, t(1), t(2))], []),
            "Utc": ("UTC", [(0, t(6), t(7))], []),
        },
    )
    assert found == {"Fall": False, "Late": True, "Utc": True}


@pytest.fixture
def weekly_db(engine):
    """Follow-ups around the week boundaries of Berlin (UTC+1 in March 2024) and UTC,
    with hours to answer."""
    with engine.begin() as conn:
        cal = add_user(conn)
        session = add_session(conn, cal, add_mechanic(conn))
        for created, hours in [
            (dt.datetime(2024, 3, 3, 22, 59), None),  # Sun 23:59 Berlin: before the Berlin period
            (dt.datetime(2024, 3, 3, 23, 0), None),  # Mon 00:00 Berlin
            (dt.datetime(2024, 3, 4, 8, 0), 2),
            (dt.datetime(2024, 3, 6, 10, 0), 4),
            (dt.datetime(2024, 3, 10, 22, 30), 9),  # Sun 23:30 Berlin
            (dt.datetime(2024, 3, 10, 23, 30), 1),  # Mon 00:30 Berlin, Sun 23:30 UTC
            (dt.datetime(2024, 3, 12, 10, 0), None),
            (dt.datetime(2024, 3, 17, 23, 0), None),  # Mon 18 March 00:00 Berlin: after the Berlin period
        ]:
            created = created.replace(tzinfo=UTC)
            add_follow_up(
                conn,
                cal,
                session,
                created_at=created,
                **({"state": "answered", "answered_at": created + dt.timedelta(hours=hours)} if hours else {}),
            )
        conn.execute(s.requests.insert().values(customer_id=cal, created_at=dt.datetime(2024, 3, 5, tzinfo=UTC)))


def rows(frame) -> list[tuple]:
    return [
        (w.isoformat(), n, a, None if math.isnan(m) else m)
        for w, n, a, m in zip(frame.week, frame.follow_ups, frame.answered, frame.median_hours_to_answer)
    ]


def test_weekly_volume_and_median_in_the_display_timezone(engine, weekly_db):
    with engine.connect() as conn:
        berlin = weekly(conn, period=Period(dt.date(2024, 3, 4), dt.date(2024, 3, 17), "Europe/Berlin"))
        utc = weekly(conn, period=Period(dt.date(2024, 3, 4), dt.date(2024, 3, 24), "UTC"))
        midweek = weekly(conn, period=Period(dt.date(2024, 3, 6), dt.date(2024, 3, 12), "UTC"))
    assert rows(berlin) == [("2024-03-04", 4, 3, 4.0), ("2024-03-11", 2, 1, 1.0)]  # median of 2, 4, 9 hours
    assert rows(utc) == [("2024-03-04", 4, 4, 3.0), ("2024-03-11", 2, 0, None), ("2024-03-18", 0, 0, None)]
    assert rows(midweek) == [("2024-03-04", 3, 3, 4.0), ("2024-03-11", 1, 0, None)]  # from Wednesday
    assert (list(berlin.days), list(midweek.days)) == ([7, 7], [5, 2])  # Wednesday to Sunday, Monday and Tuesday


def test_the_queues_filters_are_the_indexed_expressions(pg_engine):
    """The state filter is the expression step 22 indexes (its constants are inline SQL: bound
    parameters would make it another expression, which no index serves), and the assignee filter
    has an index of its own: the plans of the default queue and of one mechanic's use them."""
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    with pg_engine.connect() as conn:
        sa.event.listen(conn, "before_cursor_execute", record)
        queue(conn, now=NOW)
        queue(conn, now=NOW, states=("open", "assigned", "answered"), mechanic_id=uuid.uuid4())
        sa.event.remove(conn, "before_cursor_execute", record)
        conn.exec_driver_sql("SET enable_seqscan = off")  # an empty table: the planner would read it all
        plans = [
            "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}", params)) for sql, params in statements
        ]
    assert "Index Cond: (COALESCE(follow_up_state" in plans[0]
    assert "ix_requests_follow_up_state_created" in plans[0]
    assert "ix_requests_follow_up_mechanic_state" in plans[1]
