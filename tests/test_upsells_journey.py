"""The admin's upsell journey in a browser (the real app on the journeys' demo, headless
chromium): the leaderboard lists every mechanic, the test's own among them, a name opens the
mechanic's profile, and the catalogue previews each service as the customer's card, its
markup drawn as text. Screenshots: test-artifacts/journey-admin-upsells-<step>.png."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from dashboard.core import schema as s
from tests.browser_support import browser_page, open_page, settle
from tests.factories import add_mechanic, add_session, add_user
from tests.journey_support import open_link, step

RUN = uuid.uuid4().hex[:6]
TOP = f"Upsell Leader {RUN}"  # the most revenue of the period: first on the leaderboard
OTHERS = [f"Upsell Quiet {RUN} {n}" for n in range(3)]  # nothing shown: listed with zeros
CARD_TITLE = f"<b>Journey card {RUN}</b>"


def prepare(engine) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with engine.begin() as conn:
        top = add_mechanic(conn, TOP)
        for name in OTHERS:
            add_mechanic(conn, name)
        customer = add_user(conn, f"Upsell Buyer {RUN}")
        session = add_session(conn, customer, top, ended_at=now - dt.timedelta(days=2))
        conn.execute(
            s.upsell_recommendations.insert().values(
                customer_id=customer,
                session_id=session,
                recommendation_type="maintenance_plan",
                service_title="Journey plan",
                price_cents=999_00,
                shown_at=now - dt.timedelta(days=2),
                clicked_at=now - dt.timedelta(days=2),
                purchased_at=now - dt.timedelta(days=1),
            )
        )
        svc = s.upsell_services
        conn.execute(
            svc.insert().values(
                recommendation_type="follow_up",
                title=CARD_TITLE,
                description="Shown **as typed** [here](https://evil.example)",
                price_cents=4200,
                is_active=False,
            )
        )


def test_admin_upsell_journey(journey_app):
    from playwright.sync_api import expect

    url = journey_app("admin", prepare=prepare)
    with browser_page() as page:
        open_page(page, f"{url}/upsells", "Upsells")
        page.get_by_role("tab", name="By mechanic").click()
        settle(page)
        board = page.get_by_test_id("stDataFrame").filter(visible=True).last
        for name in [TOP, *OTHERS]:  # every mechanic, including those with nothing shown
            expect(board).to_contain_text(f"#{name}")
        expect(page.get_by_text(re.compile(r"All \d+ mechanics, by the revenue"))).to_be_visible()
        board.scroll_into_view_if_needed()
        step(page, "admin-upsells", 1, "leaderboard")

        box = board.bounding_box()  # the first row's name, in the pinned first column
        open_link(page, box["x"] + 24, box["y"] + 35 + 17)
        profile = page.context.pages[-1]
        open_page(profile, profile.url, "Mechanic profiles")
        expect(profile.get_by_role("heading", name=TOP)).to_be_visible()
        step(profile, "admin-upsells", 2, "profile-from-leaderboard")
        profile.close()

        page.get_by_role("tab", name="Catalogue (now)").click()
        settle(page)
        card = page.get_by_test_id("stVerticalBlock").filter(has_text=CARD_TITLE).last
        expect(card).to_contain_text("Shown **as typed** [here](https:")  # markup as text (the link broken up)
        expect(card).to_contain_text("$42.00")
        expect(card).to_contain_text("Book the follow-up")
        expect(card).to_contain_text("Not offered: inactive")
        expect(page.locator("b", has_text=f"Journey card {RUN}")).to_have_count(0)  # no <b> was drawn
        card.scroll_into_view_if_needed()
        step(page, "admin-upsells", 3, "card-preview")
