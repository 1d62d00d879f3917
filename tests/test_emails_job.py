"""The email job end to end: due milestones -> outbox -> the real resend SDK ->
a Resend-compatible server on loopback (``tests.local_resend``), on both backends
unless a test is about PostgreSQL's row locks."""

from __future__ import annotations

import collections
import datetime as dt
import os
import subprocess
import sys
import threading
import uuid

import pytest
import sqlalchemy as sa

from dashboard.core import schema as s
from dashboard.core.auth import Actor
from dashboard.core.errors import Conflict, Invalid, NotFound, PermissionDenied
from dashboard.core.settings import ROOT
from dashboard.domain.emails.outbox import decide, enqueue, skip_reason
from dashboard.domain.emails.worker import run_once
from jobs.emails import run_loop
from tests.emails_support import (
    DRIVER,
    MECHANIC,
    MINUTE,
    NOW,
    SUPPORT,
    booked,
    crash_after_sending,
    delivered_outbox_ids,
    settings_for,
)
from tests.factories import add_mechanic, add_session, add_user, staff_fixture

HOUR = dt.timedelta(hours=1)
ADMIN = Actor("boss@pitwall.example", "admin")
staff = staff_fixture(ADMIN)


def at(moment: dt.datetime):
    return lambda: moment


def outbox_rows(engine) -> dict:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(s.email_outbox)).mappings().all()
    return {(r["session_id"], r["milestone"]): r for r in rows}


def statuses(engine) -> dict:
    return {key: row["status"] for key, row in outbox_rows(engine).items()}


@pytest.fixture
def lifecycle(engine):
    """One session at each stage at NOW, and the outbox status each of its milestones must reach."""
    with engine.begin() as conn:
        mechanic = add_mechanic(conn, **MECHANIC)
        c = {name: add_user(conn, DRIVER, email=f"{name}@example.com") for name in "ABCDEFG"}
        assigned = {"mechanic_id": mechanic, "accepted_at": NOW - MINUTE}
        S = {
            "A": add_session(conn, c["A"], **booked()),
            "B": add_session(conn, c["B"], **booked(status="accepted", **assigned)),
            "C": add_session(conn, c["C"], **booked(status="accepted", scheduled_at=NOW + 3 * MINUTE, **assigned)),
            "D": add_session(
                conn,
                c["D"],
                **booked(
                    status="completed",
                    mechanic_id=mechanic,
                    created_at=NOW - 2 * HOUR,
                    accepted_at=NOW - 110 * MINUTE,
                    scheduled_at=NOW - 45 * MINUTE,
                    started_at=NOW - 45 * MINUTE,
                    ended_at=NOW - MINUTE,
                ),
            ),
            "E": add_session(
                conn,
                c["E"],
                **booked(
                    status="completed",
                    mechanic_id=mechanic,
                    created_at=NOW - 3 * HOUR,
                    accepted_at=NOW - 170 * MINUTE,
                    scheduled_at=NOW - 90 * MINUTE,
                    started_at=NOW - 90 * MINUTE,
                    ended_at=NOW - 30 * MINUTE,
                    summary_submitted_at=NOW - MINUTE,
                    findings="Worn pads",
                ),
            ),
            "F": add_session(conn, c["F"], **booked(status="accepted", scheduled_at=NOW - 4 * MINUTE, **assigned)),
            "G": add_session(conn, c["G"], **booked(scheduled_at=NOW - 3 * MINUTE)),
        }
    expected = {
        "A": {"booking_confirmed": "sent"},
        "B": {"booking_confirmed": "sent", "mechanic_assigned": "sent"},
        "C": {"booking_confirmed": "sent", "mechanic_assigned": "sent", "session_starting": "sent"},
        # found after the session started or its time passed: a confirmation would come too late
        "D": {
            "booking_confirmed": "skipped",
            "mechanic_assigned": "skipped",
            "session_starting": "skipped",
            "session_ended": "sent",
        },
        "E": {
            "booking_confirmed": "skipped",
            "mechanic_assigned": "skipped",
            "session_starting": "skipped",
            "session_ended": "sent",
            "summary_delivered": "sent",
        },
        "F": {
            "booking_confirmed": "skipped",
            "mechanic_assigned": "skipped",
            "session_starting": "skipped",
            "mechanic_nudge": "sent",
        },
        "G": {"booking_confirmed": "skipped", "session_starting": "skipped", "support_alert": "sent"},
    }
    return S, {(S[name], m): status for name, by_milestone in expected.items() for m, status in by_milestone.items()}


