"""Browser journeys of the Overview, one per role: each home shows its tiles and a tile opens
the page behind it, filtered; the admin's journey also drives the period picker (a preset, days
typed and applied on Enter, an invalid range explained in place while the page keeps its title
and figures, the period kept in the URL and opened again from it). Steps are saved as
screenshots (``journey_support.step``) to test-artifacts/journey-<role>-home-<step>.png.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlparse

from tests.browser_support import browser_page, open_page, settle
from tests.journey_support import JOURNEY_TIMEZONE, choose, step

SUPPORT_TILES = ("Reviews waiting", "Follow-ups past their target", "Follow-ups due within 2 h")
MANAGER_TILES = ("Utilisation", "Unfilled peak hours")
ADMIN_TILES = ("Intake → session", "Upsell revenue", "Emails failed", "Emails uncertain")


def params(page) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlparse(page.url).query).items()}


def expect_tiles(page, labels) -> None:
    from playwright.sync_api import expect

    for label in labels:
        expect(page.get_by_test_id("stMetric").filter(has_text=label).first).to_be_visible()


def open_tile(page, link: str, title: str) -> None:
    """Follow a tile's link and wait for the page it opens."""
    from playwright.sync_api import expect

    page.get_by_role("link", name=link).click()
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
    settle(page)


def test_support_home(journey_app):
    from playwright.sync_api import expect

    url = journey_app("support")
    with browser_page() as page:
        open_page(page, url, "Overview")
        expect_tiles(page, SUPPORT_TILES)
        expect(page.get_by_text("Needs attention")).to_be_visible()
        step(page, "support", 1, "home")

        open_tile(page, "Open the queue", "Review moderation")
        assert params(page).get("status") == "pending", page.url
        step(page, "support", 2, "home-reviews-pending")

        open_page(page, url, "Overview")
        open_tile(page, "Open late ones", "Follow-ups")
        assert params(page).get("due") == "overdue", page.url
        step(page, "support", 3, "home-followups-overdue")


def test_manager_home(journey_app):
    url = journey_app("manager")
    with browser_page() as page:
        open_page(page, url, "Overview")
        expect_tiles(page, MANAGER_TILES)
        step(page, "manager", 1, "home")

        open_tile(page, "Open heatmaps", "Mechanic calendars & pricing")
        assert params(page).get("view") == "heatmaps", page.url
        step(page, "manager", 2, "home-calendars")


def type_days(page, text: str) -> None:
    """Type the period's days in the sidebar and press Enter."""
    field = page.get_by_test_id("stSidebar").get_by_label("Days", exact=True)
    field.fill(text)
    field.press("Enter")
    settle(page)


def test_admin_home_and_period_picker(journey_app):
    from playwright.sync_api import expect

    url = journey_app("admin")
    with browser_page() as page:
        open_page(page, url, "Overview")
        expect_tiles(page, ADMIN_TILES)
        assert params(page).get("preset") == "last_30_days", page.url
        step(page, "admin", 1, "home")

        choose(page, "Period", "Last 7 days")
        expect(page.get_by_role("heading", name="The marketplace in the last 7 days")).to_be_visible()
        assert params(page).get("preset") == "last_7_days", page.url
        step(page, "admin", 2, "home-last-7-days")

        today = dt.datetime.now(dt.UTC).date()
        start, end = today - dt.timedelta(days=20), today - dt.timedelta(days=10)
        type_days(page, f"{start} – {end}")  # typed, then Enter
        span = f"{start:%d %b %Y} – {end:%d %b %Y}"
        expect(page.get_by_role("heading", name=f"The marketplace in {span}")).to_be_visible()
        assert params(page) == {"from": str(start), "to": str(end), "tz": "UTC"}, page.url
        settle(page)  # the heading shows before the run has drawn the tiles below it
        figures = page.get_by_test_id("stMetricValue").all_inner_texts()
        step(page, "admin", 3, "home-typed-days")

        type_days(page, f"{end} – {start}")  # the end before the start
        sidebar_warning = page.get_by_test_id("stSidebar").get_by_test_id("stAlert")
        expect(sidebar_warning).to_contain_text("Not applied")
        expect(sidebar_warning).to_contain_text("before the start date")
        expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
        expect(page.get_by_role("heading", name=f"The marketplace in {span}")).to_be_visible()
        settle(page)
        assert page.get_by_test_id("stMetricValue").all_inner_texts() == figures
        assert params(page) == {"from": str(start), "to": str(end), "tz": "UTC"}, page.url
        step(page, "admin", 4, "home-invalid-range")

        shared = f"{url}/?from={start}&to={end}&tz={JOURNEY_TIMEZONE}"
        open_page(page, shared, "Overview")  # a shared link opens the same period
        expect(page.get_by_test_id("stSidebar").get_by_label("Days", exact=True)).to_have_value(f"{start} – {end}")
        expect(page.get_by_role("heading", name=f"The marketplace in {span}")).to_be_visible()
        expect(page.get_by_test_id("stMain")).to_contain_text(f"{JOURNEY_TIMEZONE})")
        step(page, "admin", 5, "home-shared-link")

        open_tile(page, "Open failed", "Emails")
        assert params(page).get("status") == "failed", page.url
        step(page, "admin", 6, "home-emails-failed")
