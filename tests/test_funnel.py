"""The ordered funnel on a hand-built fixture (``crm_db``: tests/funnel_scenario.py), on
both backends, from raw events and from the roll-up; the roll-up job; recording interactions.

The period is 1-10 March 2024 in America/New_York (DST starts on 10 March): entries count
from 2024-03-01 05:00 UTC to 2024-03-11 04:00 UTC. In UTC the same dates run from
03-01 00:00 to 03-11 00:00. Default steps: intake -> session -> summary_viewed ->
upsell_clicked -> purchase, window 14 days. Every expected figure is worked out by hand
in the comments of ``JOURNEYS`` (tests/funnel_scenario.py) and the tests.
"""

import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
import sqlalchemy as sa

from dashboard.core import schema as s
from dashboard.core.period import Period
from dashboard.domain.funnel import daily
from dashboard.domain.funnel.interactions import (
    DEFAULT_STEPS,
    CrmInputError,
    FunnelSpec,
    IngestResult,
    record_interaction,
    record_interactions,
    rollup_id,
)
from dashboard.domain.funnel.rollups import refresh
from queries import funnel as q
from tests.factories import journeys_for
from tests.funnel_scenario import EVENTS, NY, UTC, C, M, S, utc

FULL = s.INTERACTION_TYPES  # the other tracked funnel (adds upsell_shown)
H, D = 3600, 86400


def spec(period=NY, steps=DEFAULT_STEPS, window=14) -> FunnelSpec:
    return FunnelSpec(steps, period, window)


def counts(engine, funnel_spec, source="events") -> list[int]:
    with engine.connect() as conn:
        return q.funnel(conn, spec=funnel_spec, source=source).customers.tolist()


# --- the rules, from raw events -----------------------------------------------------------


def test_default_funnel_by_hand(crm_db):
    with crm_db.connect() as conn:
        frame = q.funnel(conn, spec=spec(), source="events")
    # entered: A B C D E I J K; session: A B C D E J; viewed: A B D; clicked: A B; purchase: A
    assert frame.customers.tolist() == [8, 6, 3, 2, 1]
    assert frame.from_first.tolist() == pytest.approx([1, 6 / 8, 3 / 8, 2 / 8, 1 / 8])
    assert frame.from_previous.iloc[1:].tolist() == pytest.approx([6 / 8, 3 / 6, 2 / 3, 1 / 2])
    # intake -> session: J 0, A 1 h, E 1.5 h, B 2 days, C 14 days - 60 s, D 14 days
    assert frame.median_seconds.iloc[1:].tolist() == pytest.approx([(1.5 * H + 2 * D) / 2, 0, (21 * H + 47 * H) / 2, 0])
    assert frame.label.tolist()[0] == "Intake request"


def test_window_boundaries(crm_db):
    # 2 days: B's session lands exactly on the boundary (counted), its summary view 1 h later
    # does not; C's and D's sessions are outside.
    assert counts(crm_db, spec(window=2)) == [8, 4, 1, 1, 1]
    # 13 days: C's session (14 days - 60 s) and D's (14 days) are outside; B's click (+4 days) is in
    assert counts(crm_db, spec(window=13)) == [8, 4, 2, 2, 1]


def test_day_boundaries_follow_the_display_timezone(crm_db):
    # UTC: E enters on 1 March 04:30 (the 10 March entry is after the period) and K is out.
    assert counts(crm_db, spec(period=UTC)) == [7, 6, 3, 2, 1]
    with crm_db.connect() as conn:
        medians = q.funnel(conn, spec=spec(period=UTC), source="events").median_seconds
    # intake -> session: J 0, A 1 h, B 2 days, E 10 days 30 min, C, D
    assert medians.iloc[1] == pytest.approx((2 * D + 10 * D + 1800) / 2)


def test_a_funnel_that_skips_steps(crm_db):
    assert counts(crm_db, spec(steps=("intake", "session", "purchase"))) == [8, 6, 2]  # A and J buy
    assert counts(crm_db, spec(steps=FULL)) == [8, 6, 3, 2, 2, 1]  # A and B saw an upsell after the summary
    # sessions in the period: A, B (8:00), J; an intake at or after: B (9:00), J (the same instant)
    assert counts(crm_db, spec(steps=("session", "intake"))) == [3, 2]


