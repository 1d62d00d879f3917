"""Overview queries on a hand-built fixture, on both backends.

The period is 1-10 March 2024 in America/New_York (10 days; DST starts on
10 March), so it runs from 2024-03-01 05:00 UTC to 2024-03-11 04:00 UTC and
the previous period from 2024-02-20 05:00 UTC to 2024-03-01 05:00 UTC.
Every expected value below is counted by hand from the rows.
"""

import datetime as dt
import math
import re
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from dashboard.core import schema as s
from dashboard.core.period import Period
from dashboard.domain import overview as rollups
from dashboard.domain.funnel.interactions import STEP_LABELS
from dashboard.ui import components as ui
from queries import emails, upsells
from queries.calendars import hour_grid
from queries.overview import kpis, sessions_completed_per_day, uncertain_emails, week_capacity
from tests.factories import add_follow_up, add_mechanic, add_review, add_session, add_user, journeys_for

PERIOD = Period(dt.date(2024, 3, 1), dt.date(2024, 3, 10), "America/New_York")


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def ids(*names):
    return {name: uuid.uuid4() for name in names}


U = ids("c1", "c2", "mech")
S = ids("s1", "s2", "s3", "s4", "s5", "s6", "s7")


@pytest.fixture
def overview_db(engine):
    with engine.begin() as conn:
        conn.execute(s.users.insert(), [{"id": U[n], "email": f"{n}@example.com"} for n in U])
        conn.execute(s.mechanics.insert().values(user_id=U["mech"], display_name="Mo"))
        session = {"customer_id": U["c1"], "mechanic_id": U["mech"], "status": "completed", "ended_at": None}
        conn.execute(
            s.sessions.insert(),
            [
                {**session, "id": S["s1"], "ended_at": utc(2024, 3, 2, 13)},  # 2 Mar
                {**session, "id": S["s2"], "status": "cancelled"},
                # 10 Mar 23:30 EDT (11 March in UTC): the last local day of the period
                {**session, "id": S["s3"], "ended_at": utc(2024, 3, 11, 3, 30)},
                # 29 Feb 23:30 EST (1 March in UTC): the previous period
                {**session, "id": S["s4"], "ended_at": utc(2024, 3, 1, 4, 30)},
                # 11 Mar 00:00 EDT: just outside the period
                {**session, "id": S["s5"], "ended_at": utc(2024, 3, 11, 4)},
                {**session, "id": S["s6"], "ended_at": utc(2024, 3, 2, 23, 30)},  # 2 Mar
                {**session, "id": S["s7"], "status": "accepted"},
            ],
        )
        review = {"mechanic_id": U["mech"], "customer_id": U["c1"], "status": "published", "hidden_reason": None}
        conn.execute(
            s.mechanic_reviews.insert(),
            [
                {**review, "session_id": S["s1"], "rating": 5, "created_at": utc(2024, 3, 3)},
                {**review, "session_id": S["s3"], "rating": 2, "created_at": utc(2024, 3, 10, 12)},
                {
                    **review,
                    "session_id": S["s6"],
                    "rating": 1,
                    "created_at": utc(2024, 3, 4),
                    "status": "hidden",
                    "hidden_reason": "off_topic",
                },
                {**review, "session_id": S["s4"], "rating": 4, "created_at": utc(2024, 2, 28)},
                {**review, "session_id": S["s5"], "rating": 3, "created_at": utc(2024, 3, 5), "status": "pending"},
            ],
        )
        email = {"recipient": "c1@example.com", "status": "failed"}
        conn.execute(
            s.email_outbox.insert(),
            [
                {**email, "session_id": S["s1"], "milestone": "booking_confirmed", "created_at": utc(2024, 3, 2)},
                {
                    **email,
                    "session_id": S["s1"],
                    "milestone": "session_ended",
                    "created_at": utc(2024, 3, 2),
                    "status": "sent",
                },
                {**email, "session_id": S["s3"], "milestone": "booking_confirmed", "created_at": utc(2024, 3, 10)},
                # 29 Feb 23:00 EST: the previous period
                {**email, "session_id": S["s4"], "milestone": "booking_confirmed", "created_at": utc(2024, 3, 1, 4)},
            ],
        )
    return engine


def test_period_bounds_follow_the_display_timezone():
    assert PERIOD.bounds() == (utc(2024, 3, 1, 5), utc(2024, 3, 11, 4))
    assert PERIOD.previous() == Period(dt.date(2024, 2, 20), dt.date(2024, 2, 29), "America/New_York")
    assert PERIOD.previous().bounds() == (utc(2024, 2, 20, 5), utc(2024, 3, 1, 5))


