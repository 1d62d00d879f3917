"""The Emails page queries, on both backends."""

from __future__ import annotations

import datetime as dt
import uuid

import pandas as pd
import pytest

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
    assert list(everything.columns) == list(q.OUTBOX_COLUMNS) and len(everything) == 4
    assert everything["created_at"].is_monotonic_decreasing
    assert set(booked["milestone"]) == {"booking_confirmed"} and len(booked) == 3
    assert sorted(failed["status"]) == ["failed", "skipped"]
    assert empty.empty and list(empty.columns) == list(q.OUTBOX_COLUMNS)


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
