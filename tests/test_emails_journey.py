"""The admin journey through the Emails page in a browser: a link's ``?status=failed`` opens the
failures grouped by cause, the Resend outage is retried all at once after a confirmation, the
suppressed address offers no retry, "Run now" says why it cannot run (the demo has no Resend
key), and the outbox names the customer with a link to their lookup."""

from __future__ import annotations

import datetime as dt
import re

from dashboard.core import schema as s
from tests.browser_support import browser_page, open_page, settle
from tests.factories import add_session, add_user
from tests.journey_support import step

CUSTOMER = "Olga Outage"
OUTAGE = "gave up after 5 attempts: 503 application_error: Service Unavailable"
SUPPRESSED = "rejected by Resend: The address <b>is</b> on the suppression list"


def prepare(engine) -> None:
    """Only these failures: three emails to Olga the Resend outage failed, one to a suppressed address."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with engine.begin() as conn:
        conn.execute(s.email_outbox.delete().where(s.email_outbox.c.status == "failed"))
        olga = add_user(conn, CUSTOMER, email="olga@example.com")
        sessions = [add_session(conn, olga, ended_at=now - dt.timedelta(hours=n)) for n in range(4)]
        conn.execute(
            s.email_outbox.insert(),
            [
                {
                    "session_id": session,
                    "milestone": "session_ended",
                    "recipient": "olga@example.com",
                    "status": "failed",
                    "attempts": 5,
                    "last_error": OUTAGE if n < 3 else SUPPRESSED,
                    "failure_cause": "outage" if n < 3 else "address",
                    "created_at": now - dt.timedelta(hours=n),
                    "updated_at": now - dt.timedelta(minutes=n),
                }
                for n, session in enumerate(sessions)
            ],
        )


def test_admin_sees_failures_by_cause_and_retries_the_outage(journey_app):
    from playwright.sync_api import expect

    url = journey_app("admin", prepare)
    with browser_page() as page:
        open_page(page, f"{url}/emails?status=failed", "Emails")
        expect(page.get_by_role("tab", name="Failed emails")).to_have_attribute("aria-selected", "true")
        outage = page.locator(".st-key-cause_outage")
        expect(outage).to_contain_text("Resend outage · 3 emails")
        expect(outage).to_contain_text("once Resend works again, retry them all")
        expect(page.locator(".st-key-cause_address")).to_contain_text("Suppressed or invalid address · 1 email")
        run_now = page.locator(".st-key-run_now")
        expect(run_now.get_by_role("button", name="Run now")).to_be_disabled()
        expect(run_now).to_contain_text("No Resend key is configured: set RESEND_API_KEY")  # said, not only on hover
        page.get_by_role("tab", name="Failed emails").scroll_into_view_if_needed()
        step(page, "admin-emails", 1, "failures-by-cause")

        outage.get_by_role("button", name="Retry all 3 failed by the Resend outage").click()
        expect(page.get_by_text("Queue these 3 emails again?")).to_be_visible()
        step(page, "admin-emails", 2, "retry-all-confirm")
        page.locator(".st-key-retry_cause_outage button").click()
        expect(page.get_by_text("Queued 3 emails again: the job sends them on its next run.")).to_be_visible()
        expect(page.locator(".st-key-cause_outage")).to_have_count(0)
        settle(page)
        address = page.locator("[class*='st-key-failed_']")
        expect(address).to_have_count(1)  # only the suppressed one is left
        expect(address).to_contain_text("No retry: Resend will not deliver to these addresses")
        expect(address).to_contain_text(SUPPRESSED)  # plain text
        expect(address.get_by_role("button", name="Retry")).to_have_count(0)
        expect(address.get_by_role("link", name=CUSTOMER)).to_have_attribute(
            "href", re.compile(r"customers\?customer=")
        )
        step(page, "admin-emails", 3, "address-no-retry")

        page.get_by_role("tab", name="Outbox").click()
        expect(page).not_to_have_url(re.compile(r"[?&]status="))  # the URL says which tab is open
        settle(page)
        table = page.get_by_test_id("stDataFrame").first
        expect(table).to_be_visible()
        table.scroll_into_view_if_needed()
        box = table.bounding_box()
        assert box["x"] + box["width"] <= 1280, box  # the table fits the window
        step(page, "admin-emails", 4, "outbox")
        page.set_viewport_size({"width": 1920, "height": 1080})
        settle(page)
        step(page, "admin-emails", 5, "outbox-1920")