def test_breakdowns_sum_to_the_totals(crm_db):
    with crm_db.connect() as conn:
        totals = q.funnel(conn, spec=spec(), source="events").customers.tolist()
        frames = {
            dimension: q.breakdown(conn, spec=spec(), dimension=dimension, source="events")
            for dimension in q.BREAKDOWNS
        }
    for dimension, frame in frames.items():
        assert frame[list(DEFAULT_STEPS)].sum().tolist() == totals, dimension
    plan = frames["plan"].set_index("group")
    assert plan.loc["standard", list(DEFAULT_STEPS)].tolist() == [5, 3, 1, 1, 0]  # B C E I K
    assert plan.loc["premium", list(DEFAULT_STEPS)].tolist() == [2, 2, 2, 1, 1]  # A D
    assert plan.loc["(unknown)", list(DEFAULT_STEPS)].tolist() == [1, 1, 0, 0, 0]  # J has no profile
    assert plan.loc["premium", "conversion"] == pytest.approx(0.5)
    make = frames["vehicle_make"].set_index("group")["intake"].to_dict()
    assert make == {"(unknown)": 3, "Toyota": 3, "BMW": 1, "Tesla": 1}  # B blank, C and K none; E: Tesla at entry
    specialty = frames["specialty"].set_index("group")["intake"].to_dict()
    assert specialty == {"(no session)": 2, "(unknown)": 2, "brakes": 2, "electrical": 2}
    assert frames["acquisition_channel"].group.tolist()[:3] == ["(unknown)", "paid_search", "social"]


def test_breakdown_top_n_and_window(crm_db):
    with crm_db.connect() as conn:
        top = q.breakdown(conn, spec=spec(), dimension="plan", top_n=1, source="events")
        short = q.breakdown(conn, spec=spec(window=2), dimension="specialty", source="events")
    assert top.group.tolist() == ["standard", "(other)"]
    assert top.set_index("group").loc["(other)", list(DEFAULT_STEPS)].tolist() == [3, 3, 2, 1, 1]
    # with 2 days C's and D's sessions are outside the window: no session
    assert short.set_index("group")["intake"].to_dict() == {
        "(no session)": 4,
        "electrical": 2,
        "brakes": 1,
        "(unknown)": 1,
    }


def test_time_to_convert_histogram(crm_db):
    with crm_db.connect() as conn:
        frame = q.time_to_convert(conn, spec=spec(), from_step=1, to_step=2, source="events")
        short = q.time_to_convert(conn, spec=spec(window=2), from_step=2, to_step=3, source="events")
    # J 0 | A 1 h | E 1.5 h | - | B 2 days | - | C and D (14 days is the upper end of 7-14 days)
    assert frame.customers.tolist() == [1, 1, 1, 0, 1, 0, 2]
    assert frame.bin.tolist()[-1] == "7 – 14 days"
    assert short.customers.sum() == 1 and len(short) == 5  # only A; bins up to "1 - 3 days"


def test_trend_by_local_week_day_and_month(crm_db):
    with crm_db.connect() as conn:
        weeks = q.trend(conn, spec=spec(), grain="week", source="events")
        days = q.trend(conn, spec=spec(), grain="day", source="events")
        months = q.trend(conn, spec=spec(), grain="month", source="events")
        utc_weeks = q.trend(conn, spec=spec(period=UTC), grain="week", source="events", now=utc(2024, 3, 20))
    assert weeks.bucket.tolist() == [dt.date(2024, 2, 26), dt.date(2024, 3, 4)]
    assert weeks.entered.tolist() == [1, 7] and weeks.converted.tolist() == [1, 0]
    assert weeks.complete.all()
    assert len(days) == 10 and days.entered.sum() == 8
    assert days.set_index("bucket").loc[dt.date(2024, 3, 10), "entered"] == 2  # E and K, local evening
    assert pd.isna(days.set_index("bucket").loc[dt.date(2024, 3, 1), "conversion"])
    assert months.entered.tolist() == [8] and months.converted.tolist() == [1]
    assert utc_weeks.entered.tolist() == [2, 5]  # A and E (1 March in UTC)
    # on 20 March the windows of entries after 6 March are still open
    assert utc_weeks.complete.tolist() == [True, False]