def test_kpis_of_the_period_and_the_previous_one(overview_db):
    with overview_db.connect() as conn:
        frame = kpis(conn, period=PERIOD)
    assert list(frame.index) == ["current", "previous"]
    # what the page's headline shows; its tiles read their own pages' queries
    assert list(frame.columns) == ["sessions_completed", "reviews_published", "avg_rating"]
    current, previous = frame.loc["current"], frame.loc["previous"]
    assert current.sessions_completed == 3  # s1, s3, s6
    assert previous.sessions_completed == 1  # s4
    assert (current.reviews_published, current.avg_rating) == (2, pytest.approx(3.5))  # 5 and 2
    assert (previous.reviews_published, previous.avg_rating) == (1, pytest.approx(4.0))


def test_kpis_of_an_empty_period_are_zero_or_missing(overview_db):
    with overview_db.connect() as conn:
        frame = kpis(conn, period=Period(dt.date(2020, 1, 1), dt.date(2020, 1, 7), "UTC"))
    current = frame.loc["current"]
    assert (current.sessions_completed, current.reviews_published) == (0, 0)
    assert math.isnan(current.avg_rating)


def test_sessions_per_day_in_the_display_timezone(overview_db):
    with overview_db.connect() as conn:
        local = sessions_completed_per_day(conn, period=PERIOD)
        in_utc = sessions_completed_per_day(conn, period=Period(PERIOD.start, PERIOD.end, "UTC"))
    assert list(local.day) == [dt.date(2024, 3, d) for d in range(1, 11)]
    assert dict(zip(local.day, local.sessions)) == {
        **{dt.date(2024, 3, d): 0 for d in range(1, 11)},
        dt.date(2024, 3, 2): 2,  # s1, s6
        dt.date(2024, 3, 10): 1,  # s3 at 23:30 EDT
    }
    # In UTC, s4 falls on 1 March and s3 on 11 March (outside the period).
    assert dict(zip(in_utc.day, in_utc.sessions)) == {
        **{dt.date(2024, 3, d): 0 for d in range(1, 11)},
        dt.date(2024, 3, 1): 1,
        dt.date(2024, 3, 2): 2,
    }


def test_uncertain_emails_are_counted_of_any_date(overview_db):
    with overview_db.begin() as conn:
        conn.execute(
            s.email_outbox.insert(),
            [
                {
                    "session_id": S[sid],
                    "milestone": "session_ended",
                    "recipient": "c1@example.com",
                    "status": "uncertain",
                    "created_at": at,
                }
                for sid, at in (("s6", utc(2020, 1, 1)), ("s3", utc(2024, 3, 5)))
            ],
        )
    with overview_db.connect() as conn:
        assert uncertain_emails(conn).loc[0, "uncertain"] == 2  # one long before any period; failed ones not


MONDAY = dt.date(2024, 3, 4)


@pytest.fixture
def week_db(engine):
    """One mechanic in UTC open Monday 09:00-12:00 at the base price and Tuesday 17:00-19:00 at
    x1.50 (peak), with a session booked Monday 10:00 and Tuesday 17:00 (30 minutes each), one
    cancelled Tuesday 18:00 (it frees its time), and an inactive mechanic open all Monday."""
    with engine.begin() as conn:
        mechanic = add_mechanic(conn, "Mo", timezone="UTC")
        away = add_mechanic(conn, "Away", timezone="UTC", is_active=False)
        conn.execute(
            s.mechanic_availability_slots.insert(),
            [
                {
                    "mechanic_id": who,
                    "day_of_week": day,
                    "start_time": dt.time(start),
                    "end_time": dt.time(end),
                    "price_multiplier": Decimal(multiplier),
                }
                for who, day, start, end, multiplier in (
                    (mechanic, 1, 9, 12, "1.00"),
                    (mechanic, 2, 17, 19, "1.50"),
                    (away, 1, 0, 23, "1.50"),
                )
            ],
        )
        customer = add_user(conn)
        for at, status in ((utc(2024, 3, 4, 10), "accepted"), (utc(2024, 3, 5, 17), "accepted")):
            add_session(conn, customer, mechanic, status, scheduled_at=at)
        add_session(conn, customer, mechanic, "cancelled", scheduled_at=utc(2024, 3, 5, 18))
    return engine


