"""The manager's calendar journey in a browser: a link opens one mechanic's calendar, the week
shows each open hour at its price in money, the slot editor marks an out-of-range multiplier
in its own cell with the problem beside it, the price beside the multiplier follows the edit,
Discard brings back what is saved and Save saves (the week then shows the new price).
Screenshots of every step at 1280x800, and of the week at 1920x1080."""

from __future__ import annotations

import uuid

from dashboard.core.auth import Actor
from dashboard.domain.calendars.edits import save_weekly_slots, set_base_price
from dashboard.ui import access
from tests.browser_support import browser_page, open_page, settle
from tests.factories import add_mechanic, weekly_slot
from tests.journey_support import edit_cell, step

NAME = f"Priya Pricing {uuid.uuid4().hex[:4]}"


def test_manager_calendar_journey(journey_app):
    from playwright.sync_api import expect

    mechanic: dict[str, uuid.UUID] = {}

    def prepare(engine) -> None:
        """A mechanic open 09:00-12:00 every day at 1.00x, and video at $40.00 (on this copy only)."""
        manager: Actor = access.demo_actor("manager")
        with engine.begin() as conn:
            mechanic["id"] = add_mechanic(conn, NAME, timezone="America/New_York")
        save_weekly_slots(engine, manager, mechanic["id"], [weekly_slot(day, "09:00", "12:00") for day in range(7)])
        set_base_price(engine, manager, "video", "40.00")

    url = journey_app("manager", prepare=prepare)
    with browser_page() as page:
        open_page(page, f"{url}/calendars?mechanic={mechanic['id']}", "Mechanic calendars & pricing")
        expect(page.get_by_role("combobox", name="Mechanic", exact=True)).to_have_value(f"{NAME} · America/New_York")
        week = page.get_by_test_id("stDataFrame").first
        expect(week).to_contain_text("$40.00")
        expect(page.get_by_text("Booked", exact=False).first).to_be_visible()  # the legend says what cells mean
        step(page, "manager-calendar", 1, "week-in-money")

        first_day = week.locator("thead th").nth(1)
        before = first_day.inner_text()
        page.get_by_role("button", name="Next week").click()
        expect(first_day).not_to_have_text(before)
        expect(week).to_contain_text("$40.00")
        step(page, "manager-calendar", 2, "next-week")

        page.get_by_role("radio", name="Weekly slots").click()
        settle(page)
        editor = page.get_by_test_id("stDataFrame").filter(has_text="Multiplier").first
        expect(editor).to_contain_text("Video price")
        first_row = editor.locator("tbody tr").first
        expect(first_row).to_contain_text("$40.00")
        save = page.get_by_role("button", name="Save weekly slots")
        discard = page.get_by_role("button", name="Discard changes")
        expect(save).to_be_in_viewport()  # Save and Discard above the grid, in reach at 1280x800
        expect(discard).to_be_in_viewport()

        edit_cell(page, editor, 0, 4, "9")  # Day, Start, End, Available, Multiplier
        expect(page.get_by_test_id("stAlertContentError")).to_contain_text("1 row needs fixing.")
        expect(first_row).to_contain_text("⚠ 9")  # the bad cell itself
        expect(first_row).to_contain_text("Multiplier must be from 0.50 to 3.00, got 9.")  # the message beside it
        expect(save).to_be_disabled()
        step(page, "manager-calendar", 3, "bad-cell-marked")

        edit_cell(page, editor, 0, 4, "1.5")
        expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)
        expect(first_row).to_contain_text("$60.00")  # 40.00 x 1.5, beside the multiplier
        expect(first_row).to_contain_text("true")  # nothing else in the row changed
        expect(page.get_by_text("1 unsaved change.")).to_be_visible()
        step(page, "manager-calendar", 4, "price-follows-the-edit")

        discard.click()
        expect(page.get_by_text("No unsaved changes.")).to_be_visible()
        expect(first_row).to_contain_text("1.00")
        expect(first_row).to_contain_text("$40.00")
        step(page, "manager-calendar", 5, "discarded")

        edit_cell(page, editor, 0, 4, "1.5")
        expect(first_row).to_contain_text("$60.00")
        save.click()
        expect(page.get_by_text("Weekly slots saved: 0 added, 1 changed, 0 removed.")).to_be_visible()
        expect(page.get_by_text("No unsaved changes.")).to_be_visible()
        expect(first_row).to_contain_text("1.50")
        step(page, "manager-calendar", 6, "saved")

        page.get_by_role("radio", name="Week", exact=True).click()
        settle(page)
        expect(page.get_by_test_id("stDataFrame").first).to_contain_text("$60.00")  # Sunday now costs more
        step(page, "manager-calendar", 7, "week-after-saving")
        page.set_viewport_size({"width": 1920, "height": 1080})
        step(page, "manager-calendar", 8, "week-1920")