def test_each_milestone_is_enqueued_once_and_sent_once(engine, resend_api, lifecycle):
    sessions, expected = lifecycle
    settings = settings_for(resend_api, PITWALL_EMAIL_BATCH_SIZE="4")
    first = run_once(engine, settings, clock=at(NOW))
    assert statuses(engine) == expected
    sent = sum(status == "sent" for status in expected.values())
    assert first.outcomes["sent"] == sent and first.requests == -(-sent // 4)
    again = run_once(engine, settings, clock=at(NOW))
    assert sum(again.enqueued.values()) == 0 and again.requests == 0
    assert statuses(engine) == expected

    delivered = collections.Counter(delivered_outbox_ids(resend_api))
    rows = outbox_rows(engine)
    assert set(delivered) == {str(r["id"]) for r in rows.values() if r["status"] == "sent"}
    assert max(delivered.values()) == 1
    by_id = {str(r["id"]): r for r in rows.values()}
    for delivery in resend_api.deliveries:
        row = by_id[delivery.email["headers"]["X-Entity-Ref-ID"]]
        assert delivery.email["to"] == [row["recipient"]]
        assert row["provider_message_id"] == delivery.id and row["sent_at"] == NOW
    recipients = {key[1]: row["recipient"] for key, row in rows.items()}
    assert recipients["mechanic_nudge"] == "mechanic@example.com" and recipients["support_alert"] == SUPPORT
    for milestone in ("booking_confirmed", "mechanic_assigned", "session_starting"):
        assert rows[(sessions["F"], milestone)]["skip_reason"] == "late: the scheduled time had passed"
        assert rows[(sessions["D"], milestone)]["skip_reason"] == "late: the session had already started"
        assert rows[(sessions["E"], milestone)]["skip_reason"] == "late: the session had already started"


def test_every_request_carries_the_batch_key_and_the_settings(engine, resend_api):
    with engine.begin() as conn:
        add_session(conn, add_user(conn, DRIVER, email="a@example.com"), **booked())
    settings = settings_for(resend_api, PITWALL_EMAIL_REPLY_TO="help@pitwall.example")
    run_once(engine, settings, clock=at(NOW))
    (request,) = resend_api.requests
    row = next(iter(outbox_rows(engine).values()))
    assert request["path"] == "/emails/batch" and request["headers"]["x-batch-validation"] == "permissive"
    assert request["headers"]["idempotency-key"].startswith("pitwall-batch/")
    (delivery,) = resend_api.deliveries
    assert delivery.idempotency_key == request["headers"]["idempotency-key"]
    assert delivery.email["from"] == "Pitwall <mail@pitwall.example>"
    assert delivery.email["reply_to"] == "help@pitwall.example"
    assert {"name": "milestone", "value": "booking_confirmed"} in delivery.email["tags"]
    assert row["attempts"] == 1 and row["last_error"] is None


def test_opted_out_and_addressless_customers_are_skipped_with_the_reason(engine, resend_api):
    with engine.begin() as conn:
        opted_out = add_session(conn, add_user(conn, DRIVER, email="quiet@example.com", email_opt_out=True), **booked())
        no_address = add_session(conn, add_user(conn, DRIVER, email=""), **booked())
        alert = add_session(
            conn, add_user(conn, DRIVER, email="g@example.com"), **booked(scheduled_at=NOW - 3 * MINUTE)
        )
    result = run_once(engine, settings_for(resend_api, PITWALL_SUPPORT_EMAIL=""), clock=at(NOW))
    rows = outbox_rows(engine)
    assert rows[(opted_out, "booking_confirmed")]["skip_reason"] == "customer opted out of emails"
    assert rows[(no_address, "booking_confirmed")]["skip_reason"] == "no email address"
    assert rows[(no_address, "booking_confirmed")]["recipient"] == ""
    assert rows[(alert, "support_alert")]["skip_reason"] == "no support address configured (PITWALL_SUPPORT_EMAIL)"
    assert rows[(alert, "booking_confirmed")]["skip_reason"] == "late: the scheduled time had passed"
    assert {r["status"] for r in rows.values()} == {"skipped"}
    assert result.enqueued["skipped"] == 5 and result.outcomes["sent"] == 0 and not resend_api.requests


def test_old_milestones_are_skipped_and_older_ones_not_looked_for(engine, resend_api):
    with engine.begin() as conn:
        old = add_session(conn, add_user(conn, DRIVER, email="old@example.com"), **booked(created_at=NOW - 30 * HOUR))
        ancient = add_session(
            conn,
            add_user(conn, DRIVER, email="ancient@example.com"),
            **booked(
                status="completed",
                created_at=NOW - 30 * 24 * HOUR,
                scheduled_at=NOW - 29 * 24 * HOUR,
                ended_at=NOW - 29 * 24 * HOUR,
            ),
        )
    run_once(engine, settings_for(resend_api, PITWALL_EMAIL_MAX_AGE_HOURS="24"), clock=at(NOW))
    rows = outbox_rows(engine)
    assert rows[(old, "booking_confirmed")]["skip_reason"] == "older than the maximum age of 24 h"
    assert not [key for key in rows if key[0] == ancient]


def test_emails_that_became_late_before_sending_are_skipped(engine, resend_api):
    with engine.begin() as conn:
        sid = add_session(conn, add_user(conn, DRIVER, email="a@example.com"), **booked(scheduled_at=NOW + 4 * MINUTE))
    settings = settings_for(resend_api)
    resend_api.fail_next(429, "rate_limit_exceeded", retry_after=60)
    run_once(engine, settings, clock=at(NOW))  # enqueued on time, then held back by a 429
    with engine.begin() as conn:
        conn.execute(
            s.sessions.update().where(s.sessions.c.id == sid).values(status="live", started_at=NOW + 4 * MINUTE)
        )
    run_once(engine, settings, clock=at(NOW + 5 * MINUTE))
    rows = outbox_rows(engine)
    for milestone in ("booking_confirmed", "session_starting"):
        assert rows[(sid, milestone)]["status"] == "skipped"
        assert rows[(sid, milestone)]["skip_reason"] == "late: the session had already started"
    assert [d.email["tags"][0]["value"] for d in resend_api.deliveries] == ["support_alert"]  # live, no mechanic


def test_429_waits_for_retry_after_and_is_then_sent(engine, resend_api):
    with engine.begin() as conn:
        add_session(conn, add_user(conn, DRIVER, email="a@example.com"), **booked())
    settings = settings_for(resend_api)
    resend_api.fail_next(429, "rate_limit_exceeded", retry_after=150)
    first = run_once(engine, settings, clock=at(NOW))
    (row,) = outbox_rows(engine).values()
    assert first.stopped == "Resend rate limit" and first.summary().endswith("; stopped early: Resend rate limit")
    assert row["status"] == "pending" and row["attempts"] == 0  # a 429 costs no attempt
    assert row["next_attempt_at"] == NOW + dt.timedelta(seconds=150) and "429" in row["last_error"]
    assert row["provider_message_id"] is None  # certainly not processed: free to join any batch
    assert run_once(engine, settings, clock=at(NOW + 2 * MINUTE)).requests == 0
    run_once(engine, settings, clock=at(NOW + 3 * MINUTE))
    (row,) = outbox_rows(engine).values()
    assert row["status"] == "sent" and row["attempts"] == 1 and len(resend_api.deliveries) == 1


def test_5xx_is_retried_with_backoff_and_the_same_key(engine, resend_api):
    with engine.begin() as conn:
        add_session(conn, add_user(conn, DRIVER, email="a@example.com"), **booked())
    settings = settings_for(resend_api)
    resend_api.fail_next(500, "application_error")
    resend_api.fail_next(503, "service_unavailable")
    run_once(engine, settings, clock=at(NOW))
    run_once(engine, settings, clock=at(NOW + MINUTE))  # backoff after attempt 1: one minute
    (row,) = outbox_rows(engine).values()
    assert row["status"] == "pending" and row["next_attempt_at"] == NOW + 3 * MINUTE  # then two
    run_once(engine, settings, clock=at(NOW + 3 * MINUTE))
    keys = {r["headers"]["idempotency-key"] for r in resend_api.requests}
    assert len(resend_api.requests) == 3 and len(keys) == 1
    (row,) = outbox_rows(engine).values()
    assert row["status"] == "sent" and row["attempts"] == 3 and len(resend_api.deliveries) == 1


def test_5xx_fails_the_row_after_max_attempts(engine, resend_api):
    with engine.begin() as conn:
        add_session(conn, add_user(conn, DRIVER, email="a@example.com"), **booked())
    settings = settings_for(resend_api, PITWALL_EMAIL_MAX_ATTEMPTS="2")
    resend_api.fail_next(500, "application_error")
    resend_api.fail_next(500, "application_error")
    run_once(engine, settings, clock=at(NOW))
    run_once(engine, settings, clock=at(NOW + HOUR))
    (row,) = outbox_rows(engine).values()
    assert row["status"] == "failed" and row["last_error"].startswith("gave up after 2 attempts: 500")
    assert row["failure_cause"] == "outage"  # read once from the error, stored with it
    assert run_once(engine, settings, clock=at(NOW + 5 * HOUR)).requests == 0


@pytest.mark.parametrize(
    "status, name, cause",
    [
        (422, "validation_error", "rejected"),
        (400, "validation_error", "rejected"),
        (401, "missing_api_key", "key"),
        (403, "invalid_api_key", "key"),
    ],
)
def test_client_errors_are_not_retried(engine, resend_api, status, name, cause):
    with engine.begin() as conn:
        add_session(conn, add_user(conn, DRIVER, email="a@example.com"), **booked())
    settings = settings_for(resend_api)
    resend_api.fail_next(status, name)
    run_once(engine, settings, clock=at(NOW))
    assert run_once(engine, settings, clock=at(NOW + 5 * HOUR)).requests == 0
    (row,) = outbox_rows(engine).values()
    assert row["status"] == "failed" and row["attempts"] == 1 and row["last_error"].startswith(f"{status} {name}")
    assert row["failure_cause"] == cause
    assert len(resend_api.requests) == 1 and not resend_api.deliveries


def test_an_invalid_address_fails_alone(engine, resend_api):
    with engine.begin() as conn:
        good = add_session(conn, add_user(conn, DRIVER, email="good@example.com"), **booked())
        bad = add_session(conn, add_user(conn, DRIVER, email="not-an-address"), **booked())
    run_once(engine, settings_for(resend_api), clock=at(NOW))
    rows = outbox_rows(engine)
    assert rows[(good, "booking_confirmed")]["status"] == "sent"
    assert rows[(bad, "booking_confirmed")]["status"] == "failed"
    assert rows[(bad, "booking_confirmed")]["last_error"].startswith("rejected by Resend: Invalid `to` field")
    assert rows[(bad, "booking_confirmed")]["failure_cause"] == "address"


def test_admin_retry_sends_a_failed_email_again_and_is_audited(engine, resend_api):
    with engine.begin() as conn:
        add_session(conn, add_user(conn, DRIVER, email="a@example.com"), **booked())
    settings = settings_for(resend_api)
    resend_api.fail_next(422, "validation_error")
    run_once(engine, settings, clock=at(NOW))
    (row,) = outbox_rows(engine).values()
    admin = ADMIN
    with pytest.raises(PermissionDenied):
        decide(engine, Actor("help@pitwall.example", "support"), row["id"], "retry", NOW)
    decide(engine, admin, row["id"], "retry", NOW + MINUTE)
    with pytest.raises(Conflict, match="Only failed emails can be retried"):
        decide(engine, admin, row["id"], "retry", NOW + MINUTE)
    run_once(engine, settings, clock=at(NOW + 2 * MINUTE))
    (row,) = outbox_rows(engine).values()
    assert row["status"] == "sent" and row["attempts"] == 1 and len(resend_api.deliveries) == 1
    with engine.connect() as conn:
        (audit,) = conn.execute(sa.select(s.audit_log)).mappings().all()
    assert (audit["action"], audit["actor_email"], audit["entity_id"]) == (
        "email.retry",
        "boss@pitwall.example",
        str(row["id"]),
    )


def test_a_replayed_batch_whose_content_changed_is_recorded_as_sent(engine, resend_api):
    with engine.begin() as conn:
        sid = add_session(conn, add_user(conn, DRIVER, email="a@example.com"), **booked())
    settings = settings_for(resend_api)
    run_once(engine, settings, clock=at(NOW))
    (row,) = outbox_rows(engine).values()
    key = resend_api.requests[0]["headers"]["idempotency-key"]
    with engine.begin() as conn:  # as if the answer had been lost: the row waits under its key
        conn.execute(s.email_outbox.update().values(status="sending", provider_message_id=key))
        conn.execute(s.sessions.update().where(s.sessions.c.id == sid).values(price_cents=9900))
    run_once(engine, settings, clock=at(NOW + HOUR))
    (row,) = outbox_rows(engine).values()
    assert row["status"] == "sent" and "invalid_idempotent_request" in row["last_error"]
    assert len(resend_api.deliveries) == 1


# --- attempts per row, re-sends after a crash, the idempotency window ------------------


def test_a_row_out_of_attempts_fails_alone_and_its_batch_is_sent(engine, resend_api):
    with engine.begin() as conn:
        worn, *fresh = [add_session(conn, add_user(conn, DRIVER, email=f"{n}@example.com"), **booked()) for n in "abc"]
    settings = settings_for(resend_api, PITWALL_EMAIL_MAX_ATTEMPTS="5")
    with engine.begin() as conn:  # the first row has four attempts behind it, the others none
        enqueue(conn, NOW, settings)
        conn.execute(s.email_outbox.update().where(s.email_outbox.c.session_id == worn).values(attempts=4))
    resend_api.fail_next(500, "application_error")
    run_once(engine, settings, clock=at(NOW))  # one batch of three: attempts 5, 1, 1
    assert set(statuses(engine).values()) == {"pending"}
    run_once(engine, settings, clock=at(NOW + HOUR))
    rows = outbox_rows(engine)
    worn_row = rows[(worn, "booking_confirmed")]
    assert worn_row["status"] == "failed" and worn_row["last_error"].startswith("gave up after 5 attempts: 500")
    assert worn_row["failure_cause"] == "outage"
    assert [
        (rows[(sid, "booking_confirmed")]["status"], rows[(sid, "booking_confirmed")]["attempts"]) for sid in fresh
    ] == [("sent", 2), ("sent", 2)]
    first, second = resend_api.requests
    assert first["headers"]["idempotency-key"] == second["headers"]["idempotency-key"]
    assert len(resend_api.deliveries) == 2


def test_a_resent_batch_applies_every_rule_again(engine, resend_api):
    with engine.begin() as conn:
        names = ["cancelled", "opted_out", "started", "too_old", "unchanged"]
        people = {n: add_user(conn, DRIVER, email=f"{n}@example.com") for n in names}
        sid = {
            n: add_session(conn, people[n], **booked(created_at=NOW - (5 if n == "too_old" else 0) * MINUTE))
            for n in names
        }
    settings = settings_for(resend_api, PITWALL_EMAIL_MAX_AGE_HOURS="0.1")  # six minutes
    resend_api.fail_next(500, "application_error")  # not processed: the re-send decides
    run_once(engine, settings, clock=at(NOW))
    with engine.begin() as conn:
        session = s.sessions.c.id
        conn.execute(s.sessions.update().where(session == sid["cancelled"]).values(status="cancelled"))
        conn.execute(s.profiles.update().where(s.profiles.c.id == people["opted_out"]).values(email_opt_out=True))
        conn.execute(
            s.sessions.update().where(session == sid["started"]).values(status="live", started_at=NOW + MINUTE)
        )
    run_once(engine, settings, clock=at(NOW + 2 * MINUTE))
    rows = {name: outbox_rows(engine)[(sid[name], "booking_confirmed")] for name in names}
    assert {name: (row["status"], row["skip_reason"]) for name, row in rows.items()} == {
        "cancelled": ("skipped", "session cancelled"),
        "opted_out": ("skipped", "customer opted out of emails"),
        "started": ("skipped", "late: the session had already started"),
        "too_old": ("skipped", "older than the maximum age of 0.1 h"),
        "unchanged": ("sent", None),
    }
    bookings = [d.email["to"] for d in resend_api.deliveries if d.email["tags"][0]["value"] == "booking_confirmed"]
    assert bookings == [["unchanged@example.com"]]


def test_a_batch_that_reached_resend_keeps_its_ids_when_sent_again(engine, resend_api):
    _due_bookings(engine, 10)
    settings = settings_for(resend_api, PITWALL_EMAIL_LEASE_SECONDS="60")
    crash_after_sending(engine, settings, NOW)
    run_once(engine, settings, clock=at(NOW + 2 * MINUTE))  # past the lease
    rows = {str(r["id"]): r for r in outbox_rows(engine).values()}
    assert len(resend_api.deliveries) == 10 and len(resend_api.requests) == 2  # the same request again
    for delivery in resend_api.deliveries:
        row = rows[delivery.email["headers"]["X-Entity-Ref-ID"]]
        assert (row["status"], row["provider_message_id"], row["last_error"]) == ("sent", delivery.id, None)


def test_a_batch_that_reached_resend_is_sent_even_if_the_rules_changed_and_keeps_its_ids(engine, resend_api):
    _due_bookings(engine, 3)
    settings = settings_for(resend_api, PITWALL_EMAIL_LEASE_SECONDS="60")
    crash_after_sending(engine, settings, NOW)
    with engine.begin() as conn:
        cancelled = conn.execute(sa.select(s.sessions.c.id).limit(1)).scalar_one()
        conn.execute(s.sessions.update().where(s.sessions.c.id == cancelled).values(status="cancelled"))
    run_once(engine, settings, clock=at(NOW + 2 * MINUTE))
    # without the cancelled row the request differs: 409, so the first request was processed;
    # asked again with the first request's rows, Resend answers as the first time
    assert [r["headers"]["idempotency-key"] for r in resend_api.requests].count(
        resend_api.requests[0]["headers"]["idempotency-key"]
    ) == 3
    rows = {str(r["id"]): r for r in outbox_rows(engine).values()}
    assert len(resend_api.deliveries) == 3
    for delivery in resend_api.deliveries:
        row = rows[delivery.email["headers"]["X-Entity-Ref-ID"]]
        assert (row["status"], row["provider_message_id"]) == ("sent", delivery.id)


def test_a_refused_address_stays_failed_when_the_first_answer_is_fetched_again(engine, resend_api):
    with engine.begin() as conn:
        good = add_session(conn, add_user(conn, DRIVER, email="good@example.com"), **booked())
        bad = add_session(conn, add_user(conn, DRIVER, email="not-an-address"), **booked())
    settings = settings_for(resend_api, PITWALL_EMAIL_LEASE_SECONDS="60")
    crash_after_sending(engine, settings, NOW)
    with engine.begin() as conn:
        conn.execute(s.sessions.update().where(s.sessions.c.id == good).values(status="cancelled"))
    run_once(engine, settings, clock=at(NOW + 2 * MINUTE))
    rows = outbox_rows(engine)
    (delivery,) = resend_api.deliveries
    assert (rows[(good, "booking_confirmed")]["status"], rows[(good, "booking_confirmed")]["provider_message_id"]) == (
        "sent",
        delivery.id,
    )
    assert rows[(bad, "booking_confirmed")]["status"] == "failed"
    assert rows[(bad, "booking_confirmed")]["last_error"].startswith("rejected by Resend: Invalid `to` field")
    assert rows[(bad, "booking_confirmed")]["failure_cause"] == "address"


def test_a_batch_older_than_the_idempotency_window_is_held_for_an_admin(engine, resend_api):
    with engine.begin() as conn:
        for name in "ab":
            add_session(
                conn, add_user(conn, DRIVER, email=f"{name}@example.com"), **booked(scheduled_at=NOW + 72 * HOUR)
            )
    settings = settings_for(resend_api, PITWALL_EMAIL_MAX_AGE_HOURS="72")
    key = crash_after_sending(engine, settings, NOW)
    resend_api.age_keys(25 * 3600)  # Resend has forgotten the key
    later = NOW + 25 * HOUR
    result = run_once(engine, settings, clock=at(later))
    assert result.outcomes["uncertain"] == 2 and "uncertain 2" in result.summary()
    assert len(resend_api.deliveries) == 2 and len(resend_api.requests) == 1  # nothing sent again
    rows = list(outbox_rows(engine).values())
    assert {(r["status"], r["provider_message_id"]) for r in rows} == {("uncertain", key)}
    assert "Resend forgets the batch's idempotency key after 24 h" in rows[0]["last_error"]
    assert run_once(engine, settings, clock=at(later + HOUR)).requests == 0  # held until an admin decides

    admin = ADMIN
    decide(engine, admin, rows[0]["id"], "mark_sent", later)
    decide(engine, admin, rows[1]["id"], "send_again", later)
    run_once(engine, settings, clock=at(later + MINUTE))
    after = {r["id"]: r for r in outbox_rows(engine).values()}
    assert (after[rows[0]["id"]]["status"], after[rows[0]["id"]]["sent_at"]) == ("sent", NOW)
    assert after[rows[1]["id"]]["status"] == "sent"
    assert collections.Counter(delivered_outbox_ids(resend_api))[str(rows[1]["id"])] == 2  # the admin's choice
    with engine.connect() as conn:
        actions = sorted(conn.execute(sa.select(s.audit_log.c.action)).scalars())
    assert actions == ["email.mark_sent", "email.send_again"]


def test_decisions_are_refused_for_the_wrong_row_role_or_decision(engine, resend_api):
    _due_bookings(engine, 1)
    run_once(engine, settings_for(resend_api), clock=at(NOW))
    (row,) = outbox_rows(engine).values()
    admin = ADMIN
    with pytest.raises(Conflict, match="Only uncertain emails can be decided on; this one is sent"):
        decide(engine, admin, row["id"], "mark_sent", NOW)
    with pytest.raises(Invalid, match="Unknown decision 'delete'"):
        decide(engine, admin, row["id"], "delete", NOW)
    with pytest.raises(NotFound, match="There is no email"):
        decide(engine, admin, uuid.uuid4(), "send_again", NOW)
    with pytest.raises(Invalid, match="'1; DROP TABLE email_outbox' is not an email id"):
        decide(engine, admin, "1; DROP TABLE email_outbox", "send_again", NOW)
    with pytest.raises(PermissionDenied):
        decide(engine, Actor("help@pitwall.example", "support"), row["id"], "send_again", NOW)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.audit_log)).scalar_one() == 0
    assert statuses(engine) == {(row["session_id"], "booking_confirmed"): "sent"}


