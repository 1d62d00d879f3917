"""The Emails page queries, on both backends: the outbox with who each email is for, counts per
day, failures grouped by cause (SQL and the Python classifier agree), and what a run would do."""

from __future__ import annotations

import datetime as dt
import uuid

import pandas as pd
import pytest
import sqlalchemy as sa

from dashboard.core import schema as s
from dashboard.core.period import Period
from dashboard.tools.bench.cases import CASES, BenchContext
from queries import emails as q
from tests.emails_support import DRIVER, NOW, booked
from tests.factories import add_session, add_user


def _outbox_row(when: dt.datetime, milestone: str, status: str, **columns) -> dict:
    return {
        "milestone": milestone,
        "recipient": f"{uuid.uuid4()}@x.com",
        "status": status,
        "created_at": when,
        "updated_at": when,
        "last_error": None,
        "failure_cause": None,
        "skip_reason": None,
        **columns,
    }


@pytest.fixture
def outbox_history(engine):
    with engine.begin() as conn:
        sid = add_session(conn, add_user(conn, DRIVER, email="c@example.com"), **booked())
        conn.execute(
            s.email_outbox.insert(),
            [
                _outbox_row(dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC), "booking_confirmed", "sent", session_id=sid),
                _outbox_row(
                    dt.datetime(2026, 3, 1, 13, tzinfo=dt.UTC),
                    "session_ended",
                    "failed",
                    session_id=sid,
                    last_error="500 application_error: boom",
                    failure_cause="outage",
                ),
                # 2 March 03:00 UTC is still 1 March in Chicago
                _outbox_row(
                    dt.datetime(2026, 3, 2, 3, tzinfo=dt.UTC),
                    "booking_confirmed",
                    "skipped",
                    session_id=sid,
                    skip_reason="customer opted out of emails",
                ),
                _outbox_row(dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC), "booking_confirmed", "sent", session_id=sid),
                _outbox_row(
                    dt.datetime(2026, 2, 20, 12, tzinfo=dt.UTC),
                    "summary_delivered",
                    "failed",
                    session_id=sid,
                    last_error="422 validation_error: bad",
                    failure_cause="rejected",
                ),
            ],
        )
        conn.execute(
            s.email_outbox.insert().values(
                _outbox_row(
                    dt.datetime(2026, 2, 21, 12, tzinfo=dt.UTC),
                    "mechanic_assigned",
                    "uncertain",
                    session_id=sid,
                    last_error="Its batch may have reached Resend",
                    batch_started_at=dt.datetime(2026, 2, 21, 11, tzinfo=dt.UTC),
                )
            )
        )


def test_outbox_filters_by_period_milestone_and_status(engine, outbox_history):
    period = Period(dt.date(2026, 3, 1), dt.date(2026, 3, 2), "UTC")
    with engine.connect() as conn:
        everything = q.outbox(conn, period=period)
        booked = q.outbox(conn, period=period, milestones=("booking_confirmed",))
        failed = q.outbox(conn, period=period, statuses=("failed", "skipped"))
        empty = q.outbox(conn, period=Period(dt.date(2025, 1, 1), dt.date(2025, 1, 2), "UTC"))
    assert list(everything.columns) == [*q.OUTBOX_COLUMNS, *q.RECIPIENT_COLUMNS] and len(everything) == 4
    assert everything["created_at"].is_monotonic_decreasing
    assert set(booked["milestone"]) == {"booking_confirmed"} and len(booked) == 3
    assert sorted(failed["status"]) == ["failed", "skipped"]
    assert empty.empty and list(empty.columns) == [*q.OUTBOX_COLUMNS, *q.RECIPIENT_COLUMNS]


def test_status_counts_per_day_use_the_display_timezone(engine, outbox_history):
    period = Period(dt.date(2026, 3, 1), dt.date(2026, 3, 2), "America/Chicago")
    with engine.connect() as conn:
        counts = q.status_counts_per_day(conn, period=period)
    got = {(str(row.day), row.status): row.emails for row in counts.itertuples()}
    assert got == {
        ("2026-03-01", "sent"): 1,
        ("2026-03-01", "failed"): 1,
        ("2026-03-01", "skipped"): 1,
        ("2026-03-02", "sent"): 1,
    }


