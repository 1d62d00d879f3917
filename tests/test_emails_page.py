"""The Emails page with streamlit's AppTest, on both databases: the outbox and its
filters (names linking to the customer), the failures grouped by cause with an audited,
role-checked retry only where it helps and a bulk retry of an outage, "Run now" through the
loopback Resend and why it is unavailable, ``?status=`` links, and the template previews."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from dashboard.core import schema as s
from dashboard.core.auth import Actor
from dashboard.core.period import Period
from dashboard.core.settings import load_settings
from dashboard.ui import components as ui
from tests.emails_support import DRIVER, booked
from tests.factories import add_session, add_user, staff_fixture

PAGE = Path(__file__).resolve().parents[1] / "pages" / "emails.py"
ADMIN = Actor("ada@example.com", "admin", "Ada Admin")
SUPPORT = Actor("sam@example.com", "support", "Sam Support")
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
staff = staff_fixture(ADMIN, SUPPORT)


@pytest.fixture
def outbox(engine, resend_api, monkeypatch, tmp_path):
    """Three queued emails today (one failed) and one due booking; settings point at the loopback Resend."""
    monkeypatch.setenv("PITWALL_SECRETS", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("RESEND_API_KEY", resend_api.api_key)
    monkeypatch.setenv("RESEND_API_URL", resend_api.url)
    ui.clear_query_cache()  # PostgreSQL tests share one database URL, and with it the query cache
    with engine.begin() as conn:
        done = add_session(
            conn, add_user(conn, DRIVER, email="done@example.com"), **booked(created_at=NOW - dt.timedelta(days=3))
        )
        row = {
            "session_id": done,
            "created_at": NOW - dt.timedelta(minutes=5),
            "updated_at": NOW,
            "last_error": None,
            "skip_reason": None,
        }
        failed_id = conn.execute(
            s.email_outbox.insert().returning(s.email_outbox.c.id),
            [
                {
                    **row,
                    "milestone": "session_ended",
                    "recipient": "<b>x</b>@example.com",
                    "status": "failed",
                    "attempts": 1,
                    "last_error": "gave up after 5 attempts: 503 application_error: Service Unavailable",
                    "failure_cause": "outage",
                },
            ],
        ).scalar_one()
        conn.execute(
            s.email_outbox.insert(),
            [
                {**row, "milestone": "booking_confirmed", "recipient": "done@example.com", "status": "sent"},
                {
                    **row,
                    "milestone": "mechanic_assigned",
                    "recipient": "done@example.com",
                    "status": "skipped",
                    "skip_reason": "customer opted out of emails",
                },
            ],
        )
        due = add_session(
            conn,
            add_user(conn, DRIVER, email="due@example.com"),
            **booked(created_at=NOW - dt.timedelta(minutes=1), scheduled_at=NOW + dt.timedelta(days=1)),
        )
    return engine, failed_id, due


@pytest.fixture
def uncertain(outbox):
    """Two uncertain emails today: their batch went out 26 hours ago and was never answered."""
    engine = outbox[0]
    started = NOW - dt.timedelta(hours=26)
    with engine.begin() as conn:
        sid = add_session(
            conn, add_user(conn, DRIVER, email="unsure@example.com"), **booked(created_at=NOW - dt.timedelta(days=2))
        )
        return [
            conn.execute(
                s.email_outbox.insert()
                .returning(s.email_outbox.c.id)
                .values(
                    session_id=sid,
                    milestone=milestone,
                    recipient="unsure@example.com",
                    status="uncertain",
                    attempts=1,
                    provider_message_id="pitwall-batch/5d1e",
                    batch_started_at=started,
                    created_at=NOW - dt.timedelta(minutes=3),
                    updated_at=NOW,
                    last_error="Its batch may have reached Resend",
                )
            ).scalar_one()
            for milestone in ("booking_confirmed", "mechanic_assigned")
        ]


def open_page(engine, actor: Actor = ADMIN, **query) -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.query_params.update(query)
    settings = load_settings(
        {
            **os.environ,
            "DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "PITWALL_ALLOW_ANONYMOUS": "true",
        }
    )  # the outbox fixture's loopback Resend
    today = NOW.date()
    at.session_state["_pitwall_context"] = ui.Context(settings, actor, Period(today - dt.timedelta(days=6), today))
    at.run()
    assert not at.exception, at.exception
    return at


def text(elements) -> str:
    return re.sub(r"\\(.)", r"\1", "\n".join(str(element.value) for element in elements))


def opened_tab(at: AppTest) -> int:
    """The position of the tab the page opens with (0: Outbox)."""

    def blocks(node):
        yield node
        for child in getattr(node, "children", {}).values():
            yield from blocks(child)

    tabs = [b.proto.tab_container for b in blocks(at.main) if getattr(b, "type", None) == "tab_container"]
    return tabs[0].default_tab_index  # the page's tabs (the template preview's come inside the last one)


def open_tab(at: AppTest, label: str) -> AppTest:
    at.session_state["emails_tab"] = label  # what a click on the tab sets
    at.run()
    assert not at.exception
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def audit_rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(s.audit_log)).mappings()]


def test_the_page_shows_counts_outbox_failures_and_template_previews(outbox):
    engine, failed_id, _ = outbox
    at = open_page(engine)
    assert (metric(at, "Sent"), metric(at, "Skipped"), metric(at, "Failed"), metric(at, "Waiting")) == (
        "1",
        "1",
        "1",
        "0",
    )
    table = at.dataframe[0].value
    assert sorted(table["status"]) == ["Failed", "Sent", "Skipped"]
    assert set(table["milestone"]) == {"Session ended", "Booking confirmed", "Mechanic assigned"}
    assert all(url.startswith("customers?customer=") and url.endswith("#Sam Driver") for url in table["to"].dropna())
    assert table["to"].isna().sum() == 1  # the failed one's address is not the customer's: shown as the address
    assert re.fullmatch(r"\d\d \w{3} \d{4}, \d\d:\d\d:\d\d", table["queued"].iloc[0])  # to the second
    assert metric(at, "Uncertain") == "0"
    assert at.multiselect(key="emails_statuses").options == [  # one label per status in the schema's CHECK
        "Waiting",
        "Sending",
        "Sent",
        "Failed",
        "Skipped",
        "Uncertain",
    ]
    assert "Skipped: customer opted out of emails" in set(table["note"])
    assert not at.code and not at.info  # the other tabs are built only when opened

    open_tab(at, "Uncertain emails")
    assert any("No email is uncertain." in i.value for i in at.info)
    open_tab(at, "Failed emails")
    assert at.code[0].value == "gave up after 5 attempts: 503 application_error: Service Unavailable"
    assert "Address: <b>x</b>@example.com" in [t.value for t in at.text]  # plain text, never markup
    assert at.button(key=f"retry_{failed_id}")
    assert "**Resend outage** · 1 email · latest" in text(at.markdown)
    open_tab(at, "Templates")
    assert any("**Subject:** Your session is booked for" in m.value for m in at.markdown)
    assert "Hi Jordan, thanks for booking" in at.code[-1].value  # the plain-text part

    at.selectbox(key="emails_template").set_value("summary_delivered").run()
    assert any("**Subject:** Your session summary from Priya Natarajan" in m.value for m in at.markdown)
    open_tab(at, "Outbox").multiselect(key="emails_statuses").set_value(["failed"]).run()
    assert list(at.dataframe[0].value["status"]) == ["Failed"]


def test_retry_queues_the_email_again_and_is_audited(outbox):
    engine, failed_id, _ = outbox
    at = open_page(engine, status="failed")
    at.button(key=f"retry_{failed_id}").click().run()
    assert not at.exception and not at.warning
    with engine.connect() as conn:
        row = conn.execute(sa.select(s.email_outbox).where(s.email_outbox.c.id == failed_id)).mappings().one()
    assert (row["status"], row["attempts"]) == ("pending", 0)
    assert metric(at, "Failed") == "0" and metric(at, "Waiting") == "1"  # the caches were cleared
    (audit,) = audit_rows(engine)
    assert (audit["action"], audit["actor_email"], audit["entity_id"]) == ("email.retry", ADMIN.email, str(failed_id))


def test_only_admins_can_retry_or_run_the_job(outbox):
    engine, failed_id, _ = outbox
    at = open_page(engine, SUPPORT, status="failed")
    at.button(key=f"retry_{failed_id}").click().run()
    assert "Only admin staff can do this" in at.warning[0].value
    run = next(b for b in at.button if b.label == "Run now")
    assert run.disabled
    assert "Only admins can run the email job; you are signed in as support." in text(at.caption)
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(s.email_outbox.c.status).where(s.email_outbox.c.id == failed_id)).scalar_one()
            == "failed"
        )
    assert not audit_rows(engine)


def test_run_now_sends_what_is_due_inside_the_app(outbox, resend_api):
    engine, _, due = outbox
    at = open_page(engine)
    run = next(b for b in at.button if b.label == "Run now")
    run.click().run()
    assert not at.exception and not at.warning
    assert "Run finished: enqueued 1 (1 to send, 0 skipped); sent 1" in at.success[0].value
    assert [d.email["to"] for d in resend_api.deliveries] == [["due@example.com"]]
    assert metric(at, "Sent") == "2"
    (audit,) = audit_rows(engine)
    assert audit["action"] == "email.run_now" and audit["actor_email"] == ADMIN.email


def test_run_now_is_disabled_without_an_api_key(outbox, monkeypatch):
    monkeypatch.delenv("RESEND_API_KEY")
    at = open_page(outbox[0])
    run = next(b for b in at.button if b.label == "Run now")
    assert run.disabled
    assert "No Resend key is configured: set RESEND_API_KEY" in text(at.caption)  # said beside it, not only on hover


def test_run_now_says_when_nothing_is_due(outbox, resend_api):
    engine = outbox[0]
    at = open_page(engine)
    assert "0 emails due now, and milestones to queue." in text(at.caption)
    next(b for b in at.button if b.label == "Run now").click().run()
    assert "Run finished" in at.success[0].value
    at.run()
    assert next(b for b in at.button if b.label == "Run now").disabled
    assert "Nothing is due: no email waits to be sent and no milestone is due yet." in text(at.caption)


def test_an_address_failure_offers_no_retry_and_an_outage_a_bulk_one(outbox):
    engine, failed_id, _ = outbox
    with engine.begin() as conn:
        sid = conn.execute(sa.select(s.email_outbox.c.session_id).where(s.email_outbox.c.id == failed_id)).scalar()
        bad_address = conn.execute(
            s.email_outbox.insert()
            .returning(s.email_outbox.c.id)
            .values(
                session_id=sid,
                milestone="summary_delivered",
                recipient="nobody",
                status="failed",
                attempts=1,
                last_error="rejected by Resend: Invalid `to` field. <b>x</b>",
                failure_cause="address",
                updated_at=NOW - dt.timedelta(minutes=1),
                created_at=NOW - dt.timedelta(minutes=2),
            )
        ).scalar_one()
    at = open_page(engine, status="failed")
    assert opened_tab(at) == 1  # the link opened the Failed emails tab
    assert "2 failed emails of any date, by cause, most first." in text(at.caption)
    shown = text(at.markdown)
    assert "**Resend outage** · 1 email" in shown and "**Suppressed or invalid address** · 1 email" in shown
    assert "Resend will not deliver to these addresses" in text(at.caption)
    at.segmented_control(key="emails_cause").set_value("address").run()
    assert f"retry_{bad_address}" not in [b.key for b in at.button]
    assert "No retry: Resend will not deliver to these addresses" in text(at.caption)
    assert "rejected by Resend: Invalid `to` field. <b>x</b>" in [c.value for c in at.code]  # plain text

    at.button(key="retry_cause_outage").click().run()  # "Retry all 1 failed by the Resend outage", confirmed
    assert not at.exception and not at.warning
    with engine.connect() as conn:
        statuses = dict(conn.execute(sa.select(s.email_outbox.c.id, s.email_outbox.c.status)).all())
    assert (statuses[failed_id], statuses[bad_address]) == ("pending", "failed")
    assert [(a["action"], a["entity_id"]) for a in audit_rows(engine)] == [("email.retry", str(failed_id))]
    assert "**Resend outage**" not in text(at.markdown)


def test_links_with_an_unknown_status_say_so(outbox):
    at = open_page(outbox[0], status="<script>x</script>")
    assert "The link's status “<script>x</script>” was ignored (use failed or uncertain)." in text(at.warning)
    assert opened_tab(at) == 0  # the Outbox


def test_admins_mark_uncertain_emails_as_sent_or_send_them_again_audited(outbox, uncertain):
    engine = outbox[0]
    mark, again = uncertain
    at = open_page(engine, status="uncertain")
    assert metric(at, "Uncertain") == "2"
    assert "Its batch may have reached Resend" in [c.value for c in at.code]
    at.button(key=f"mark_sent_{mark}").click().run()
    at.button(key=f"send_again_{again}").click().run()
    assert not at.exception and not at.warning
    with engine.connect() as conn:
        rows = {
            r["id"]: r
            for r in conn.execute(sa.select(s.email_outbox).where(s.email_outbox.c.id.in_(uncertain))).mappings()
        }
    assert (rows[mark]["status"], rows[mark]["sent_at"]) == ("sent", NOW - dt.timedelta(hours=26))
    assert (rows[again]["status"], rows[again]["attempts"], rows[again]["provider_message_id"]) == ("pending", 0, None)
    assert metric(at, "Uncertain") == "0" and metric(at, "Sent") == "2" and metric(at, "Waiting") == "1"
    assert [
        (a["action"], a["entity_id"], a["actor_email"])
        for a in sorted(audit_rows(engine), key=lambda a: a["created_at"])
    ] == [("email.mark_sent", str(mark), ADMIN.email), ("email.send_again", str(again), ADMIN.email)]


def test_only_admins_decide_on_uncertain_emails(outbox, uncertain):
    engine = outbox[0]
    at = open_page(engine, SUPPORT, status="uncertain")
    at.button(key=f"mark_sent_{uncertain[0]}").click().run()
    assert "Only admin staff can do this" in at.warning[0].value
    at.button(key=f"send_again_{uncertain[1]}").click().run()
    assert "Only admin staff can do this" in at.warning[0].value
    with engine.connect() as conn:
        assert set(
            conn.execute(sa.select(s.email_outbox.c.status).where(s.email_outbox.c.id.in_(uncertain))).scalars()
        ) == {"uncertain"}
    assert not audit_rows(engine)
