"""Browser journeys, one per role: the real app (`streamlit run`) on a small embedded
demo database (``tests.journey_support``), driven by headless chromium. Each journey asserts
what staff see, finds no exception on any page, and saves a 1280x800 screenshot of every step
to test-artifacts/journey-<role>-<step>.png.
"""

from __future__ import annotations

from tests.browser_support import browser_page, open_page, settle
from tests.journey_support import QUESTION, choose, edit_cell, step


def test_admin_journey(journey_app):
    from playwright.sync_api import expect

    url = journey_app("admin")
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
            page.get_by_role("button", name="Download (CSV)").click()
        assert download.value.suggested_filename.startswith("drop-off-step-1-")
        lines = open(download.value.path(), encoding="utf-8").read().splitlines()
        assert "Email" in lines[0].split(",") and len(lines) > 1, lines[:2]
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


def test_support_journey(journey_app, journey_demo):
    from playwright.sync_api import expect

    url = journey_app("support")
    profile = f"{url}/mechanics?view=Profile&mechanic={journey_demo.review_mechanic_id}"
    with browser_page() as page:
        open_page(page, f"{url}/reviews", "Review moderation")
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar).to_contain_text("Demo support")
        expect(sidebar.get_by_text("CRM funnel")).to_have_count(0)  # an admin page
        card = page.locator(f".st-key-review_{journey_demo.review_id}")
        expect(card.get_by_test_id("stMarkdown").filter(has_text="Personal data")).to_be_visible()
        step(page, "support", 1, "reviews")
        card.locator(f".st-key-hide_reason_{journey_demo.review_id} button").click()
        expect(page.get_by_text("Hid 1 review.")).to_be_visible()
        expect(card).to_have_count(0)  # gone from the queue

        open_page(page, profile, "Mechanic profiles")
        hidden = page.get_by_test_id("stVerticalBlock").filter(has_text=journey_demo.review_text[:40]).last
        expect(hidden).to_contain_text("Hidden from customers: Personal information")
        hidden.scroll_into_view_if_needed()
        step(page, "support", 2, "mechanic-profile")

        open_page(page, f"{url}/followups", "Follow-ups")
        card = page.locator(f".st-key-followup_{journey_demo.follow_up_id}")
        expect(card).to_contain_text(QUESTION)
        card.scroll_into_view_if_needed()
        step(page, "support", 3, "follow-up-open")
        card.locator(f".st-key-assign_default_{journey_demo.follow_up_id} button").click()
        expect(page.get_by_text("Follow-up assigned.")).to_be_visible()
        expect(card).to_contain_text("Assigned ·")
        card.get_by_role("button", name="Record answer…").click()
        page.get_by_label("Answer", exact=True).fill("Yes, for a day or two while the pads bed in.")
        page.locator(f".st-key-answer_{journey_demo.follow_up_id} button").click()
        expect(page.get_by_text("Follow-up marked answered.")).to_be_visible()
        expect(card).to_have_count(0)  # answered: no longer waiting
        step(page, "support", 4, "follow-up-answered")

        open_page(page, f"{url}/customers", "Customer lookup")
        page.get_by_label("Email or name").fill(journey_demo.customer_email)
        page.get_by_label("Email or name").press("Enter")
        expect(page.get_by_role("heading", name=journey_demo.customer_name)).to_be_visible()
        settle(page)
        expect(page.get_by_test_id("stDataFrame").last).to_contain_text(QUESTION)  # the timeline
        step(page, "support", 5, "customer-lookup")


def test_manager_journey(journey_app, journey_demo):
    from playwright.sync_api import expect

    url = journey_app("manager")
    with browser_page() as page:
        open_page(page, f"{url}/calendars", "Mechanic calendars & pricing")
        expect(page.get_by_test_id("stSidebar")).to_contain_text("Demo manager")
        choose(page, "Mechanic", journey_demo.slot_mechanic)
        page.get_by_role("radio", name="Weekly slots").click()
        settle(page)
        editor = page.get_by_test_id("stDataFrame").filter(has_text="Multiplier").first
        preview = page.get_by_test_id("stDataFrame").filter(has_text="Starts after saving").first

        def prices_on_slot_day() -> list[str]:
            preview.scroll_into_view_if_needed()  # the grid redraws its rows only where they can be seen
            expect(preview.locator("tbody tr")).to_have_count(14)
            rows = preview.locator("tbody tr").all_inner_texts()
            return [row for row in rows if row.startswith(journey_demo.slot_day)]

        before = prices_on_slot_day()
        assert before and not any(journey_demo.doubled_price in row for row in before), before
        step(page, "manager", 1, "weekly-slots")

        def set_first_multiplier(value: str) -> None:
            edit_cell(page, editor, 0, 4, value)  # Day, Start, End, Available, Multiplier

        set_first_multiplier("9")
        error = page.get_by_test_id("stAlertContentError")
        expect(error).to_contain_text("1 row needs fixing. Nothing is saved until every row is valid.")
        expect(editor).to_contain_text("Multiplier must be from 0.50 to 3.00, got 9")  # beside the cell
        step(page, "manager", 2, "invalid-multiplier")

        set_first_multiplier("2")
        expect(error).to_have_count(0)
        preview.scroll_into_view_if_needed()  # the grid redraws its rows only where they can be seen
        expect(preview.locator("tbody tr").filter(has_text=journey_demo.doubled_price).first).to_be_attached()
        assert any(journey_demo.doubled_price in row for row in prices_on_slot_day())
        step(page, "manager", 3, "preview")

        page.get_by_role("button", name="Save weekly slots").click()
        expect(page.get_by_text("Weekly slots saved: 0 added, 1 changed, 0 removed.")).to_be_visible()
        settle(page)
        saved = prices_on_slot_day()
        assert any(journey_demo.doubled_price in row for row in saved) and saved != before, saved
        step(page, "manager", 4, "saved")