def test_drop_off_lists_match_the_counts(crm_db):
    with crm_db.connect() as conn:
        totals = q.funnel(conn, spec=spec(), source="events").customers.tolist()
        lists = {k: q.drop_off(conn, spec=spec(), step=k, source="events") for k in range(1, 5)}
    for k, frame in lists.items():
        assert len(frame) == totals[k - 1] - totals[k]
    assert sorted(lists[1].email) == ["i@example.com", "k@example.com"]
    assert sorted(lists[2].email) == ["c@example.com", "e@example.com", "j@example.com"]
    assert lists[4].email.tolist() == ["b@example.com"]
    row = lists[4].iloc[0]
    assert (row.full_name, row.plan, row.reached_at) == ("Customer B", "standard", pd.Timestamp("2024-03-08 09:00Z"))
    assert lists[2].columns.tolist() == q.DROP_OFF_COLUMNS


# --- the roll-up gives the same numbers ------------------------------------------------------


def everything(engine, funnel_spec, source) -> dict:
    with engine.connect() as conn:
        out = {
            "funnel": q.funnel(conn, spec=funnel_spec, source=source),
            **{
                f"trend_{grain}": q.trend(conn, spec=funnel_spec, grain=grain, source=source, now=utc(2024, 5, 1))
                for grain in q.GRAINS
            },
            "hist": q.time_to_convert(
                conn, spec=funnel_spec, from_step=1, to_step=len(funnel_spec.steps), source=source
            ),
        }
        for dimension in q.BREAKDOWNS:
            out[dimension] = q.breakdown(conn, spec=funnel_spec, dimension=dimension, top_n=2, source=source)
        for k in range(1, len(funnel_spec.steps)):
            out[f"drop{k}"] = q.drop_off(conn, spec=funnel_spec, step=k, source=source)
    return out


def assert_same(engine, specs) -> None:
    for funnel_spec in specs:
        raw, rolled = everything(engine, funnel_spec, "events"), everything(engine, funnel_spec, "rollup")
        for name in raw:
            pd.testing.assert_frame_equal(raw[name], rolled[name], check_exact=False, obj=f"{name} {funnel_spec}")


# 1-4 March in UTC: B enters again on 5 March and E on 11 March, after the period
EARLY = Period(dt.date(2024, 3, 1), dt.date(2024, 3, 4), "UTC")
LONDON = Period(NY.start, NY.end, "Europe/London")  # GMT in early March: the UTC days
SPECS = [
    spec(),
    spec(window=2),
    spec(period=UTC),
    spec(steps=FULL),
    spec(steps=FULL[:3], window=1),
    spec(steps=DEFAULT_STEPS[:2], period=Period(dt.date(2024, 2, 1), dt.date(2024, 3, 31), "Asia/Tokyo")),
    # whole UTC days: read from the daily counts
    spec(period=UTC, window=2),
    spec(period=UTC, steps=FULL),
    spec(period=UTC, steps=FULL[:3], window=1),
    spec(period=EARLY),
    spec(period=LONDON, window=13),
    spec(steps=DEFAULT_STEPS[:2], period=Period(dt.date(2024, 2, 1), dt.date(2024, 3, 31), "UTC")),
]


def test_rollup_gives_the_same_numbers_as_raw_events(crm_db):
    results = refresh(crm_db)
    assert [r.rebuilt for r in results] == [True, True]
    # one row per distinct intake time: A B B C D E E F I J K M
    assert [r.rows for r in results] == [12, 12]
    assert_same(crm_db, SPECS)
    with crm_db.connect() as conn:
        assert q.rollup_status(conn, steps=DEFAULT_STEPS[:3]).pending_events.tolist() == [0]
        assert q.rollup_status(conn, steps=("intake", "purchase")).empty
        with pytest.raises(CrmInputError, match="No roll-up serves"):
            q.funnel(conn, spec=spec(steps=("intake", "purchase")), source="rollup")


