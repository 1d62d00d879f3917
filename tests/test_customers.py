"""Customer lookup: search (escaped, mechanics left out), the profile, the timeline, the
recommended next service, and the page with AppTest, on both databases."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.core import schema as s
from dashboard.core.auth import Actor
from dashboard.core.errors import Invalid
from dashboard.core.period import Period
from dashboard.ui import components as ui
from queries import customers as q
from tests.factories import add_mechanic, add_user, staff_fixture
from tests.page_support import open_any_page

PAGE = Path(__file__).resolve().parents[1] / "pages" / "customers.py"
SUPPORT = Actor("sam@pitwall.test", "support", "Sam Support")
staff = staff_fixture(SUPPORT)
U = {name: uuid.uuid4() for name in ("ann", "joann", "bob", "bobx", "newbie", "mech")}
SESSION, REQUEST = uuid.uuid4(), uuid.uuid4()


def at(day, hour=12) -> dt.datetime:
    return dt.datetime(2024, 3, day, hour, tzinfo=dt.UTC)


@pytest.fixture
def people(engine, monkeypatch, tmp_path):
    monkeypatch.setenv("PITWALL_SECRETS", str(tmp_path / "absent.toml"))
    ui.clear_query_cache()
    emails = {
        "ann": "ann@example.com",
        "joann": "joann@example.com",
        "bob": "bob_100%@example.com",
        "bobx": "bob1100x@example.com",
        "newbie": "new@example.com",
        "mech": "anna.mech@example.com",
    }
    names = {"ann": "Ann O'Neil", "joann": "Jo Ann *Bold*", "bob": "Bob", "bobx": "Bobby", "newbie": None}
    with engine.begin() as conn:
        conn.execute(s.users.insert(), [{"id": U[n], "email": e, "created_at": at(1, 8)} for n, e in emails.items()])
        conn.execute(
            s.profiles.insert(),
            [
                {"id": U[n], "full_name": name, "plan": "standard", "acquisition_channel": "referral"}
                for n, name in names.items()
            ],
        )
        conn.execute(s.mechanics.insert().values(user_id=U["mech"], display_name="Mo Mechanic"))
        conn.execute(
            s.requests.insert(),
            [
                {
                    "id": REQUEST,
                    "customer_id": U["ann"],
                    "category": "brakes",
                    "vehicle_year": 2015,
                    "vehicle_make": "Toyota",
                    "vehicle_model": "Corolla",
                    "description": "Squeals when braking",
                    "created_at": at(1),
                    "is_follow_up": False,
                    "parent_session_id": None,
                    "follow_up_type": None,
                },
            ],
        )
        conn.execute(
            s.sessions.insert().values(
                id=SESSION,
                request_id=REQUEST,
                customer_id=U["ann"],
                mechanic_id=U["mech"],
                status="completed",
                ended_at=at(2),
                summary_submitted_at=at(2, 13),
                price_cents=4900,
                findings="Pads worn",
                parts_needed="Brake pads",
                next_steps="Replace this week",
            )
        )
        conn.execute(
            s.requests.insert().values(
                customer_id=U["ann"],
                category="brakes",
                description="Which pads?",
                created_at=at(5),
                is_follow_up=True,
                parent_session_id=SESSION,
                follow_up_type="quick_question",
            )
        )
        conn.execute(
            s.mechanic_reviews.insert().values(
                session_id=SESSION,
                mechanic_id=U["mech"],
                customer_id=U["ann"],
                rating=5,
                review_text="Great help",
                status="published",
                created_at=at(3),
            )
        )
        conn.execute(
            s.crm_interactions.insert().values(customer_id=U["ann"], interaction_type="intake", created_at=at(1))
        )
        conn.execute(
            s.upsell_recommendations.insert().values(
                customer_id=U["ann"],
                session_id=SESSION,
                recommendation_type="maintenance_plan",
                service_title="Brake care plan",
                price_cents=7900,
                shown_at=at(2, 14),
                clicked_at=at(2, 15),
            )
        )
        conn.execute(
            s.email_outbox.insert(),
            [
                {
                    "session_id": SESSION,
                    "milestone": "summary_delivered",
                    "recipient": "ann@example.com",
                    "status": "sent",
                    "sent_at": at(2, 13),
                    "created_at": at(2, 13),
                },
                {
                    "session_id": SESSION,
                    "milestone": "mechanic_nudge",
                    "recipient": "anna.mech@example.com",
                    "status": "sent",
                    "sent_at": at(2, 11),
                    "created_at": at(2, 11),
                },
            ],
        )
        conn.execute(s.upsell_services.delete())
        conn.execute(
            s.upsell_services.insert().values(
                recommendation_type="follow_up", title="Follow-up call", price_cents=1900, is_active=True
            )
        )
    return engine


def found(engine, text) -> list[str]:
    with engine.connect() as conn:
        return q.search(conn, text=text).email.tolist()


def test_search_by_email_or_name(people):
    assert found(people, "ANN") == ["ann@example.com", "joann@example.com"]  # not the mechanic Anna
    assert found(people, "joann@example.com") == ["joann@example.com"]
    assert found(people, "ann@example.com") == ["ann@example.com", "joann@example.com"]  # the exact one first
    assert found(people, "o'neil") == ["ann@example.com"]
    assert found(people, "  jo   ann ") == ["joann@example.com"]  # spaces collapse
    assert found(people, "_100%") == ["bob_100%@example.com"]  # wildcards match themselves
    assert found(people, "%%%") == [] and found(people, "!!!") == []
    assert found(people, "x'); DROP TABLE users; --") == []
    with people.connect() as conn:  # each match with its plan and latest interaction (none: missing)
        matches = q.search(conn, text="ann").set_index("email")
    assert matches.loc["ann@example.com", ["full_name", "plan"]].tolist() == ["Ann O'Neil", "standard"]
    assert matches.loc["ann@example.com", "last_activity"] == pd.Timestamp(at(1))
    assert pd.isna(matches.loc["joann@example.com", "last_activity"])


def test_search_keeps_the_first_matches_by_email_whichever_way_they_matched(engine):
    """Emails that contain "kit" or names that do, by email: aa.kit is a mechanic (left out before
    the limit), kit@ the exact email (first when searched in full), Amy Kitson matches by her
    name alone, mkit@ has no profile, zed.kit matches by both."""
    with engine.begin() as conn:
        add_mechanic(conn, "Kit the mechanic", email="aa.kit@pitwall.test")
        add_user(conn, "Amy Kitson", email="amy@pitwall.test")
        add_user(conn, "Kit", email="kit@pitwall.test")
        conn.execute(s.users.insert().values(id=uuid.uuid4(), email="mkit@pitwall.test"))
        add_user(conn, "Zed Kitt", email="zed.kit@pitwall.test")
        add_user(conn, "Bo", email="bo@pitwall.test")
    with engine.connect() as conn:
        first = q.search(conn, text="KIT", limit=3)
        full = q.search(conn, text="kit@pitwall.test", limit=2)
    assert first.email.tolist() == ["amy@pitwall.test", "kit@pitwall.test", "mkit@pitwall.test"]
    assert first.full_name.tolist()[:2] == ["Amy Kitson", "Kit"] and pd.isna(first.full_name.iloc[2])
    assert full.email.tolist() == ["kit@pitwall.test", "mkit@pitwall.test"]  # exact first; aa.kit@ a mechanic


def test_search_refuses_control_characters(people):
    with pytest.raises(Invalid, match="control character"), people.connect() as conn:
        q.search(conn, text="ann\x00@example.com")


@pytest.mark.parametrize("text", ["ab", "   ", "x" * 101, None])
def test_search_needs_3_to_100_characters(engine, text):
    with pytest.raises(Invalid, match="3 to 100 characters"), engine.connect() as conn:
        q.search(conn, text=text)


def cells(row, columns) -> list:
    return [None if pd.isna(value) else value for value in row[columns]]


def test_profile_and_timeline(people):
    with people.connect() as conn:
        profile = q.customer(conn, customer_id=str(U["ann"])).iloc[0]
        events = q.timeline(conn, customer_id=U["ann"])
        assert q.timeline(conn, customer_id=U["newbie"]).empty
        assert q.customer(conn, customer_id=uuid.uuid4()).empty
        with pytest.raises(Invalid, match="not a valid id"):
            q.timeline(conn, customer_id="../etc/passwd")
    assert (profile.email, profile.requests, profile.sessions_completed, profile.reviews, profile.upsells_bought) == (
        "ann@example.com",
        2,
        1,
        1,
        0,
    )
    assert events.kind.tolist() == [
        "Follow-up question",
        "Review",
        "Upsell clicked",
        "Upsell shown",
        "Email",
        "Summary",
        "Session",
        "Interaction",
        "Request",
    ]
    by_kind = events.set_index("kind")
    codes = ["category", "subtype", "status", "title"]
    assert cells(by_kind.loc["Request"], codes) == ["brakes", None, "open", "2015 Toyota Corolla"]
    assert by_kind.loc["Request", "detail"] == "Squeals when braking"
    assert cells(by_kind.loc["Follow-up question"], codes) == ["brakes", "quick_question", "open", None]
    assert cells(by_kind.loc["Session"], ["subtype", "status", "mechanic_id", "mechanic_name"]) == [
        "video",
        "completed",
        str(U["mech"]),
        "Mo Mechanic",
    ]
    assert by_kind.loc["Session", "amount_cents"] == 4900
    assert by_kind.loc["Summary", "detail"] == "Findings: Pads worn | Parts: Brake pads | Next steps: Replace this week"
    assert by_kind.loc["Summary", "mechanic_name"] == "Mo Mechanic"
    assert cells(by_kind.loc["Review"], ["title", "status", "mechanic_name"]) == [
        "5 of 5",
        "published",
        "Mo Mechanic",
    ]
    assert by_kind.loc["Interaction", "subtype"] == "intake"
    assert cells(by_kind.loc["Email"], ["subtype", "status"]) == ["summary_delivered", "sent"]  # not the nudge
    assert cells(by_kind.loc["Upsell clicked"], ["subtype", "title", "amount_cents"]) == [
        "maintenance_plan",
        "Brake care plan",
        7900,
    ]
    assert str(events.happened_at.dt.tz) == "UTC"


def test_the_timeline_shows_a_recorded_answer_as_written(people):
    r = s.requests
    with people.begin() as conn:
        conn.execute(
            r.update()
            .where(r.c.customer_id == U["ann"], r.c.is_follow_up)
            .values(
                follow_up_state="answered",
                assigned_mechanic_id=U["mech"],
                answered_at=at(6),
                answer_text="Ceramic <b>pads</b>, **not** metal",
                answered_by=SUPPORT.email,
            )
        )
        events = q.timeline(conn, customer_id=U["ann"])
    answer = events[events.kind == "Follow-up answered"].iloc[0]
    assert answer.happened_at == pd.Timestamp(at(6))
    assert answer.title == "Answered by Mo Mechanic · recorded by Sam Support"
    assert answer.detail == "Ceramic <b>pads</b>, **not** metal"  # as written; the page shows it in a table


def recommended(engine, who, now) -> list:
    with engine.connect() as conn:
        return q.recommended_next(conn, customer_id=U[who], now=now).values.tolist()


def test_recommended_next_service(people):
    # within 30 days the clicked recommendation is still open
    assert recommended(people, "ann", at(10)) == [
        ["maintenance_plan", "Brake care plan", 7900, "open recommendation, clicked but not bought"]
    ]
    # later it has lapsed: the rules on the latest summary suggest a follow-up (parts needed)
    assert recommended(people, "ann", dt.datetime(2024, 5, 1, tzinfo=dt.UTC)) == [
        ["follow_up", "Follow-up call", 1900, "rule on the latest summary: the summary lists parts needed"]
    ]
    assert recommended(people, "newbie", at(10)) == []


# --- the page ---------------------------------------------------------------------------------


def open_page(engine) -> AppTest:
    return open_any_page(engine, Period(at(1).date(), at(31).date(), "Europe/London"), SUPPORT, PAGE)


def search_for(page: AppTest, text: str) -> AppTest:
    page.text_input(key="customer_search_text").input(text)
    page.button[0].click().run()
    assert not page.exception, page.exception
    return page


def test_page_lists_the_matches_and_opens_the_one_picked(people):
    page = search_for(open_page(people), "ann")
    assert "2 matches: select a row to open the customer." in [c.value for c in page.caption]
    matches = page.dataframe[0].value
    assert matches.customer.tolist() == [  # the name links to the customer, the # part is what shows
        f"customers?customer={U['ann']}#Ann O'Neil",
        f"customers?customer={U['joann']}#Jo Ann *Bold*",
    ]
    assert matches.plan.tolist() == ["Standard", "Standard"]  # labels, not codes
    assert matches.last_activity.tolist() == ["01 Mar 2024, 12:00", "—"]  # Ann's intake; Jo Ann did nothing yet
    assert not page.subheader  # nobody opened before a pick
    assert page.query_params["q"] == "ann"

    page.query_params["customer"] = str(U["ann"])  # what picking a row does
    page.run()
    assert [h.value for h in page.subheader] == ["Ann O'Neil"]
    assert any("Standard plan · came from referral" in c.value for c in page.caption)
    assert {m.label: m.value for m in page.metric}["Sessions completed"] == "1"
    assert "Recommended next: Follow\\-up call" in page.success[0].value  # the open one lapsed long ago
    timeline = page.dataframe[-1].value
    assert len(timeline) == 9
    about = dict(zip(timeline.kind, timeline.about))
    assert about["Request"] == "Brakes · 2015 Toyota Corolla · Open"
    assert about["Follow-up question"] == "Brakes · Quick question · Open"
    assert about["Session"] == "Video · Completed"
    assert about["Review"] == "5 of 5 · Published"
    assert about["Interaction"] == "Intake request"
    assert about["Email"] == "Summary delivered · Sent"
    assert about["Upsell clicked"] == "Maintenance plan · Brake care plan"
    mechanic = dict(zip(timeline.kind, timeline.mechanic))
    assert mechanic["Session"] == f"mechanics?mechanic={U['mech']}#Mo Mechanic"
    assert mechanic["Email"] == ""  # no mechanic: an empty cell


def test_one_match_opens_directly_and_markup_stays_text(people):
    page = search_for(open_page(people), "joann@example.com")
    assert "1 match." in [c.value for c in page.caption]
    assert [h.value for h in page.subheader] == ["Jo Ann \\*Bold\\*"]  # escaped, not bold
    assert "Nothing has happened for this customer yet" in page.info[-1].value
    assert page.query_params["customer"] == str(U["joann"])


def test_links_open_a_customer_or_a_search(people):
    page = linked(people, q="bob")
    assert page.text_input(key="customer_search_text").value == "bob"
    assert page.dataframe[0].value.email.tolist() == ["bob1100x@example.com", "bob_100%@example.com"]
    page = linked(people, customer=str(U["newbie"]))
    assert [h.value for h in page.subheader] == [ui.escape_markdown("new@example.com")]  # no name: the email


@pytest.mark.parametrize(
    "customer, message",
    [
        (str(uuid.uuid4()), "No customer has this id"),
        ("not-an-id", "does not name a customer"),
        ("1' OR '1'='1", "does not name a customer"),
    ],
)
def test_a_link_to_an_unknown_or_malformed_customer(people, customer, message):
    page = open_page(people)
    page.query_params["customer"] = customer
    page.run()
    assert not page.exception and not page.subheader
    assert message in page.info[-1].value


def test_more_matches_than_the_list_holds_say_refine(people):
    with people.begin() as conn:
        for n in range(q.SEARCH_LIMIT + 1):
            add_user(conn, f"Many Match {n:02d}", email=f"many{n:02d}@example.com")
    page = search_for(open_page(people), "many")
    assert f"More than {q.SEARCH_LIMIT} customers match" in page.warning[0].value
    assert "Refine your search" in page.warning[0].value
    assert len(page.dataframe[0].value) == q.SEARCH_LIMIT


@pytest.mark.parametrize(
    "text, shown",
    [
        ("ab", "3 to 100 characters"),
        ("ann\x00", "control character"),
        ("<b>ann</b>", "No customer matches"),
        ("x'); DROP TABLE users; --", "No customer matches"),
        ("**ann**", "No customer matches"),
    ],
)
def test_page_bad_searches(people, text, shown):
    page = search_for(open_page(people), text)
    assert shown in (page.warning[0].value if page.warning else page.info[0].value)
    with people.connect() as conn:  # nothing dropped
        assert len(q.search(conn, text="example.com")) == 5


def linked(engine, **params) -> AppTest:
    """The page opened from a link carrying ``params``."""
    page = AppTest.from_file(str(PAGE), default_timeout=60)
    page.session_state["_pitwall_context"] = open_page(engine).session_state["_pitwall_context"]
    for key, value in params.items():
        page.query_params[key] = value
    return page.run()


def test_page_before_a_search_and_a_huge_one(people):
    assert "at least 3 characters" in open_page(people).caption[-1].value
    page = linked(people, q="a" * 10_000)  # cut to what the box takes, then searched
    assert not page.exception
    assert page.text_input(key="customer_search_text").value == "a" * q.SEARCH_MAX
    assert "No customer matches" in page.info[0].value
