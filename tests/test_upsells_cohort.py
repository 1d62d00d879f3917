"""The Upsells page's cohort (summary, by type or service, by week, by mechanic) from its roll-ups
(per 15 minutes and per UTC day) equals the raw rows, in zones of every offset kind, and stays
exact when rows change, on both backends.

Period 7-10 March 2026 (Saturday to Tuesday; a week starts on Monday 9 March), previous 3-6 March:
  UTC        [03-07 00:00Z, 03-11 00:00Z)  week of 9 March from 03-09 00:00Z  previous from 03-03 00:00Z
  Kolkata    [03-06 18:30Z, 03-10 18:30Z)                 from 03-08 18:30Z               03-02 18:30Z
  Kathmandu  [03-06 18:15Z, 03-10 18:15Z)                 from 03-08 18:15Z               03-02 18:15Z
Recommendations (shown at, UTC; mechanic of the session; service; price; clicked / bought):
  r1 03-07 10:00  Mo    Call     1900  clicked, bought   current everywhere, week of 2 March
  r2 03-09 12:00  Ada   Plan     9900  clicked           current everywhere, week of 9 March
  r3 03-06 18:20  Mo    Call     1900  bought            previous in UTC and Kolkata, current in Kathmandu (2 March)
  r4 03-08 18:40  none  Premium   999  clicked, bought   current everywhere; week of 2 March in UTC, else 9 March
  r5 03-10 20:00  Ada   Call     1900  -                 current in UTC only (week of 9 March)
  r6 03-04 09:00  Ada   Call v2  2500  bought            previous everywhere
  r7 03-02 18:20  Mo    Premium   999  -                 previous in Kathmandu only
Zed is an active mechanic with none: listed with zeros. r4 has no session: not by mechanic.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from dashboard.core import schema as s
from dashboard.core.period import Period
from dashboard.domain import overview as rollups
from queries import upsells
from tests.factories import add_mechanic, add_session, add_user, tables_read

PERIOD_DAYS = (dt.date(2026, 3, 7), dt.date(2026, 3, 10))
WEEKS = (dt.date(2026, 3, 2), dt.date(2026, 3, 9))
ZONES = ("UTC", "Asia/Kolkata", "Asia/Kathmandu")
R = {name: uuid.uuid4() for name in ("r1", "r2", "r3", "r4", "r5", "r6", "r7")}
ROWS = {  # name: shown, mechanic, type, title, price, clicked, bought
    "r1": ((3, 7, 10, 0), "Mo", "follow_up", "Call", 1900, True, True),
    "r2": ((3, 9, 12, 0), "Ada", "maintenance_plan", "Plan", 9900, True, False),
    "r3": ((3, 6, 18, 20), "Mo", "follow_up", "Call", 1900, False, True),
    "r4": ((3, 8, 18, 40), None, "premium_upgrade", "Premium", 999, True, True),
    "r5": ((3, 10, 20, 0), "Ada", "follow_up", "Call", 1900, False, False),
    "r6": ((3, 4, 9, 0), "Ada", "follow_up", "Call v2", 2500, False, True),
    "r7": ((3, 2, 18, 20), "Mo", "premium_upgrade", "Premium", 999, False, False),
}


def utc(*args) -> dt.datetime:
    return dt.datetime(2026, *args, tzinfo=dt.UTC)


def write_cohort(engine) -> tuple[dict, dict]:
    """The recommendations above, each after a session of its own (r4 after none): the mechanics'
    and the sessions' ids."""
    with engine.begin() as conn:
        customer = add_user(conn)
        mechanics = {name: add_mechanic(conn, name) for name in ("Mo", "Ada", "Zed")}
        sessions = {}
        for name, (shown, mechanic, kind, title, price, clicked, bought) in ROWS.items():
            session = None if mechanic is None else add_session(conn, customer, mechanics[mechanic])
            sessions[name] = session
            conn.execute(
                s.upsell_recommendations.insert().values(
                    id=R[name],
                    customer_id=customer,
                    session_id=session,
                    recommendation_type=kind,
                    service_title=title,
                    price_cents=price,
                    shown_at=utc(*shown),
                    clicked_at=utc(*shown) + dt.timedelta(minutes=5) if clicked else None,
                    purchased_at=utc(*shown) + dt.timedelta(minutes=10) if bought else None,
                )
            )
    return mechanics, sessions


@pytest.fixture
def cohort_db(engine):
    return engine, *write_cohort(engine)