_STARTED = {"status": "live", "started_at": NOW - 10 * MINUTE, "scheduled_at": NOW - 10 * MINUTE}
_ENDED = {"status": "completed", "started_at": NOW - 2 * HOUR, "scheduled_at": NOW - 2 * HOUR, "ended_at": NOW - HOUR}


@pytest.mark.parametrize(
    "milestone, facts, reason",
    [
        ("booking_confirmed", _STARTED, "late: the session had already started"),
        ("booking_confirmed", _ENDED, "late: the session had already started"),
        ("booking_confirmed", {"scheduled_at": NOW - MINUTE}, "late: the scheduled time had passed"),
        ("mechanic_assigned", {"scheduled_at": NOW - MINUTE}, "late: the scheduled time had passed"),
        ("session_starting", _STARTED, "late: the session had already started"),
        ("session_ended", {**_ENDED, "ended_at": NOW - 25 * HOUR}, "older than the maximum age of 24 h"),
        (
            "summary_delivered",
            {**_ENDED, "summary_submitted_at": NOW - 25 * HOUR},
            "older than the maximum age of 24 h",
        ),
        (
            "mechanic_nudge",
            {"status": "accepted", "scheduled_at": NOW - 61 * MINUTE},
            "late: more than 1 h after the scheduled time",
        ),
        (
            "support_alert",
            {"scheduled_at": NOW - 61 * MINUTE, "problem": "no_mechanic"},
            "late: more than 1 h after the scheduled time",
        ),
    ],
)
def test_every_milestone_has_a_lateness_rule(resend_api, milestone, facts, reason):
    base = {
        "customer_email": "a@example.com",
        "mechanic_email": "m@example.com",
        "opted_out": False,
        "status": "scheduled",
        "created_at": NOW - 2 * HOUR,
        "scheduled_at": NOW + HOUR,
        "started_at": None,
        "accepted_at": NOW - HOUR,
        "ended_at": None,
        "summary_submitted_at": None,
        "nudge_due": True,
        "problem": None,
    }
    settings = settings_for(resend_api)
    assert skip_reason(milestone, {**base, **facts}, NOW, settings) == reason
    on_time = {
        "session_ended": {**_ENDED},
        "summary_delivered": {**_ENDED, "summary_submitted_at": NOW - HOUR},
        "mechanic_nudge": {"status": "accepted", "scheduled_at": NOW - 4 * MINUTE},
        "support_alert": {"scheduled_at": NOW - 3 * MINUTE, "problem": "no_mechanic"},
    }.get(milestone, {})
    assert skip_reason(milestone, {**base, **on_time}, NOW, settings) is None


