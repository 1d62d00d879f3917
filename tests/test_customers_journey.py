"""The support journey of the customer lookup in a browser (the real app on the journeys'
demo, headless chromium): a search that matches several customers lists them to pick from,
picking one opens them, and the mechanic's name in their timeline opens the mechanic's
profile. Screenshots: test-artifacts/journey-support-lookup-<step>.png."""

from __future__ import annotations

import datetime as dt
import uuid

from tests.browser_support import browser_page, open_page, settle
from tests.factories import add_mechanic, add_session, add_user
from tests.journey_support import open_link, step

RUN = uuid.uuid4().hex[:6]
SURNAME = f"Lookupson{RUN}"
CUSTOMERS = [f"Ann {SURNAME}", f"Bea {SURNAME}", f"Cy {SURNAME}"]  # listed by email: a, b, c
MECHANIC = f"Lookup Mechanic {RUN}"
ROW = 35  # pixels of the tables' header and of a results row; a timeline row is 56
MECHANIC_X = 130 + 110 + 190  # the timeline's When, What and About (pages/customers.py TIMELINE_WIDTHS)


def prepare(engine) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with engine.begin() as conn:
        mechanic = add_mechanic(conn, MECHANIC)
        for letter, name in zip("abc", CUSTOMERS):
            customer = add_user(conn, name, email=f"{letter}.{SURNAME.lower()}@example.com", plan="premium")
            add_session(conn, customer, mechanic, session_type="video", ended_at=now - dt.timedelta(days=1))


def test_support_picks_a_customer_from_the_results(journey_app):
    from playwright.sync_api import expect

    url = journey_app("support", prepare=prepare)
    with browser_page() as page:
        open_page(page, f"{url}/customers", "Customer lookup")
        page.get_by_label("Email or name").fill(SURNAME)
        page.get_by_label("Email or name").press("Enter")
        settle(page)
        expect(page.get_by_text("3 matches: select a row to open the customer.")).to_be_visible()
        results = page.get_by_test_id("stDataFrame").first
        for name in CUSTOMERS:
            expect(results).to_contain_text(f"#{name}")
        expect(results).to_contain_text("Premium")  # the plan's label
        expect(page.get_by_role("heading", name=CUSTOMERS[1])).to_have_count(0)  # nobody opened yet
        step(page, "support-lookup", 1, "results")

        box = results.bounding_box()  # the second row's checkbox, left of the names
        page.mouse.click(box["x"] + 16, box["y"] + ROW + ROW // 2 + ROW)
        settle(page)
        expect(page.get_by_role("heading", name=CUSTOMERS[1])).to_be_visible()
        assert "customer=" in page.url and "q=" in page.url  # the pick can be shared as a link
        timeline = page.get_by_test_id("stDataFrame").last
        expect(timeline).to_contain_text(f"#{MECHANIC}")
        expect(timeline).to_contain_text("Video · Completed")  # labels, not codes
        timeline.scroll_into_view_if_needed()
        step(page, "support-lookup", 2, "customer")

        box = timeline.bounding_box()  # the session's mechanic, on the first (only) row
        open_link(page, box["x"] + MECHANIC_X + 24, box["y"] + ROW + 28)
        profile = page.context.pages[-1]
        open_page(profile, profile.url, "Mechanic profiles")
        expect(profile.get_by_role("heading", name=MECHANIC)).to_be_visible()
        step(profile, "support-lookup", 3, "mechanic-profile")
