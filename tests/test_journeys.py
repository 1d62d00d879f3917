"""Browser journeys, one per role: the real app (`streamlit run`) on a small embedded
demo database, driven by headless chromium. The demo runs as each role through
``PITWALL_DEMO_ROLE`` (honoured on the embedded database only); every write still
goes through the server-side role checks. Each journey asserts what staff see,
finds no exception on any page, and saves a 1280x800 screenshot of every step to
test-artifacts/journey-<role>-<step>.png.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dashboard.core import schema as s
from dashboard.core.db import make_engine
from dashboard.domain.calendars.edits import save_weekly_slots
from dashboard.domain.calendars.slots import DAY_NAMES, day_of_week
from dashboard.domain.followups import create_follow_up
from dashboard.domain.reviews import submit_review
from dashboard.tools.demo.load import load_if_empty
from dashboard.ui import access
from dashboard.ui.components import fmt_money
from tests.browser_support import (
    DEMO_SCALE,
    assert_no_exception,
    browser_page,
    open_page,
    require_chromium,
    screenshot,
    serve,
    settle,
)
from tests.factories import add_mechanic, add_session, add_user

QUESTION = "Journey check: is the squeal from the front pads normal after the fix?"
REVIEW_TEXT = "Sorted my brakes in minutes. Call me on 0176 1234 5678 if you want the details of the fix."


@dataclass(frozen=True)
class Demo:
    """The template database and the rows the journeys act on."""

    path: object
    review_id: str  # a waiting review flagged for personal data
    review_mechanic_id: str
    review_text: str
    follow_up_id: str  # an open follow-up the test asked
    customer_email: str
    customer_name: str
    slot_mechanic: str  # "name · zone" as the calendars page lists them
    slot_day: str  # e.g. "Sun": the weekday of that mechanic's first weekly slot
    doubled_price: str  # the video base price at multiplier 2.00


JOURNEY_TIMEZONE = "America/New_York"


def _journey_rows(engine) -> dict:
    """Rows the journeys act on, written on top of the demo so no journey depends on what a
    day's demo happens to hold: a mechanic with one weekly slot in the coming days, and a
    customer with two sessions with that mechanic that ended yesterday."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with engine.begin() as conn:
        customer = add_user(conn, name=f"Journey Customer {uuid.uuid4().hex[:6]}")
        mechanic = add_mechanic(conn, name=f"Journey Mechanic {uuid.uuid4().hex[:6]}", timezone=JOURNEY_TIMEZONE)
        ended = {
            "ended_at": now - dt.timedelta(days=1),
            "started_at": now - dt.timedelta(days=1, hours=1),
            "scheduled_at": now - dt.timedelta(days=1, hours=1),
        }
        reviewed = add_session(conn, customer, mechanic, **ended)
        asked = add_session(conn, customer, mechanic, **ended)
        email, name = conn.execute(
            sa.select(s.users.c.email, s.profiles.c.full_name)
            .join(s.profiles, s.profiles.c.id == s.users.c.id)
            .where(s.users.c.id == customer)
        ).one()
    slot_day = day_of_week(now.astimezone(ZoneInfo(JOURNEY_TIMEZONE)).date() + dt.timedelta(days=3))
    save_weekly_slots(
        engine,
        access.demo_actor("manager"),
        mechanic,
        [{"day_of_week": slot_day, "start_time": "08:00", "end_time": "20:00", "price_multiplier": "1.00"}],
    )
    return {
        "customer": customer,
        "mechanic": mechanic,
        "reviewed": reviewed,
        "asked": asked,
        "email": email,
        "name": name,
        "slot_day": slot_day,
    }