def test_refresh_reads_only_new_events(crm_db):
    refresh(crm_db)
    new = {
        "I": [("session", utc(2024, 3, 10), "B1")],  # I converts to a session
        "B": [("purchase", utc(2024, 3, 9), "B1")],  # B buys: now 2 purchases
        "A": [("intake", utc(2024, 3, 1, 12))],  # arrives late, earlier than A's entry
        "G": [("intake", utc(2024, 3, 2))],  # G enters
    }
    with crm_db.begin() as conn:
        journeys_for(conn, new, customers=C, sessions=S, historic=False)
        before = conn.execute(
            sa.select(s.crm_funnel_progress).where(s.crm_funnel_progress.c.customer_id == C["C"])
        ).all()
    with crm_db.connect() as conn:
        assert q.rollup_status(conn, steps=DEFAULT_STEPS).pending_events.tolist() == [4]
    results = refresh(crm_db)
    assert [(r.rebuilt, r.new_events, r.customers) for r in results] == [(False, 4, 4)] * 2
    with crm_db.connect() as conn:
        assert (
            conn.execute(sa.select(s.crm_funnel_progress).where(s.crm_funnel_progress.c.customer_id == C["C"])).all()
            == before
        )
    assert counts(crm_db, spec(), "rollup") == [9, 7, 3, 2, 2]
    assert_same(crm_db, SPECS)
    assert [r.rows for r in refresh(crm_db, rebuild=True)] == [14, 14]
    assert counts(crm_db, spec(), "rollup") == [9, 7, 3, 2, 2]


def test_an_emptied_rollup_is_not_used_and_rebuilt(crm_db):
    refresh(crm_db)
    with crm_db.begin() as conn:  # what reloading the demo data does
        conn.execute(sa.delete(s.crm_funnel_progress))
    with crm_db.connect() as conn:
        assert q.rollup_status(conn, steps=DEFAULT_STEPS).empty
        with pytest.raises(CrmInputError, match="No roll-up serves"):
            q.funnel(conn, spec=spec(), source="rollup")
    assert counts(crm_db, spec(), "auto") == [8, 6, 3, 2, 1]  # from raw events
    assert [(r.rebuilt, r.rows) for r in refresh(crm_db)] == [(True, 12), (True, 12)]
    assert counts(crm_db, spec(), "rollup") == [8, 6, 3, 2, 1]


# --- the daily counts ----------------------------------------------------------------------
# Progress rows of the default funnel (UTC times), one per distinct intake:
# A 03-02 12:00 (session +1 h, summary +1 h, click 03-03 10:00, purchase 03-03 10:00)
# B 03-04 09:00 (session 03-06 09:00, summary 03-06 10:00, click 03-08 09:00)
# B 03-05 09:00, previous 03-04 09:00 (the same steps)      C 03-06 00:00 (session 03-19 23:59, ...)
# D 03-07 00:00 (session and summary 03-21 00:00)           E 03-01 04:30 (session 03-11 05:00)
# E 03-11 03:30, previous 03-01 04:30 (session 03-11 05:00)  F 02-20   I 03-09 12:00
# J 03-08 15:00 (session 03-08 15:00)                        K 03-11 02:00   M 03-11 04:00


def _daily_rows(engine, table, day: dt.date) -> set[tuple]:
    columns = [c for c in table.primary_key.columns if c.name not in ("funnel_id", "day")]
    with engine.connect() as conn:
        funnel_id = rollup_id(conn, DEFAULT_STEPS)
        rows = conn.execute(
            sa.select(*columns, table.c.entries).where(table.c.funnel_id == funnel_id, table.c.day == day)
        )
        return {tuple(row) for row in rows}