def test_week_capacity_is_the_hour_grids_and_the_peak_hours_still_open(week_db):
    def capacity(now):
        with week_db.connect() as conn:
            return week_capacity(conn, week_start=MONDAY, tz="UTC", session_minutes=30, now=now).iloc[0]

    monday_noon = capacity(utc(2024, 3, 4, 12))
    assert (monday_noon.available_hours, monday_noon.booked_hours) == (5.0, 1.0)  # 3 h + 2 h open; 2 x 30 min
    assert monday_noon.utilisation == pytest.approx(0.2)
    assert monday_noon.unfilled_peak_hours == 1.5  # Tuesday 17:00 (30 min left) and 18:00 (cancelled: free)
    assert capacity(utc(2024, 3, 5, 18, 30)).unfilled_peak_hours == 1.0  # from the current hour on
    assert capacity(utc(2024, 3, 6, 9)).unfilled_peak_hours == 0.0  # the peak hours are past
    with week_db.connect() as conn:
        grid = hour_grid(conn, mechanic_ids=None, week_start=MONDAY, tz="UTC", session_minutes=30)
    assert monday_noon.utilisation == grid.booked_minutes.sum() / grid.available_minutes.sum()


def test_week_capacity_without_availability_is_empty_not_an_error(engine):
    with engine.connect() as conn:
        row = week_capacity(conn, week_start=MONDAY, tz="UTC", session_minutes=30, now=utc(2024, 3, 4)).iloc[0]
    assert (row.available_hours, row.booked_hours, row.unfilled_peak_hours) == (0, 0, 0)
    assert math.isnan(row.utilisation)


# --- the role homes: each tile's figure is its page's ------------------------------------------

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
HOME_PERIOD = {"from": "2024-03-01", "to": "2024-03-10", "tz": "UTC"}
STAFF = {"admin": "ada@pitwall.test", "support": "sam@pitwall.test", "manager": "max@pitwall.test"}
NOW = dt.datetime.now(dt.UTC)


def home_rows(engine) -> None:
    """What every home counts, written relative to now (queues, this week) or in HOME_PERIOD:
    3 reviews waiting (the oldest 2 days); quick questions (target 4 h) past their target
    (asked 5 h ago), due soon (3 h 30 ago) and on track (10 min ago); 2 failed emails and 1
    uncertain; a mechanic open every day 09:00-12:00 and 17:00-19:00 at x1.50 with one session
    booked today; 2 of 3 customers with an intake in the period had a session; one upsell was
    bought in the period, for $25.00 (shown on 25 February; the $49.00 one shown in the period
    was bought after it)."""
    with engine.begin() as conn:
        conn.execute(s.staff_roles.insert(), [{"email": email, "role": role} for role, email in STAFF.items()])
        mechanic = add_mechanic(conn, "Mo", timezone="UTC")
        customer = add_user(conn, "Cleo")
        for age in (dt.timedelta(days=2, minutes=30), dt.timedelta(hours=1), dt.timedelta(minutes=5)):
            add_review(conn, mechanic, 4, "pending", customer_id=customer, created_at=NOW - age)
        add_review(conn, mechanic, 5, "published", customer_id=customer, created_at=NOW - dt.timedelta(days=3))
        parent = add_session(conn, customer, mechanic, ended_at=NOW - dt.timedelta(days=1))
        for age in (dt.timedelta(hours=5), dt.timedelta(hours=3, minutes=30), dt.timedelta(minutes=10)):
            add_follow_up(conn, customer, parent, created_at=NOW - age)
        conn.execute(
            s.mechanic_availability_slots.insert(),
            [
                {
                    "mechanic_id": mechanic,
                    "day_of_week": day,
                    "start_time": dt.time(start),
                    "end_time": dt.time(end),
                    "price_multiplier": Decimal(multiplier),
                }
                for day in range(7)
                for start, end, multiplier in ((9, 12, "1.00"), (17, 19, "1.50"))
            ],
        )
        today_nine = dt.datetime.combine(NOW.date(), dt.time(9), dt.UTC)
        booked = add_session(conn, customer, mechanic, "accepted", scheduled_at=today_nine)
        email = {"recipient": "cleo@example.com", "created_at": NOW - dt.timedelta(days=40), "failure_cause": None}
        failed = {"status": "failed", "failure_cause": "other"}  # no error recorded: a cause the console cannot tell
        conn.execute(
            s.email_outbox.insert(),
            [
                {**email, "session_id": parent, "milestone": "booking_confirmed", **failed},
                {**email, "session_id": parent, "milestone": "session_ended", **failed},
                {**email, "session_id": booked, "milestone": "booking_confirmed", "status": "uncertain"},
                {**email, "session_id": booked, "milestone": "session_ended", "status": "sent"},
            ],
        )
        journeys_for(
            conn,
            {
                "ann": [("intake", "2024-03-02 10:00"), ("session", "2024-03-03 10:00", "ann-1")],
                "bob": [("intake", "2024-03-04 10:00")],
                "cat": [("intake", "2024-03-05 10:00"), ("session", "2024-03-06 10:00", "cat-1")],
            },
        )
        offer = {"customer_id": customer, "recommendation_type": "maintenance_plan", "service_title": "Plan"}
        conn.execute(
            s.upsell_recommendations.insert(),
            [
                {**offer, "price_cents": 4900, "shown_at": utc(2024, 3, 2), "purchased_at": utc(2024, 3, 12)},
                {**offer, "price_cents": 9900, "shown_at": utc(2024, 3, 3), "purchased_at": None},
                {**offer, "price_cents": 1900, "shown_at": utc(2024, 3, 9), "purchased_at": None},
                {**offer, "price_cents": 2500, "shown_at": utc(2024, 2, 25), "purchased_at": utc(2024, 3, 4)},
            ],
        )