def _oldest_waiting(engine, review_id) -> None:
    """Make ``review_id`` the review that has waited longest, so it opens the moderation queue."""
    r = s.mechanic_reviews
    with engine.begin() as conn:
        oldest = conn.execute(sa.select(sa.func.min(r.c.created_at)).where(r.c.status == "pending")).scalar_one()
        conn.execute(r.update().where(r.c.id == review_id).values(created_at=oldest - dt.timedelta(hours=1)))


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Demo:
    """One demo database for every journey (each app gets a copy), with the rows they act on."""
    require_chromium()
    path = tmp_path_factory.mktemp("journeys") / "template.duckdb"
    engine = make_engine(f"duckdb:///{path}")
    load_if_empty(engine, scale=float(DEMO_SCALE), progress=False)
    rows = _journey_rows(engine)
    review = submit_review(
        engine, session_id=rows["reviewed"], customer_id=rows["customer"], rating=4, text=REVIEW_TEXT
    )
    assert review.status == "pending" and "personal_data" in review.flags, review
    _oldest_waiting(engine, review.id)
    follow_up = create_follow_up(
        engine,
        access.demo_actor("support"),
        parent_session_id=rows["asked"],
        customer_id=rows["customer"],
        follow_up_type="quick_question",
        text=QUESTION,
    )
    with engine.connect() as conn:
        video = conn.execute(
            sa.select(s.session_base_prices.c.price_cents).where(s.session_base_prices.c.session_type == "video")
        ).scalar_one()
        mechanic_name = conn.execute(
            sa.select(s.mechanics.c.display_name).where(s.mechanics.c.user_id == rows["mechanic"])
        ).scalar_one()
    engine.dispose()
    return Demo(
        path,
        str(review.id),
        str(rows["mechanic"]),
        REVIEW_TEXT,
        str(follow_up.id),
        rows["email"],
        rows["name"],
        f"{mechanic_name} · {JOURNEY_TIMEZONE}",
        DAY_NAMES[rows["slot_day"]][:3],
        fmt_money(video * 2),
    )


@pytest.fixture
def app(demo, tmp_path):
    """``app(role)``: the URL of the app running as the demo ``role`` on its own copy of the demo."""
    with contextlib.ExitStack() as servers:

        def start(role: str) -> str:
            database = tmp_path / f"{role}.duckdb"
            shutil.copy(demo.path, database)
            return servers.enter_context(serve(database, PITWALL_DEMO_ROLE=role))

        yield start