def databases_at(revision: str, tmp_path, request):
    """A new DuckDB file, then a new PostgreSQL database, each migrated up to ``revision`` only."""
    from alembic import command

    from dashboard.core.db import make_engine
    from dashboard.core.migrate import alembic_config

    for url in (f"duckdb:///{tmp_path / 'old.duckdb'}", request.getfixturevalue("empty_pg_url")):
        engine = make_engine(url)
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
        try:
            yield engine
        finally:
            engine.dispose()


def test_step_18_keeps_the_outbox_and_accepts_the_uncertain_status(tmp_path, request):
    from dashboard.core.migrate import upgrade

    for engine in databases_at("0017_period_indexes", tmp_path, request):
        with engine.begin() as conn:
            customer = uuid.uuid4()
            conn.execute(s.users.insert().values(id=customer, email="a@example.com"))
            conn.execute(
                sa.text(
                    "INSERT INTO requests (id, customer_id, vehicle_make, vehicle_model, vehicle_year, "
                    "category, description, status) VALUES (:r, :c, 'Honda', 'Civic', 2017, 'brakes', "
                    "'noise', 'matched')"
                ),
                {"r": (request_id := uuid.uuid4()), "c": customer},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO sessions (id, request_id, customer_id, session_type, status, "
                    "scheduled_at, price_cents) VALUES (:s, :r, :c, 'video', 'scheduled', now(), 4900)"
                ),
                {"s": (session_id := uuid.uuid4()), "r": request_id, "c": customer},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO email_outbox (session_id, milestone, recipient, status) "
                    "VALUES (:s, 'booking_confirmed', 'a@example.com', 'sent')"
                ),
                {"s": session_id},
            )
        upgrade(engine)
        with engine.begin() as conn:
            assert conn.execute(sa.select(s.email_outbox.c.status, s.email_outbox.c.batch_started_at)).all() == [
                ("sent", None)
            ]
            conn.execute(s.email_outbox.update().values(status="uncertain"))
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(s.email_outbox.update().values(status="lost"))