def test_the_daily_counts_hold_each_entry_by_day(crm_db):
    refresh(crm_db)
    # B's second entry: session +1 day, summary +25 h (2 days), click +3 days exactly
    assert _daily_rows(crm_db, s.crm_funnel_daily_steps, dt.date(2024, 3, 5)) == {
        (1, 0, 1),
        (2, 1, 1),
        (3, 2, 1),
        (4, 3, 1),
    }
    # E's second entry follows one on 1 March; K and M enter that day for the first time
    assert _daily_rows(crm_db, s.crm_funnel_daily_repeats, dt.date(2024, 3, 11)) == {
        (dt.date(2024, 3, 1), 1, 0, 1),
        (dt.date(2024, 3, 1), 2, 1, 1),  # session 1.5 h later
    }
    # signed: each entry +1 on its day, -1 on the day of the one before. On 4 March B's first
    # entry counts +1 at steps 1-4 and B's second -1 at steps 1-4: its step 1 (0 days, bin 0) is
    # taken back; its later steps took a day less, so they stay, +1 and -1 apart.
    march_4 = _daily_rows(crm_db, s.crm_funnel_daily_gaps, dt.date(2024, 3, 4))
    assert sorted(entries for *_, entries in march_4) == [-1, -1, -1, 1, 1, 1]
    assert not [key for *key, _ in march_4 if key[:2] == [1, 0]]
    # E's second entry takes back E's first on 1 March; K, M and E's second enter on 11 March
    assert not [key for *key, _ in _daily_rows(crm_db, s.crm_funnel_daily_gaps, dt.date(2024, 3, 1)) if key[0] == 1]
    assert (1, 0, 0, 3) in _daily_rows(crm_db, s.crm_funnel_daily_gaps, dt.date(2024, 3, 11))
    assert (1, 0, 0, 1) in _daily_rows(crm_db, s.crm_funnel_daily_gaps, dt.date(2024, 3, 5))


def test_whole_utc_days_are_counted_from_the_daily_counts(crm_db):
    refresh(crm_db)
    with crm_db.connect() as conn:
        funnel_id = rollup_id(conn, DEFAULT_STEPS)
        assert daily.serving_days(conn, spec(period=UTC), funnel_id) is not None
        assert daily.serving_days(conn, spec(period=LONDON), funnel_id) is not None
        # New York's midnights are 05:00 UTC: its whole UTC days 2-10 March, and its edges from the rows
        assert daily.serving_days(conn, spec(), funnel_id) is not None
        one_day = Period(dt.date(2024, 3, 5), dt.date(2024, 3, 5), "America/New_York")
        assert daily.serving_days(conn, spec(period=one_day), funnel_id) is None  # no whole UTC day
        frame = q.funnel(conn, spec=spec(period=UTC), source="rollup")
        early = q.funnel(conn, spec=spec(period=EARLY), source="rollup")
        plans = q.breakdown(conn, spec=spec(period=EARLY), dimension="plan", source="rollup").set_index("group")
        hist = q.time_to_convert(conn, spec=spec(period=EARLY), from_step=1, to_step=4, source="rollup")
    assert frame.customers.tolist() == [7, 6, 3, 2, 1]  # A B C D E I J
    # intake -> session: J 0, A 1 h, B 2 days, E 10 days 30 min, C 14 days - 60 s, D 14 days;
    # session -> summary: A 0, B 1 h, D 0; -> click: A 21 h, B 47 h; -> purchase: A 0
    assert frame.median_seconds.iloc[1:].tolist() == pytest.approx([(12 * D + 1800) / 2, 0, 34 * H, 0])
    # 1-4 March: A, B (first entry), E (first entry). B's and E's next entries come after the
    # period, so nothing of theirs is taken back.
    assert early.customers.tolist() == [3, 3, 2, 2, 1]
    assert early.median_seconds.iloc[1:].tolist() == pytest.approx([2 * D, 0.5 * H, 34 * H, 0])
    assert plans.loc["standard", list(DEFAULT_STEPS)].tolist() == [2, 2, 1, 1, 0]  # B E
    assert plans.loc["premium", list(DEFAULT_STEPS)].tolist() == [1, 1, 1, 1, 1]  # A
    assert hist.customers.tolist() == [0, 0, 0, 1, 0, 1, 0]  # A 22 h, B 4 days


