"""The review queue in a browser, as support: the keys (J/K move the focus ring, H hides with the
suggested reason, U undoes, P publishes), paging over more than a page, and bulk publish asking
first. Steps are saved as screenshots (test-artifacts/journey-support-reviews-*.png), the first
also at 1920x1080.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from dashboard.core import schema as s
from tests.browser_support import browser_page, open_page, screenshot, settle
from tests.factories import add_mechanic, add_review, add_user
from tests.journey_support import step

MILD = "Took a while to answer but fixed it."  # a review burst: publishing is suggested
EXTRA = 44  # waiting reviews the journey adds right behind the demo's oldest one
WAIT = 30_000  # ms for what a key or click changes: a rerun on a busy 2-core machine can take seconds


def test_support_moderates_with_the_keyboard(journey_app, journey_demo):
    from playwright.sync_api import expect

    rows = {}

    def prepare(engine):
        """44 waiting reviews right behind the demo's oldest (its personal-data review): the first
        a mild one, so the first two cards are known; and how many wait in all."""
        r = s.mechanic_reviews
        with engine.begin() as conn:
            oldest = conn.execute(sa.select(r.c.created_at).where(r.c.id == journey_demo.review_id)).scalar_one()
            mechanic = add_mechanic(conn, "Journey <b>Reviewer</b>")
            customer = add_user(conn, "Pat <i>Burst</i>")
            rows["mild"] = [
                add_review(
                    conn,
                    mechanic,
                    4,
                    "pending",
                    customer_id=customer,
                    created_at=oldest + dt.timedelta(seconds=i + 1),
                    flags=["review_burst"],
                    review_text=f"{MILD} ({i + 1})",
                )
                for i in range(EXTRA)
            ]
            rows["waiting"] = conn.execute(sa.select(sa.func.count()).where(r.c.status == "pending")).scalar_one()

    url = journey_app("support", prepare)
    total, first, second = rows["waiting"], journey_demo.review_id, str(rows["mild"][0])
    with browser_page() as page:
        open_page(page, f"{url}/reviews", "Review moderation")
        expect(page.get_by_text(f"1–10 of {total:,} reviews", exact=True)).to_be_visible()
        cards = [page.locator(f".st-key-review_{rid}") for rid in (first, second)]
        expect(cards[0]).to_have_css("outline-style", "solid")  # the focus ring starts on the oldest
        expect(cards[1]).to_have_css("outline-style", "none")
        primary = ("data-testid", "stBaseButton-primary")
        expect(cards[0].locator(f".st-key-hide_reason_{first} button")).to_have_attribute(*primary)  # personal data
        expect(cards[1].locator(f".st-key-publish_{second} button")).to_have_attribute(*primary)  # a mild flag
        step(page, "support-reviews", 1, "queue")
        page.set_viewport_size({"width": 1920, "height": 1080})
        settle(page)
        screenshot(page, "journey-support-reviews-1-queue-1920")
        page.set_viewport_size({"width": 1280, "height": 800})

        page.get_by_role("combobox", name="Flags").click()
        page.keyboard.press("j")  # typing in a field is not a key command
        page.keyboard.press("Escape")
        settle(page)
        expect(cards[0]).to_have_css("outline-style", "solid")
        page.evaluate("document.activeElement.blur()")  # out of the field

        page.keyboard.press("j")
        settle(page)
        expect(cards[1]).to_have_css("outline-style", "solid", timeout=WAIT)
        expect(cards[1]).to_be_in_viewport(ratio=0.9)  # scrolled into view
        expect(cards[0]).to_have_css("outline-style", "none")
        page.keyboard.press("k")
        settle(page)
        expect(cards[0]).to_have_css("outline-style", "solid", timeout=WAIT)

        expect(cards[0].locator(f".st-key-hide_reason_{first} kbd")).to_have_text("H")  # the key is on it
        page.keyboard.press("h")  # hides the focused review, with the suggested reason
        settle(page)
        expect(page.get_by_text("Hid 1 review.")).to_be_visible(timeout=WAIT)
        expect(cards[0]).to_have_count(0)
        expect(cards[1]).to_have_css("outline-style", "solid")  # the focus moved on
        step(page, "support-reviews", 2, "hidden-with-undo")
        expect(page.locator(".st-key-decision_notice_undo kbd")).to_have_text("U")
        page.keyboard.press("u")
        settle(page)
        expect(page.get_by_text("Undone: 1 review back as before.")).to_be_visible(timeout=WAIT)
        expect(cards[0]).to_be_visible()
        settle(page)
        expect(cards[0]).to_have_css("outline-style", "solid")  # the focus is on the review back

        page.keyboard.press("j")
        settle(page)
        expect(cards[1]).to_have_css("outline-style", "solid", timeout=WAIT)
        expect(cards[1].locator(f".st-key-publish_{second} kbd")).to_have_text("P")
        page.keyboard.press("p")  # publishes the focused (mild) review
        settle(page)
        expect(page.get_by_text("Published 1 review.")).to_be_visible(timeout=WAIT)
        expect(cards[1]).to_have_count(0)
        step(page, "support-reviews", 3, "published")

        total -= 1
        page.get_by_role("button", name="Next page").click()
        settle(page)
        expect(page.get_by_text(f"11–20 of {total:,} reviews", exact=True)).to_be_visible(timeout=WAIT)
        assert "page=2" in page.url
        settle(page)
        page.get_by_role("button", name="Select all shown").click()
        settle(page)
        page.get_by_role("button", name="Publish 10 selected").click()
        question = page.get_by_text("10 reviews become public on their mechanics' profiles")
        expect(question).to_be_visible(timeout=WAIT)  # asks first: nothing is published yet
        step(page, "support-reviews", 4, "bulk-publish-asks")
        page.get_by_role("button", name="Publish 10 reviews").click()
        settle(page)
        expect(page.get_by_text("Published 10 reviews.")).to_be_visible(timeout=WAIT)
        settle(page)
        step(page, "support-reviews", 5, "bulk-published")