# per zone: summary (current, previous), by service, by week, by mechanic; counts are
# (shown, clicked, purchased, revenue_cents)
EXPECTED = {
    "UTC": (
        {"current": (4, 3, 2, 2899), "previous": (2, 0, 2, 4400)},
        [("follow_up", "Call", 2, 1, 1, 1900), ("premium_upgrade", "Premium", 1, 1, 1, 999)]
        + [("maintenance_plan", "Plan", 1, 1, 0, 0)],
        [(WEEKS[0], 2, 2, 2, 2899), (WEEKS[1], 2, 1, 0, 0)],
        [("Mo", 1, 1, 1, 1900), ("Ada", 2, 1, 0, 0), ("Zed", 0, 0, 0, 0)],
    ),
    "Asia/Kolkata": (
        {"current": (3, 3, 2, 2899), "previous": (2, 0, 2, 4400)},
        [("follow_up", "Call", 1, 1, 1, 1900), ("premium_upgrade", "Premium", 1, 1, 1, 999)]
        + [("maintenance_plan", "Plan", 1, 1, 0, 0)],
        [(WEEKS[0], 1, 1, 1, 1900), (WEEKS[1], 2, 2, 1, 999)],
        [("Mo", 1, 1, 1, 1900), ("Ada", 1, 1, 0, 0), ("Zed", 0, 0, 0, 0)],
    ),
    "Asia/Kathmandu": (
        {"current": (4, 3, 3, 4799), "previous": (2, 0, 1, 2500)},
        [("follow_up", "Call", 2, 1, 2, 3800), ("premium_upgrade", "Premium", 1, 1, 1, 999)]
        + [("maintenance_plan", "Plan", 1, 1, 0, 0)],
        [(WEEKS[0], 2, 1, 2, 3800), (WEEKS[1], 2, 2, 1, 999)],
        [("Mo", 2, 1, 2, 3800), ("Ada", 1, 1, 0, 0), ("Zed", 0, 0, 0, 0)],
    ),
}
COUNTS = ["shown", "clicked", "purchased", "revenue_cents"]


def figures(engine, tz: str) -> tuple:
    period = Period(*PERIOD_DAYS, tz)
    with engine.connect() as conn:
        summary = upsells.summary(conn, period=period)
        by_service = upsells.performance(conn, period=period, by="service")
        weeks = upsells.trend(conn, period=period, grain="week")
        by_mechanic = upsells.by_mechanic(conn, period=period)
    return (
        {label: tuple(int(v) for v in summary.loc[label, COUNTS]) for label in ("current", "previous")},
        [tuple(row) for row in by_service[["recommendation_type", "service_title", *COUNTS]].values.tolist()],
        [tuple(row) for row in weeks[["bucket", *COUNTS]].values.tolist()],
        [tuple(row) for row in by_mechanic[["display_name", *COUNTS]].values.tolist()],
    )


def rows_of(engine, table: sa.Table, *keys: str) -> dict:
    with engine.connect() as conn:
        found = conn.execute(sa.select(table)).mappings().all()
    return {tuple(row[k] for k in keys): tuple(row[c] for c in COUNTS) for row in found}


@pytest.mark.parametrize("tz", ZONES)
def test_the_cohort_roll_ups_give_the_raw_figures_in_every_kind_of_zone(cohort_db, tz):
    engine, _, _ = cohort_db
    assert figures(engine, tz) == EXPECTED[tz]  # from the raw rows: the roll-ups are not built yet
    rollups.refresh(engine, rebuild=True)
    assert figures(engine, tz) == EXPECTED[tz]  # PostgreSQL: from the roll-ups


def test_the_day_levels_hold_the_sum_of_each_utc_day(cohort_db):
    engine, mechanics, _ = cohort_db
    rollups.refresh(engine, rebuild=True)
    days = rows_of(engine, s.upsell_service_days, "bucket_start", "service_title")
    assert days == {
        (utc(3, 7), "Call"): (1, 1, 1, 1900),
        (utc(3, 9), "Plan"): (1, 1, 0, 0),
        (utc(3, 6), "Call"): (1, 0, 1, 1900),
        (utc(3, 8), "Premium"): (1, 1, 1, 999),
        (utc(3, 10), "Call"): (1, 0, 0, 0),
        (utc(3, 4), "Call v2"): (1, 0, 1, 2500),
        (utc(3, 2), "Premium"): (1, 0, 0, 0),
    }
    quarters = rows_of(engine, s.upsell_service_buckets, "bucket_start", "service_title")
    assert quarters[(utc(3, 6, 18, 15), "Call")] == (1, 0, 1, 1900) and len(quarters) == 7  # r3 at 18:20
    by_mechanic = rows_of(engine, s.upsell_mechanic_days, "bucket_start", "mechanic_id")
    assert by_mechanic[(utc(3, 7), mechanics["Mo"])] == (1, 1, 1, 1900)
    assert len(by_mechanic) == 6  # every one but r4, which followed no session


ROLL_UPS = (s.upsell_service_days, s.upsell_service_buckets, s.upsell_mechanic_days, s.upsell_mechanic_buckets)