def test_step_22_stores_the_cause_of_the_emails_that_failed_before(tmp_path, request):
    from dashboard.core.migrate import upgrade

    for engine in databases_at("0021_speed", tmp_path, request):
        with engine.begin() as conn:
            customer = add_user(conn, DRIVER, email="a@example.com")
            session_id = add_session(conn, customer, **booked())
            for milestone, status, error in [
                ("booking_confirmed", "failed", "gave up after 5 attempts: 503 service_unavailable: down"),
                ("mechanic_assigned", "failed", "rejected by Resend: The address is on the suppression list."),
                ("session_starting", "failed", None),
                ("session_ended", "pending", "500 application_error: once"),  # failed before, queued again
            ]:
                conn.execute(
                    sa.text(
                        "INSERT INTO email_outbox (session_id, milestone, recipient, status, last_error) "
                        "VALUES (:s, :m, 'a@example.com', :status, :error)"
                    ),
                    {"s": session_id, "m": milestone, "status": status, "error": error},
                )
        upgrade(engine)
        with engine.begin() as conn:
            causes = dict(conn.execute(sa.select(s.email_outbox.c.milestone, s.email_outbox.c.failure_cause)).all())
        assert causes == {
            "booking_confirmed": "outage",
            "mechanic_assigned": "address",
            "session_starting": "other",
            "session_ended": None,  # only a failed row has a cause
        }
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(s.email_outbox.update().values(failure_cause="gremlins"))