def step(page, role: str, number: int, name: str) -> None:
    """After each step: settled, no exception, a screenshot."""
    settle(page)
    assert_no_exception(page, f"{role} {name}")
    screenshot(page, f"journey-{role}-{number}-{name}")


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label``, typing it to filter the list."""
    box = page.get_by_role("combobox", name=label, exact=True)
    box.scroll_into_view_if_needed()
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).click()
    settle(page)


def test_admin_journey(app):
    from playwright.sync_api import expect

    url = app("admin")
    with browser_page() as page:
        open_page(page, url, "Overview")
        expect(page.get_by_test_id("stSidebar")).to_contain_text("Demo admin")
        expect(page.get_by_test_id("stMetric").filter(has_text="Sessions completed")).to_be_visible()
        expect(page.locator(".gtitle")).to_have_text("Sessions completed per day")
        step(page, "admin", 1, "overview")

        open_page(page, f"{url}/funnel", "CRM funnel")
        expect(page.get_by_test_id("stMetric").filter(has_text="Entered")).to_be_visible()
        choose(page, "Break down by", "Acquisition channel")
        expect(page.locator(".gtitle").filter(has_text="by acquisition channel")).to_be_visible()
        step(page, "admin", 2, "funnel-breakdown")

        page.get_by_role("tab", name="Drop-off list").click()
        settle(page)
        with page.expect_download() as download:
            page.get_by_test_id("stDownloadButton").locator("button").click()
        assert download.value.suggested_filename.startswith("drop-off-step-1-")
        lines = open(download.value.path(), encoding="utf-8").read().splitlines()
        assert "email" in lines[0].split(",") and len(lines) > 1, lines[:2]
        step(page, "admin", 3, "funnel-drop-off")

        open_page(page, f"{url}/upsells", "Upsells")
        expect(page.get_by_test_id("stMetric").filter(has_text="Click rate")).to_be_visible()
        step(page, "admin", 4, "upsells")

        open_page(page, f"{url}/emails", "Emails")
        page.get_by_role("tab", name="Templates").click()
        choose(page, "Template", "Summary delivered")
        expect(page.get_by_text("Subject: Your session summary from")).to_be_visible()
        expect(page.frame_locator("iframe").first.locator("body")).to_contain_text("summary")
        step(page, "admin", 5, "emails-preview")


def test_support_journey(app, demo):
    from playwright.sync_api import expect

    url = app("support")
    profile = f"{url}/mechanics?view=Profile&mechanic={demo.review_mechanic_id}"
    with browser_page() as page:
        open_page(page, f"{url}/reviews", "Review moderation")
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar).to_contain_text("Demo support")
        expect(sidebar.get_by_text("CRM funnel")).to_have_count(0)  # an admin page
        card = page.locator(f".st-key-review_{demo.review_id}")
        expect(card.get_by_test_id("stMarkdown").filter(has_text="Personal data")).to_be_visible()
        step(page, "support", 1, "reviews")
        card.locator(f".st-key-hide_reason_{demo.review_id} button").click()
        expect(page.get_by_text("Hid 1 review.")).to_be_visible()
        expect(card).to_have_count(0)  # gone from the queue

        open_page(page, profile, "Mechanic profiles")
        hidden = page.get_by_test_id("stVerticalBlock").filter(has_text=demo.review_text[:40]).last
        expect(hidden).to_contain_text("Hidden from customers: Personal information")
        hidden.scroll_into_view_if_needed()
        step(page, "support", 2, "mechanic-profile")

        open_page(page, f"{url}/followups", "Follow-ups")
        card = page.locator(f".st-key-followup_{demo.follow_up_id}")
        expect(card).to_contain_text(QUESTION)
        card.scroll_into_view_if_needed()
        step(page, "support", 3, "follow-up-open")
        card.locator(f".st-key-assign_default_{demo.follow_up_id} button").click()
        expect(page.get_by_text("Follow-up assigned.")).to_be_visible()
        expect(card).to_contain_text("Assigned ·")
        card.locator(f".st-key-answer_{demo.follow_up_id} button").click()
        expect(page.get_by_text("Follow-up marked answered.")).to_be_visible()
        expect(card).to_have_count(0)  # answered: no longer waiting
        step(page, "support", 4, "follow-up-answered")

        open_page(page, f"{url}/customers", "Customer lookup")
        page.get_by_label("Email or name").fill(demo.customer_email)
        page.get_by_label("Email or name").press("Enter")
        expect(page.get_by_role("heading", name=demo.customer_name)).to_be_visible()
        settle(page)
        expect(page.get_by_test_id("stDataFrame").last).to_contain_text(QUESTION)  # the timeline
        step(page, "support", 5, "customer-lookup")


def test_manager_journey(app, demo):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    url = app("manager")
    with browser_page() as page:
        open_page(page, f"{url}/calendars", "Mechanic calendars & pricing")
        expect(page.get_by_test_id("stSidebar")).to_contain_text("Demo manager")
        choose(page, "Mechanic", demo.slot_mechanic)
        page.get_by_role("radio", name="Weekly slots").click()
        settle(page)
        editor = page.get_by_test_id("stDataFrame").filter(has_text="Multiplier").first
        preview = page.get_by_test_id("stDataFrame").filter(has_text="Starts after saving").first

        def prices_on_slot_day() -> list[str]:
            expect(preview.locator("tbody tr")).to_have_count(14)
            rows = preview.locator("tbody tr").all_inner_texts()
            return [row for row in rows if row.startswith(demo.slot_day)]

        before = prices_on_slot_day()
        assert before and not any(demo.doubled_price in row for row in before), before
        step(page, "manager", 1, "weekly-slots")

        def set_first_multiplier(value: str) -> None:
            """Double-click the first row's Multiplier cell (the grid's last column, drawn on a
            canvas) to open its editor; a busy machine may drop the first clicks on a new grid."""
            expect(editor.locator("tbody tr").first).to_be_attached()  # the grid has drawn its rows
            cell = page.locator("[id^=gdg-overlay-] input")
            for _ in range(5):
                box = editor.bounding_box()
                page.mouse.dblclick(box["x"] + box["width"] - 40, box["y"] + 52)
                try:
                    cell.wait_for(timeout=3000)
                    break
                except PlaywrightTimeout:
                    continue
            cell.fill(value)
            cell.press("Enter")
            settle(page)

        set_first_multiplier("9")
        error = page.get_by_test_id("stAlertContentError")
        expect(error).to_contain_text("1 row needs fixing. Nothing is saved until every row is valid.")
        expect(page.get_by_test_id("stDataFrame").filter(has_text="Problem")).to_contain_text(
            "Multiplier must be from 0.50 to 3.00, got 9"
        )
        step(page, "manager", 2, "invalid-multiplier")

        set_first_multiplier("2")
        expect(error).to_have_count(0)
        expect(preview.locator("tbody tr").filter(has_text=demo.doubled_price).first).to_be_attached()
        assert any(demo.doubled_price in row for row in prices_on_slot_day())
        step(page, "manager", 3, "preview")

        page.get_by_role("button", name="Save weekly slots").click()
        expect(page.get_by_text("Weekly slots saved: 0 added, 1 changed, 0 removed.")).to_be_visible()
        settle(page)
        saved = prices_on_slot_day()
        assert any(demo.doubled_price in row for row in saved) and saved != before, saved
        step(page, "manager", 4, "saved")