def test_a_period_between_utc_midnights_counts_its_edges_from_the_rows(crm_db):
    # New York's 1-10 March: entries from 03-01 05:00 to 03-11 04:00 UTC; its whole UTC days are 2-10
    # March, its edges 03-01 05:00-24:00 and 03-11 00:00-04:00.
    edges = {
        "N": [("intake", utc(2024, 3, 1, 10)), ("session", utc(2024, 3, 1, 11), "N1"), ("intake", utc(2024, 3, 3, 9))],
        "P": [("intake", utc(2024, 3, 1, 3)), ("intake", utc(2024, 3, 1, 6))],  # the first is before the period
        "Q": [("intake", utc(2024, 3, 11, 3, 59))],
    }
    with crm_db.begin() as conn:
        journeys_for(conn, edges, customers=C, sessions=S)
    refresh(crm_db)
    with crm_db.connect() as conn:
        assert daily.serving_days(conn, spec(), rollup_id(conn, DEFAULT_STEPS)) is not None
    # the scenario's 8, 6, 3, 2, 1; and N (first edge: its entry 03-03 follows that one, so it is not
    # counted again), P (its 06:00 entry: the one before is before the period) and Q (last edge)
    assert counts(crm_db, spec(), "events") == [11, 7, 3, 2, 1]
    assert counts(crm_db, spec(), "rollup") == [11, 7, 3, 2, 1]
    tokyo = Period(dt.date(2024, 3, 1), dt.date(2024, 3, 10), "Asia/Tokyo")  # from 02-29 15:00 UTC
    assert_same(crm_db, [spec(), spec(window=2), spec(steps=FULL), spec(period=tokyo)])


def test_the_refresh_follows_profile_and_mechanic_changes(crm_db):
    refresh(crm_db)
    with crm_db.begin() as conn:
        conn.execute(s.profiles.update().where(s.profiles.c.id == C["B"]).values(plan="premium"))
        conn.execute(s.mechanics.update().where(s.mechanics.c.user_id == M["brakes"]).values(specialties=["engine"]))

    def groups(dimension: str, source: str) -> dict:
        with crm_db.connect() as conn:
            frame = q.breakdown(conn, spec=spec(period=UTC), dimension=dimension, source=source)
        return frame.set_index("group")[list(DEFAULT_STEPS)].T.to_dict("list")

    # the roll-up holds what it counted until it is refreshed
    assert groups("plan", "rollup")["premium"] == [2, 2, 2, 1, 1]  # A D
    assert groups("specialty", "rollup")["brakes"] == [2, 2, 2, 1, 1]  # A D
    results = refresh(crm_db)
    assert [(r.rebuilt, r.new_events, r.customers) for r in results] == [(False, 0, 3)] * 2  # A B D
    for source in ("rollup", "events"):
        plans = groups("plan", source)
        assert plans["premium"] == [3, 3, 3, 2, 1]  # A B D
        assert plans["standard"] == [3, 2, 0, 0, 0]  # C E I
        assert groups("specialty", source)["engine"] == [2, 2, 2, 1, 1]  # A D
    assert_same(crm_db, SPECS)


def test_a_deleted_customer_leaves_the_counts_at_the_next_refresh(crm_db):
    refresh(crm_db)
    with crm_db.begin() as conn:  # what deleting the customer does (foreign key, PostgreSQL)
        conn.execute(s.crm_funnel_progress.delete().where(s.crm_funnel_progress.c.customer_id == C["A"]))
    assert counts(crm_db, spec(period=UTC), "rollup") == [7, 6, 3, 2, 1]  # counted before the deletion
    refresh(crm_db)
    assert counts(crm_db, spec(period=UTC), "rollup") == [6, 5, 2, 1, 0]
    with crm_db.begin() as conn:
        conn.execute(s.crm_interactions.delete().where(s.crm_interactions.c.customer_id == C["A"]))
    assert_same(crm_db, SPECS)


def test_counts_missing_after_an_upgrade_are_built_by_the_next_refresh(crm_db):
    refresh(crm_db)
    with crm_db.begin() as conn:  # the roll-up before its daily counts existed
        for counts_table in daily.TABLES:
            conn.execute(counts_table.table.delete())
    assert counts(crm_db, spec(period=UTC), "rollup") == [7, 6, 3, 2, 1]  # from the progress rows
    assert [r.rebuilt for r in refresh(crm_db)] == [True, True]
    assert _daily_rows(crm_db, s.crm_funnel_daily_steps, dt.date(2024, 3, 5))
    assert_same(crm_db, SPECS)


def test_the_pandas_peer_agrees(crm_db):
    for funnel_spec in SPECS:
        with crm_db.connect() as conn:
            peer = q.funnel_in_pandas(conn, spec=funnel_spec)
        assert peer.customers.tolist() == counts(crm_db, funnel_spec)


