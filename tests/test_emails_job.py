"""The email job end to end: due milestones -> outbox -> the real resend SDK ->
a Resend-compatible server on loopback (``jobs.local_resend``), on both backends
unless a test is about PostgreSQL's row locks."""

from __future__ import annotations

import collections
import datetime as dt
import os
import signal
import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa

from dashboard import schema as s
from dashboard.auth import Actor, PermissionDenied
from dashboard.config import ROOT
from jobs.emails.outbox import RetryRefused, retry
from jobs.emails.worker import run_loop, run_once
from emails_support import (
    MINUTE, NOW, SUPPORT, add_mechanic, add_person, add_session, delivered_outbox_ids, resend_api, settings_for,
)

__all__ = ["resend_api"]  # the fixture, used by name
HOUR = dt.timedelta(hours=1)


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
        mechanic = add_mechanic(conn)
        c = {name: add_person(conn, f"{name}@example.com") for name in "ABCDEFG"}
        assigned = {"mechanic_id": mechanic, "accepted_at": NOW - MINUTE}
        S = {
            "A": add_session(conn, c["A"]),
            "B": add_session(conn, c["B"], status="accepted", **assigned),
            "C": add_session(conn, c["C"], status="accepted", scheduled_at=NOW + 3 * MINUTE, **assigned),
            "D": add_session(conn, c["D"], status="completed", mechanic_id=mechanic, created_at=NOW - 2 * HOUR,
                             accepted_at=NOW - 110 * MINUTE, scheduled_at=NOW - 45 * MINUTE,
                             started_at=NOW - 45 * MINUTE, ended_at=NOW - MINUTE),
            "E": add_session(conn, c["E"], status="completed", mechanic_id=mechanic, created_at=NOW - 3 * HOUR,
                             accepted_at=NOW - 170 * MINUTE, scheduled_at=NOW - 90 * MINUTE,
                             started_at=NOW - 90 * MINUTE, ended_at=NOW - 30 * MINUTE,
                             summary_submitted_at=NOW - MINUTE, findings="Worn pads"),
            "F": add_session(conn, c["F"], status="accepted", scheduled_at=NOW - 4 * MINUTE, **assigned),
            "G": add_session(conn, c["G"], scheduled_at=NOW - 3 * MINUTE),
        }
    expected = {
        "A": {"booking_confirmed": "sent"},
        "B": {"booking_confirmed": "sent", "mechanic_assigned": "sent"},
        "C": {"booking_confirmed": "sent", "mechanic_assigned": "sent", "session_starting": "sent"},
        # found after the session started or its time passed: a confirmation would come too late
        "D": {"booking_confirmed": "skipped", "mechanic_assigned": "skipped", "session_starting": "skipped",
              "session_ended": "sent"},
        "E": {"booking_confirmed": "skipped", "mechanic_assigned": "skipped", "session_starting": "skipped",
              "session_ended": "sent", "summary_delivered": "sent"},
        "F": {"booking_confirmed": "skipped", "mechanic_assigned": "skipped", "session_starting": "skipped",
              "mechanic_nudge": "sent"},
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
        add_session(conn, add_person(conn, "a@example.com"))
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
        opted_out = add_session(conn, add_person(conn, "quiet@example.com", opt_out=True))
        no_address = add_session(conn, add_person(conn, ""))
        alert = add_session(conn, add_person(conn, "g@example.com"), scheduled_at=NOW - 3 * MINUTE)
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
        old = add_session(conn, add_person(conn, "old@example.com"), created_at=NOW - 30 * HOUR)
        ancient = add_session(conn, add_person(conn, "ancient@example.com"), status="completed",
                              created_at=NOW - 30 * 24 * HOUR, scheduled_at=NOW - 29 * 24 * HOUR,
                              ended_at=NOW - 29 * 24 * HOUR)
    run_once(engine, settings_for(resend_api, PITWALL_EMAIL_MAX_AGE_HOURS="24"), clock=at(NOW))
    rows = outbox_rows(engine)
    assert rows[(old, "booking_confirmed")]["skip_reason"] == "older than the maximum age of 24 h"
    assert not [key for key in rows if key[0] == ancient]


def test_emails_that_became_late_before_sending_are_skipped(engine, resend_api):
    with engine.begin() as conn:
        sid = add_session(conn, add_person(conn, "a@example.com"), scheduled_at=NOW + 4 * MINUTE)
    settings = settings_for(resend_api)
    resend_api.fail_next(429, "rate_limit_exceeded", retry_after=60)
    run_once(engine, settings, clock=at(NOW))  # enqueued on time, then held back by a 429
    with engine.begin() as conn:
        conn.execute(s.sessions.update().where(s.sessions.c.id == sid).values(
            status="live", started_at=NOW + 4 * MINUTE))
    run_once(engine, settings, clock=at(NOW + 5 * MINUTE))
    rows = outbox_rows(engine)
    for milestone in ("booking_confirmed", "session_starting"):
        assert rows[(sid, milestone)]["status"] == "skipped"
        assert rows[(sid, milestone)]["skip_reason"] == "late: the session had already started"
    assert [d.email["tags"][0]["value"] for d in resend_api.deliveries] == ["support_alert"]  # live, no mechanic


def test_429_waits_for_retry_after_and_is_then_sent(engine, resend_api):
    with engine.begin() as conn:
        add_session(conn, add_person(conn, "a@example.com"))
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
        add_session(conn, add_person(conn, "a@example.com"))
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
        add_session(conn, add_person(conn, "a@example.com"))
    settings = settings_for(resend_api, PITWALL_EMAIL_MAX_ATTEMPTS="2")
    resend_api.fail_next(500, "application_error")
    resend_api.fail_next(500, "application_error")
    run_once(engine, settings, clock=at(NOW))
    run_once(engine, settings, clock=at(NOW + HOUR))
    (row,) = outbox_rows(engine).values()
    assert row["status"] == "failed" and row["last_error"].startswith("gave up after 2 attempts: 500")
    assert run_once(engine, settings, clock=at(NOW + 5 * HOUR)).requests == 0


@pytest.mark.parametrize("status, name", [(422, "validation_error"), (400, "validation_error"),
                                          (401, "missing_api_key"), (403, "invalid_api_key")])
def test_client_errors_are_not_retried(engine, resend_api, status, name):
    with engine.begin() as conn:
        add_session(conn, add_person(conn, "a@example.com"))
    settings = settings_for(resend_api)
    resend_api.fail_next(status, name)
    run_once(engine, settings, clock=at(NOW))
    assert run_once(engine, settings, clock=at(NOW + 5 * HOUR)).requests == 0
    (row,) = outbox_rows(engine).values()
    assert row["status"] == "failed" and row["attempts"] == 1 and row["last_error"].startswith(f"{status} {name}")
    assert len(resend_api.requests) == 1 and not resend_api.deliveries


def test_an_invalid_address_fails_alone(engine, resend_api):
    with engine.begin() as conn:
        good = add_session(conn, add_person(conn, "good@example.com"))
        bad = add_session(conn, add_person(conn, "not-an-address"))
    run_once(engine, settings_for(resend_api), clock=at(NOW))
    rows = outbox_rows(engine)
    assert rows[(good, "booking_confirmed")]["status"] == "sent"
    assert rows[(bad, "booking_confirmed")]["status"] == "failed"
    assert rows[(bad, "booking_confirmed")]["last_error"].startswith("rejected by Resend: Invalid `to` field")


def test_admin_retry_sends_a_failed_email_again_and_is_audited(engine, resend_api):
    with engine.begin() as conn:
        add_session(conn, add_person(conn, "a@example.com"))
    settings = settings_for(resend_api)
    resend_api.fail_next(422, "validation_error")
    run_once(engine, settings, clock=at(NOW))
    (row,) = outbox_rows(engine).values()
    admin = Actor("boss@pitwall.example", "admin")
    with pytest.raises(PermissionDenied):
        retry(engine, Actor("help@pitwall.example", "support"), row["id"], NOW)
    retry(engine, admin, row["id"], NOW + MINUTE)
    with pytest.raises(RetryRefused, match="Only failed emails"):
        retry(engine, admin, row["id"], NOW + MINUTE)
    run_once(engine, settings, clock=at(NOW + 2 * MINUTE))
    (row,) = outbox_rows(engine).values()
    assert row["status"] == "sent" and row["attempts"] == 1 and len(resend_api.deliveries) == 1
    with engine.connect() as conn:
        (audit,) = conn.execute(sa.select(s.audit_log)).mappings().all()
    assert (audit["action"], audit["actor_email"], audit["entity_id"]) == (
        "email.retry", "boss@pitwall.example", str(row["id"]))


def test_a_replayed_batch_whose_content_changed_is_recorded_as_sent(engine, resend_api):
    with engine.begin() as conn:
        sid = add_session(conn, add_person(conn, "a@example.com"))
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


# --- PostgreSQL: two workers, and a worker killed mid-batch ---------------------------


def _due_bookings(engine, count: int, now: dt.datetime = NOW) -> None:
    with engine.begin() as conn:
        for i in range(count):
            add_session(conn, add_person(conn, f"c{i}@example.com"), created_at=now - MINUTE,
                        scheduled_at=now + dt.timedelta(days=1))


def test_two_workers_in_parallel_send_no_duplicate(pg_engine, resend_api):
    _due_bookings(pg_engine, 120)
    resend_api.delay = 0.02
    settings = settings_for(resend_api, PITWALL_EMAIL_BATCH_SIZE="10")
    results = []
    workers = [threading.Thread(target=lambda: results.append(run_once(pg_engine, settings, clock=at(NOW))))
               for _ in range(2)]
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
    _due_bookings(engine, 3, now=dt.datetime.now(dt.timezone.utc))
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
        env = {**os.environ, "PITWALL_DUCKDB_PATH": str(path), "RESEND_API_KEY": "re_x",
               "PITWALL_SECRETS": str(tmp_path / "absent.toml")}
        env.pop("DATABASE_URL", None)
        done = subprocess.run([sys.executable, "-m", "jobs", "emails", "--once"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
    finally:
        holder.close()
    assert done.returncode == 2 and done.stdout == ""
    assert "is open in another process" in done.stderr and "Emails page" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_cli_asks_for_an_api_key(engine, monkeypatch, capsys):
    from jobs.__main__ import main

    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.delenv("RESEND_API_KEY", raising=False)
    monkeypatch.setenv("PITWALL_SECRETS", "/nonexistent/secrets.toml")
    assert main(["emails", "--once"]) == 2
    assert "RESEND_API_KEY is not set" in capsys.readouterr().err