def test_failed_lists_every_failed_row_newest_first(engine, outbox_history):
    with engine.connect() as conn:
        failed = q.awaiting_decision(conn, status="failed")
    assert list(failed["milestone"]) == ["session_ended", "summary_delivered"]
    assert failed["last_error"].iloc[0] == "500 application_error: boom"
    assert list(failed["cause"]) == ["outage", "rejected"]


def test_uncertain_rows_are_listed_apart_with_the_time_their_batch_started(engine, outbox_history):
    with engine.connect() as conn:
        uncertain = q.awaiting_decision(conn, status="uncertain")
        with pytest.raises(ValueError, match="status must be one of failed, uncertain"):
            q.awaiting_decision(conn, status="sent")
    assert list(uncertain["milestone"]) == ["mechanic_assigned"]
    assert uncertain["batch_started_at"].iloc[0] == pd.Timestamp("2026-02-21 11:00", tz="UTC")


def test_the_due_queries_and_page_queries_have_benchmark_cases(engine):
    ctx = BenchContext(start=NOW - dt.timedelta(days=30), end=NOW)
    cases = [case for case in CASES if case.name.startswith("emails.")]
    assert {f"emails.due.{m}" for m in s.EMAIL_MILESTONES} < {case.name for case in cases}
    with engine.connect() as conn:
        assert all(isinstance(case.query(conn, **case.arguments(conn, ctx)), pd.DataFrame) for case in cases)


ERRORS = {  # a stored error -> its cause, in every form the job writes
    "rejected by Resend: Invalid `to` field. The email address needs to follow the `a@example.com` format.": "address",
    "422 validation_error: Invalid `to` field": "address",
    "422 validation_error: The recipient is on the suppression list": "address",
    "rejected by Resend: Email bounced": "address",
    "could not render: UndefinedError: 'x' is undefined": "template",
    "401 missing_api_key: Missing API key in the authorization header.": "key",
    "403 invalid_api_key: API key is invalid.": "key",
    "gave up after 5 attempts: 429 rate_limit_exceeded: Too many requests": "rate_limited",
    "gave up after 5 attempts: 503 application_error: down": "outage",
    "500 application_error: boom": "outage",
    "gave up after 3 attempts: Resend could not be reached: Connection refused": "outage",
    "gave up after 5 attempts: no answer recorded: the worker stopped while sending": "outage",
    "422 validation_error: bad": "rejected",
    "400 validation_error: Missing `subject` field.": "rejected",
    "Something odd <b>%_'; DROP TABLE x; --": "other",
    None: "other",
}


@pytest.fixture
def failures(engine):
    """One failed email per error of ``ERRORS``, each a minute apart, failed before the outbox stored
    their cause and classified as the migration to step 22 does; and one sent and one waiting."""
    from dashboard.domain.emails.failures import classify_failed

    with engine.begin() as conn:
        sid = add_session(conn, add_user(conn, DRIVER, email="c@example.com"), **booked())
        rows = [
            _outbox_row(NOW - dt.timedelta(minutes=n), "booking_confirmed", "failed", session_id=sid, last_error=error)
            for n, error in enumerate(ERRORS)
        ]
        rows.append(_outbox_row(NOW, "session_ended", "sent", session_id=sid, last_error="503 application_error: once"))
        conn.execute(s.email_outbox.insert(), rows)
        waiting = _outbox_row(NOW, "summary_delivered", "pending", session_id=sid)
        conn.execute(s.email_outbox.insert().values({**waiting, "next_attempt_at": NOW - dt.timedelta(minutes=1)}))
        assert (classify_failed(conn), classify_failed(conn)) == (len(ERRORS), 0)  # once each
    return sid