def test_empty_database(engine):
    with engine.connect() as conn:
        frame = q.funnel(conn, spec=spec())
        assert frame.customers.tolist() == [0] * 5 and frame.from_first.isna().all()
        assert q.breakdown(conn, spec=spec(), dimension="plan").empty
        assert q.trend(conn, spec=spec()).entered.sum() == 0
        assert q.drop_off(conn, spec=spec(), step=1).empty
    assert [r.rows for r in refresh(engine)] == [0, 0]
    assert counts(engine, spec(), "rollup") == [0] * 5


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "steps, window, period, message",
    [
        (("intake",), 14, NY, "Choose 2 to 6 steps"),
        (("intake", "intake"), 14, NY, "once"),
        (("intake", "session; DROP TABLE users"), 14, NY, "Unknown funnel step"),
        (DEFAULT_STEPS, 0, NY, "from 1 to 90"),
        (DEFAULT_STEPS, 91, NY, "from 1 to 90"),
        (DEFAULT_STEPS, "14", NY, "whole number"),
        (DEFAULT_STEPS, 14, Period(dt.date(2024, 3, 10), dt.date(2024, 3, 1)), "before the start date"),
        (DEFAULT_STEPS, 14, Period(dt.date(2023, 1, 1), dt.date(2024, 3, 1)), "the longest is 366 days"),
        (DEFAULT_STEPS, 14, Period(dt.date(2024, 3, 1), dt.date(2024, 3, 2), "Mars/Olympus"), "Unknown timezone"),
    ],
)
def test_invalid_funnels_are_refused(steps, window, period, message):
    with pytest.raises(CrmInputError, match=message):
        FunnelSpec(steps, period, window)


def test_invalid_query_options_are_refused(engine):
    with engine.connect() as conn:
        for call, message in [
            (lambda: q.breakdown(conn, spec=spec(), dimension="email"), "Unknown breakdown"),
            (lambda: q.breakdown(conn, spec=spec(), dimension="plan", top_n=0), "Top N"),
            (lambda: q.trend(conn, spec=spec(), grain="year'); --"), "Unknown trend grain"),
            (lambda: q.time_to_convert(conn, spec=spec(), from_step=3, to_step=2), "come before"),
            (lambda: q.time_to_convert(conn, spec=spec(), from_step=1, to_step=6), "from 1 to 5"),
            (lambda: q.drop_off(conn, spec=spec(), step=5), "last step"),
            (lambda: q.funnel(conn, spec=spec(), source="cache"), "Unknown source"),
        ]:
            with pytest.raises(CrmInputError, match=message):
                call()


# --- recording interactions ----------------------------------------------------------------


def test_record_interaction_validates(crm_db):
    with crm_db.begin() as conn:
        new_id = record_interaction(
            conn,
            customer_id=str(C["A"]),
            interaction_type="summary_viewed",
            session_id=S["A"],
            metadata={"source": "ios"},
        )
        row = conn.execute(sa.select(s.crm_interactions).where(s.crm_interactions.c.id == new_id)).mappings().one()
    assert (row["customer_id"], row["session_id"], row["recorded_at"] is not None) == (C["A"], S["A"], True)
    stranger = uuid.uuid4()
    for kwargs, message in [
        ({"interaction_type": "signup"}, "Unknown interaction type"),
        ({"customer_id": stranger}, "Unknown customer"),
        ({"customer_id": "not-an-id"}, "not a valid id"),
        ({"interaction_type": "session", "session_id": None}, "needs the session"),
        ({"session_id": uuid.uuid4()}, "Unknown session"),
        ({"session_id": S["B1"]}, "belongs to another customer"),
        ({"metadata": ["not", "an", "object"]}, "JSON object"),
        ({"metadata": {"blob": "x" * 5000}}, "over 4,096 bytes"),
        ({"metadata": {"note": "nul\x00"}}, "contains a NUL character"),
        ({"metadata": {"score": float("inf")}}, "finite numbers"),
        ({"occurred_at": 1709287200}, "must be a date and time"),
        ({"occurred_at": "yesterday"}, "not an ISO 8601 time"),
        ({"occurred_at": dt.datetime(2024, 3, 1)}, "needs a timezone"),
        ({"occurred_at": dt.datetime.now(dt.UTC) + dt.timedelta(days=1)}, "in the future"),
    ]:
        call = {"customer_id": C["A"], "interaction_type": "upsell_clicked", "session_id": S["A"], **kwargs}
        with pytest.raises(CrmInputError, match=message), crm_db.begin() as conn:
            record_interaction(conn, **call)
    with crm_db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.crm_interactions)).scalar_one() == len(EVENTS) + 1