# --- PostgreSQL: two workers, and a worker killed mid-batch ---------------------------


def _due_bookings(engine, count: int, now: dt.datetime = NOW) -> None:
    with engine.begin() as conn:
        for i in range(count):
            add_session(
                conn,
                add_user(conn, DRIVER, email=f"c{i}@example.com"),
                **booked(created_at=now - MINUTE, scheduled_at=now + dt.timedelta(days=1)),
            )


def test_two_workers_in_parallel_send_no_duplicate(pg_engine, resend_api):
    _due_bookings(pg_engine, 120)
    resend_api.delay = 0.02
    settings = settings_for(resend_api, PITWALL_EMAIL_BATCH_SIZE="10")
    results = []
    workers = [
        threading.Thread(target=lambda: results.append(run_once(pg_engine, settings, clock=at(NOW)))) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    delivered = collections.Counter(delivered_outbox_ids(resend_api))
    assert len(delivered) == 120 and max(delivered.values()) == 1
    assert set(statuses(pg_engine).values()) == {"sent"}
    assert sum(r.outcomes["sent"] for r in results) == 120 and all(r.requests for r in results)
    assert sum(sum(r.enqueued.values()) for r in results) == 120


def test_the_loop_runs_on_the_real_clock_until_stopped(engine, resend_api):
    _due_bookings(engine, 3, now=dt.datetime.now(dt.UTC))
    stop, lines = threading.Event(), []

    def report(line: str) -> None:
        lines.append(line)
        if len(lines) == 2:
            stop.set()

    run_loop(engine, settings_for(resend_api), 0.01, stop, report)
    assert "sent 3," in lines[0] and "enqueued 0 " in lines[1] and len(resend_api.deliveries) == 3


def test_the_cli_explains_a_locked_embedded_database(tmp_path, _duckdb_template):
    import shutil

    import duckdb

    path = tmp_path / "pitwall.duckdb"
    shutil.copy(_duckdb_template, path)
    holder = duckdb.connect(str(path))  # the app, holding the one writer lock
    try:
        env = {
            **os.environ,
            "PITWALL_DUCKDB_PATH": str(path),
            "RESEND_API_KEY": "re_x",
            "PITWALL_SECRETS": str(tmp_path / "absent.toml"),
        }
        env.pop("DATABASE_URL", None)
        done = subprocess.run(
            [sys.executable, "-m", "dashboard", "emails", "--once"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        holder.close()
    assert done.returncode == 2 and done.stdout == ""
    assert "is open in another process" in done.stderr and "Emails page" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_cli_asks_for_an_api_key(engine, monkeypatch, capsys):
    from dashboard.__main__ import main

    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.delenv("RESEND_API_KEY", raising=False)
    monkeypatch.setenv("PITWALL_SECRETS", "/nonexistent/secrets.toml")
    assert main(["emails", "--once"]) == 2
    assert "RESEND_API_KEY is not set" in capsys.readouterr().err