def test_failures_group_by_cause_as_the_classifier_reads_them(engine, failures):
    from dashboard.domain.emails.failures import classify

    o = s.email_outbox
    with engine.connect() as conn:
        groups = q.failure_groups(conn)
        stored = dict(conn.execute(sa.select(o.c.last_error, o.c.failure_cause).where(o.c.status == "failed")).all())
        others = conn.execute(sa.select(o.c.failure_cause).where(o.c.status != "failed")).scalars().all()
        outage = q.awaiting_decision(conn, status="failed", cause="outage")
    assert stored == ERRORS and others == [None, None]  # SQL agrees with the table, for the failed rows only
    assert {error: classify(error).code for error in ERRORS} == ERRORS  # and so does Python
    assert list(zip(groups.cause, groups.emails)) == [
        ("address", 4),
        ("outage", 4),
        ("key", 2),
        ("other", 2),
        ("rejected", 2),
        ("rate_limited", 1),
        ("template", 1),
    ]
    assert groups.set_index("cause").latest_at["outage"] == NOW - dt.timedelta(minutes=8)  # the newest of its four
    assert groups.set_index("cause").example["outage"] == "gave up after 5 attempts: 503 application_error: down"
    assert len(outage) == 4 and set(outage.cause) == {"outage"}


def test_recipients_are_named_when_the_address_is_theirs(engine):
    from tests.factories import add_mechanic

    with engine.begin() as conn:
        cid = add_user(conn, "Cleo <b>C</b>", email="cleo@example.com")
        mid = add_mechanic(conn, "Max", email="max@example.com")
        sid = add_session(conn, cid, mid, **booked())
        conn.execute(
            s.email_outbox.insert(),
            [
                _outbox_row(NOW, "booking_confirmed", "sent", session_id=sid, recipient="cleo@example.com"),
                _outbox_row(NOW, "session_ended", "sent", session_id=sid, recipient="old@example.com"),
                _outbox_row(NOW, "mechanic_nudge", "failed", session_id=sid, recipient="max@example.com"),
                _outbox_row(NOW, "support_alert", "sent", session_id=sid, recipient="help@pitwall.example"),
            ],
        )
        frame = q.outbox(conn, period=Period(NOW.date(), NOW.date(), "UTC"))
        failed = q.awaiting_decision(conn, status="failed")
    got = {row.milestone: (row.recipient_kind, row.recipient_id, row.recipient_name) for row in frame.itertuples()}
    assert got == {
        "booking_confirmed": ("customer", cid, "Cleo <b>C</b>"),
        "session_ended": ("customer", None, None),  # the address is no longer the customer's: shown as it is
        "mechanic_nudge": ("mechanic", mid, "Max"),
        "support_alert": ("support", None, None),
    }
    assert (failed.recipient_name.iloc[0], failed.recipient_id.iloc[0]) == ("Max", mid)


def test_job_state_says_what_a_run_would_do(engine, failures):
    lookback = dt.timedelta(days=2)
    with engine.connect() as conn:
        now = q.job_state(conn, now=NOW, lookback=lookback).iloc[0].to_dict()
        before = q.job_state(conn, now=NOW - dt.timedelta(minutes=2), lookback=lookback).iloc[0].to_dict()
    # the pending row is due from a minute ago; the session's booking is queued (failed), its end is not due
    assert now["due"] == 1 and before["due"] == 0 and now["in_flight"] == 0
    with engine.begin() as conn:
        conn.execute(
            s.email_outbox.update()
            .where(s.email_outbox.c.status == "pending")
            .values(status="sending", next_attempt_at=NOW + dt.timedelta(minutes=5))
        )
        later = q.job_state(conn, now=NOW, lookback=lookback).iloc[0].to_dict()
        fresh = add_session(conn, add_user(conn, DRIVER, email="new@example.com"), **booked())
        with_new = q.job_state(conn, now=NOW, lookback=lookback).iloc[0].to_dict()
    assert (later["due"], later["in_flight"], later["new"]) == (0, 1, 0)
    assert with_new["new"] == 1 and fresh