# --- batches of the platform's events ---------------------------------------------------------


def _event(**changes) -> dict:
    return {
        "event_id": uuid.uuid4(),
        "customer_id": C["A"],
        "interaction_type": "upsell_clicked",
        "occurred_at": "2024-03-05T10:00:00+01:00",
        "session_id": S["A"],
        **changes,
    }


def _count_interactions(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(s.crm_interactions)).scalar_one()


def test_record_interactions_keeps_good_events_and_says_why_others_are_rejected(crm_db):
    good = [
        _event(),
        _event(
            interaction_type="intake",
            session_id=None,
            request_id=uuid.uuid4(),
            metadata={"source": "ios"},
            occurred_at=utc(2024, 3, 6, 8),
        ),
    ]
    bad = [
        (_event(customer_id=uuid.uuid4()), "unknown_customer"),
        (_event(session_id=uuid.uuid4()), "unknown_session"),
        (_event(session_id=S["B1"]), "other_customer"),
        (_event(interaction_type="<script>alert(1)</script>"), "invalid"),
        (_event(occurred_at="yesterday"), "invalid"),
        (_event(occurred_at="2024-03-05T10:00:00"), "invalid"),
        (_event(metadata={"note": "nul\x00byte"}), "invalid"),
        (_event(metadata={"value": float("inf")}), "invalid"),
        (_event(event_id="not-a-uuid"), "invalid"),
        (_event(colour="red"), "invalid"),
        ({"customer_id": C["A"]}, "invalid"),
        ("not an object", "invalid"),
    ]
    batch = [good[0], *[event for event, _ in bad], good[1]]
    result = record_interactions(crm_db, batch)
    assert (result.accepted, result.duplicates) == (2, 0)
    assert [(position, code) for position, code, _ in result.rejected] == [
        (n, code) for n, (_, code) in enumerate(bad, start=1)
    ]
    assert all(message for _, _, message in result.rejected)
    i = s.crm_interactions
    with crm_db.connect() as conn:
        rows = {r.event_id: r for r in conn.execute(sa.select(i).where(i.c.event_id.isnot(None)))}
    assert set(rows) == {good[0]["event_id"], good[1]["event_id"]}
    first, second = rows[good[0]["event_id"]], rows[good[1]["event_id"]]
    assert first.created_at == utc(2024, 3, 5, 9) and first.session_id == S["A"]
    assert second.metadata == {"source": "ios", "request_id": str(good[1]["request_id"])}
    assert _count_interactions(crm_db) == len(EVENTS) + 2


def test_a_replayed_event_is_a_duplicate_and_writes_nothing(crm_db):
    once, twice = _event(), _event()
    assert record_interactions(crm_db, [once, twice, dict(twice)]) == IngestResult(2, 1, [])
    again = record_interactions(crm_db, [{**once, "interaction_type": "purchase"}, twice, _event()])
    assert again == IngestResult(1, 2, [])
    assert _count_interactions(crm_db) == len(EVENTS) + 3
    i = s.crm_interactions
    with crm_db.connect() as conn:
        kind = conn.execute(sa.select(i.c.interaction_type).where(i.c.event_id == once["event_id"])).scalar_one()
    assert kind == "upsell_clicked"  # the replay did not overwrite the first


@pytest.mark.parametrize(
    "batch, message",
    [
        ([_event() for _ in range(1001)], "at most 1,000 events"),
        ({"event_id": "x"}, "as a list"),
        ("events", "as a list"),
    ],
)
def test_a_batch_that_is_too_big_or_not_a_list_is_refused(crm_db, batch, message):
    with pytest.raises(CrmInputError, match=message):
        record_interactions(crm_db, batch)
    assert _count_interactions(crm_db) == len(EVENTS)


def test_two_senders_of_the_same_batch_record_it_once(crm_db):
    batch = [_event() for _ in range(50)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: record_interactions(crm_db, batch), range(2)))
    assert sum(r.accepted for r in results) == 50 and sum(r.duplicates for r in results) == 50
    assert _count_interactions(crm_db) == len(EVENTS) + 50