@pytest.fixture
def homes(monkeypatch, pg_engine, oidc_secrets):
    """``homes(role)``: the app signed in as that role's staff member, on the Overview of HOME_PERIOD."""
    for name in ("DATABASE_READ_URL", "PITWALL_DUCKDB_PATH", "PITWALL_ALLOW_ANONYMOUS", "PITWALL_DEMO_ROLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", pg_engine.url.render_as_string(hide_password=False))
    home_rows(pg_engine)
    ui.clear_query_cache()  # results cached by an earlier test on this database (emptied since) are stale

    def open_home(role: str) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=90)
        at.query_params.update(HOME_PERIOD)
        at.user = {"is_logged_in": True, "email": STAFF[role], "email_verified": True}
        at.run()
        assert not at.exception, at.exception
        assert [title.value for title in at.title] == ["Overview"]
        return at

    return open_home


def tile(at: AppTest, label: str) -> str:
    return next(metric.value for metric in at.metric if metric.label == label)


def follow(at: AppTest, link_label: str, page: str, query: str) -> AppTest:
    """Check the tile's link (page and filter), then open that page with the link's filter."""
    link = next(link for link in at.page_link if link.value == link_label)
    assert (link.proto.page, link.proto.query_string) == (page, query)
    for pair in filter(None, query.split("&")):
        key, value = pair.split("=")
        at.query_params[key] = value
    at.switch_page(f"../pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def page_text(at: AppTest) -> str:
    return "\n".join(str(element.value) for element in (*at.caption, *at.markdown)).replace("\\", "")


def test_the_support_home_shows_the_queues_figures_and_opens_them_filtered(homes):
    at = homes("support")
    assert [metric.label for metric in at.metric][:3] == [
        "Reviews waiting",
        "Follow-ups past their target",
        "Follow-ups due within 2 h",
    ]
    assert tile(at, "Reviews waiting") == "3"
    assert "The oldest has waited 2d 0h" in page_text(at)
    assert (tile(at, "Follow-ups past their target"), tile(at, "Follow-ups due within 2 h")) == ("1", "1")
    assert "Now" in page_text(at)  # the queues are snapshots, whatever the period
    reviews_page = follow(at, "Open the queue", "reviews", "status=pending")
    assert re.search(r"\b1–3 of 3\b", page_text(reviews_page)), page_text(reviews_page)
    followups_page = follow(homes("support"), "Open late ones", "followups", "due=overdue")
    assert tile(followups_page, "Past their target") == "1"
    soon_page = follow(homes("support"), "Open due soon", "followups", "due=soon")
    assert re.search(r"\b1 follow-up\b", page_text(soon_page)), page_text(soon_page)


def test_the_manager_home_shows_the_weeks_utilisation_of_the_calendars_page(homes):
    at = homes("manager")
    assert [metric.label for metric in at.metric][:2] == ["Utilisation", "Unfilled peak hours"]
    # 7 days x 5 h open = 35 h; one 30-minute session booked: 0.5 / 35 = 1.4%
    assert tile(at, "Utilisation") == ui.fmt_percent(0.5 / 35)
    assert "0.5 of 35.0 available hours are booked" in page_text(at)
    assert "This week (from" in page_text(at)
    calendars_page = follow(at, "Open heatmaps", "calendars", "view=heatmaps")
    assert calendars_page.segmented_control(key="calendar_view").value == "Heatmaps"  # the link opened that view
    assert tile(calendars_page, "Utilisation") == ui.fmt_percent(0.5 / 35)
    peak = follow(homes("manager"), "Review peak pricing", "calendars", "view=peak")
    assert peak.segmented_control(key="calendar_view").value == "Peak pricing"


def test_the_admin_home_shows_the_funnel_revenue_and_email_health_of_their_pages(homes):
    at = homes("admin")
    labels = [metric.label for metric in at.metric]
    assert labels[:4] == ["Intake → session", "Upsell revenue", "Emails failed", "Emails uncertain"]
    assert tile(at, "Intake → session") == "66.7%"  # ann and cat of ann, bob, cat
    assert tile(at, "Upsell revenue") == "$25.00"  # bought in the period (shown before it)
    assert (tile(at, "Emails failed"), tile(at, "Emails uncertain")) == ("2", "1")  # of any date
    assert "In 01 Mar 2024 – 10 Mar 2024" in page_text(at)
    funnel_page = follow(at, "Open the funnel", "funnel", "")
    steps = funnel_page.dataframe[0].value.set_index("label")
    assert steps.loc[STEP_LABELS["session"], "first"] == "66.7%"
    upsells_page = follow(homes("admin"), "Open upsells", "upsells", "")
    assert tile(upsells_page, "Revenue") == "$25.00"
    emails_page = follow(homes("admin"), "Open failed", "emails", "status=failed")
    assert "2 failed emails of any date" in page_text(emails_page)
    follow(homes("admin"), "Open uncertain", "emails", "status=uncertain")


# --- the roll-ups (15-minute buckets of UTC) equal the raw rows, in zones of every offset kind ---
#
# Period 10-11 March 2026 in UTC, Asia/Kolkata (+5:30) and Asia/Kathmandu (+5:45):
#   UTC       [03-10 00:00Z, 03-12 00:00Z)
#   Kolkata   [03-09 18:30Z, 03-11 18:30Z)
#   Kathmandu [03-09 18:15Z, 03-11 18:15Z)
# Rows (UTC):                                       UTC  Kolkata  Kathmandu
#   completed sessions ended a 03-10 00:05          in   in       in
#                            b 03-10 18:40          in   in       in
#                            c 03-11 23:50          in   out      out
#                            d 03-09 18:20          out  out      in
#                         conv 03-10 09:30          in   in       in      -> 4 / 3 / 4
#   a cancelled session ended 03-10 12:00: never counted
#   published reviews 5 at 03-10 10:00, 2 at 03-11 18:29; a pending 4 at 03-10 11:00
#                                                   2 (avg 3.5)  2 (3.5)  1 (5.0)
#   upsells bought 1500 at 03-10 00:00, 2500 at 03-12 00:00, 700 at 03-09 18:20
#                                                   1500  1500  2200
#   emails failed 03-10 05:00, sent 03-10 05:10 and 03-11 20:00 (Kolkata, Kathmandu: 12 March)
#                                                   per day: failed 1 and sent 1 on 10 March; UTC: sent 1 on 11 March

ROLLUP_DAYS = (dt.date(2026, 3, 10), dt.date(2026, 3, 11))
EXPECTED = {  # zone: sessions, reviews, average rating, revenue
    "UTC": (4, 2, 3.5, 1500),
    "Asia/Kolkata": (3, 2, 3.5, 1500),
    "Asia/Kathmandu": (4, 1, 5.0, 2200),
}
SESSIONS_PER_DAY = {"UTC": (3, 1), "Asia/Kolkata": (2, 1), "Asia/Kathmandu": (3, 1)}


@pytest.fixture
def rollup_db(engine):
    with engine.begin() as conn:
        customer, mechanic = add_user(conn), add_mechanic(conn, "Mo")
        for ended in (
            utc(2026, 3, 10, 0, 5),
            utc(2026, 3, 10, 18, 40),
            utc(2026, 3, 11, 23, 50),
            utc(2026, 3, 9, 18, 20),
        ):
            add_session(conn, customer, mechanic, ended_at=ended)
        add_session(conn, customer, mechanic, "cancelled", ended_at=utc(2026, 3, 10, 12))
        conv = add_session(conn, customer, mechanic, ended_at=utc(2026, 3, 10, 9, 30))
        add_review(conn, mechanic, 5, created_at=utc(2026, 3, 10, 10))
        add_review(conn, mechanic, 2, created_at=utc(2026, 3, 11, 18, 29))
        pending = add_review(conn, mechanic, 4, "pending", created_at=utc(2026, 3, 10, 11))
        for cents, bought in ((1500, utc(2026, 3, 10)), (2500, utc(2026, 3, 12)), (700, utc(2026, 3, 9, 18, 20))):
            conn.execute(
                s.upsell_recommendations.insert().values(
                    customer_id=customer,
                    session_id=conv,
                    recommendation_type="follow_up",
                    service_title="Follow-up check",
                    price_cents=cents,
                    shown_at=bought - dt.timedelta(days=20),
                    purchased_at=bought,
                )
            )
        conn.execute(
            s.email_outbox.insert(),
            [
                {"session_id": conv, "milestone": m, "recipient": "c@example.com", "status": st, "created_at": at}
                for m, st, at in (
                    ("booking_confirmed", "failed", utc(2026, 3, 10, 5)),
                    ("session_ended", "sent", utc(2026, 3, 10, 5, 10)),
                    ("summary_delivered", "sent", utc(2026, 3, 11, 20)),
                )
            ],
        )
    return engine, pending


def _figures(engine, tz: str) -> tuple:
    period = Period(*ROLLUP_DAYS, tz)
    with engine.connect() as conn:
        now = kpis(conn, period=period).loc["current"]
        per_day = sessions_completed_per_day(conn, period=period)
        mail = emails.status_counts_per_day(conn, period=period)
        revenue = upsells.revenue(conn, period=period).loc["current", "revenue_cents"]
        by_mechanic = upsells.by_mechanic(conn, period=Period(dt.date(2026, 2, 1), dt.date(2026, 2, 28), tz))
    # the three were shown 20 days before they were bought: 17, 18 and 20 February, in every zone
    assert by_mechanic[["display_name", "shown", "clicked", "purchased", "revenue_cents"]].values.tolist() == [
        ["Mo", 3, 0, 3, 4700]
    ]
    figures = (int(now.sessions_completed), int(now.reviews_published), float(now.avg_rating), int(revenue))
    return figures, tuple(per_day.sessions), sorted(zip(mail.status, mail.emails))


@pytest.mark.parametrize("tz", list(EXPECTED))
def test_the_roll_ups_give_the_raw_figures_in_every_kind_of_zone(rollup_db, tz):
    engine, _ = rollup_db
    mail = [("failed", 1), ("sent", 1)] + ([("sent", 1)] if tz == "UTC" else [])
    expected = (EXPECTED[tz], SESSIONS_PER_DAY[tz], mail)
    assert _figures(engine, tz) == expected  # from the raw rows: the roll-ups are not built yet
    result = rollups.refresh(engine, rebuild=True)
    assert result.buckets > 0
    with engine.connect() as conn:
        assert rollups.rollup_ready(conn) == (engine.dialect.name == "postgresql")
        assert conn.execute(sa.select(sa.func.count()).select_from(s.rollup_dirty)).scalar_one() == 0
    assert _figures(engine, tz) == expected  # PostgreSQL: from the roll-up


def test_a_change_shows_at_once_and_the_refresh_folds_it_in(rollup_db):
    engine, pending = rollup_db
    rollups.refresh(engine, rebuild=True)
    with engine.begin() as conn:  # as the platform or a console would: no Pitwall code involved
        conn.execute(s.mechanic_reviews.update().where(s.mechanic_reviews.c.id == pending).values(status="published"))
    expected = (4, 3, pytest.approx(11 / 3), 1500)  # ratings 5, 2 and 4
    assert _figures(engine, "UTC")[0] == expected
    with engine.connect() as conn:
        marked = conn.execute(sa.select(s.rollup_dirty.c.bucket_start)).scalars().all()
    if engine.dialect.name == "postgresql":
        assert marked == [utc(2026, 3, 10, 11)]  # the trigger marked the review's bucket
    result = rollups.refresh(engine)
    assert result.buckets == (1 if engine.dialect.name == "postgresql" else result.buckets)
    assert _figures(engine, "UTC")[0] == expected