def test_postgres_reads_whole_utc_days_from_the_day_level_and_the_rest_per_15_minutes(pg_engine):
    write_cohort(pg_engine)
    rollups.refresh(pg_engine, rebuild=True)
    with tables_read(pg_engine, *ROLL_UPS) as read:
        assert figures(pg_engine, "UTC") == EXPECTED["UTC"]
    assert read == {"upsell_service_days", "upsell_mechanic_days"}  # every day of it is a whole UTC day
    with tables_read(pg_engine, *ROLL_UPS) as read:
        assert figures(pg_engine, "Asia/Kolkata") == EXPECTED["Asia/Kolkata"]
    # its first and last days are partial UTC days, and its weeks start at 18:30 UTC
    assert read == {"upsell_service_days", "upsell_service_buckets", "upsell_mechanic_days", "upsell_mechanic_buckets"}
    with tables_read(pg_engine, *ROLL_UPS) as read, pg_engine.connect() as conn:
        weeks = upsells.trend(conn, period=Period(*PERIOD_DAYS, "Asia/Kolkata"), grain="week")
    assert read == {"upsell_service_buckets"} and weeks.shown.tolist() == [1, 2]


def test_a_change_shows_at_once_and_the_refresh_folds_it_in(cohort_db):
    engine, mechanics, sessions = cohort_db
    rollups.refresh(engine, rebuild=True)
    rec = s.upsell_recommendations
    with engine.begin() as conn:  # as the platform or a console would: no Pitwall code involved
        conn.execute(rec.update().where(rec.c.id == R["r5"]).values(purchased_at=utc(3, 10, 21)))
        conn.execute(rec.update().where(rec.c.id == R["r2"]).values(service_title="Plan plus"))
        conn.execute(s.sessions.update().where(s.sessions.c.id == sessions["r1"]).values(mechanic_id=mechanics["Ada"]))
        conn.execute(  # r8: a Call after r3's session (Mo's), shown on r4's day
            rec.insert().values(
                customer_id=conn.execute(sa.select(rec.c.customer_id).where(rec.c.id == R["r3"])).scalar_one(),
                session_id=sessions["r3"],
                recommendation_type="follow_up",
                service_title="Call",
                price_cents=1900,
                shown_at=utc(3, 8, 9),
            )
        )
    # r5 bought (Call, Ada), r2 renamed, r1's session now Ada's, r8 shown (current in both zones,
    # week of 2 March); r4's bucket on r8's day is unchanged (read from its roll-up)
    expected = {
        "UTC": (
            {"current": (5, 3, 3, 4799), "previous": (2, 0, 2, 4400)},
            [("follow_up", "Call", 3, 1, 2, 3800), ("premium_upgrade", "Premium", 1, 1, 1, 999)]
            + [("maintenance_plan", "Plan plus", 1, 1, 0, 0)],
            [(WEEKS[0], 3, 2, 2, 2899), (WEEKS[1], 2, 1, 1, 1900)],
            [("Ada", 3, 2, 2, 3800), ("Mo", 1, 0, 0, 0), ("Zed", 0, 0, 0, 0)],
        ),
        "Asia/Kathmandu": (
            {"current": (5, 3, 3, 4799), "previous": (2, 0, 1, 2500)},
            [("follow_up", "Call", 3, 1, 2, 3800), ("premium_upgrade", "Premium", 1, 1, 1, 999)]
            + [("maintenance_plan", "Plan plus", 1, 1, 0, 0)],
            [(WEEKS[0], 3, 1, 2, 3800), (WEEKS[1], 2, 2, 1, 999)],
            [("Ada", 2, 2, 1, 1900), ("Mo", 2, 0, 1, 1900), ("Zed", 0, 0, 0, 0)],
        ),
    }
    for tz, figures_now in expected.items():
        assert figures(engine, tz) == figures_now, tz
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        marked = set(conn.execute(sa.select(s.rollup_dirty.c.bucket_start)).scalars())
    if postgres:  # the triggers marked the shown buckets (and the purchase's)
        assert marked == {utc(3, 10, 21), utc(3, 10, 20), utc(3, 9, 12), utc(3, 7, 10), utc(3, 8, 9)}
    rollups.refresh(engine, rebuild=not postgres)  # DuckDB has no marks: rebuild to compare its roll-ups
    for tz, figures_now in expected.items():
        assert figures(engine, tz) == figures_now, tz
    days = rows_of(engine, s.upsell_service_days, "bucket_start", "service_title")
    assert days[(utc(3, 10), "Call")] == (1, 0, 1, 1900) and days[(utc(3, 9), "Plan plus")] == (1, 1, 0, 0)
    assert (utc(3, 9), "Plan") not in days and days[(utc(3, 8), "Call")] == (1, 0, 0, 0)
    by_mechanic = rows_of(engine, s.upsell_mechanic_days, "bucket_start", "mechanic_id")
    assert by_mechanic[(utc(3, 7), mechanics["Ada"])] == (1, 1, 1, 1900)
    assert (utc(3, 7), mechanics["Mo"]) not in by_mechanic
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.rollup_dirty)).scalar_one() == 0
