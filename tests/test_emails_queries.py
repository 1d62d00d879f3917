"""The due-milestone rules and the Emails page queries, on both backends."""

from __future__ import annotations

import datetime as dt
import uuid

import pandas as pd
import pytest

from dashboard.core import schema as s
from dashboard.core.period import Period
from queries import emails as q
from dashboard.tools.bench.cases import CASES, BenchContext
from emails_support import MINUTE, NOW, add_mechanic, add_person, add_session

SINCE = NOW - dt.timedelta(days=7)


@pytest.fixture
def sessions_at_each_edge(engine):
    """Sessions just inside and just outside each due rule, by label."""
    with engine.begin() as conn:
        m = add_mechanic(conn)
        c = add_person(conn, "c@example.com")
        accepted = {"status": "accepted", "mechanic_id": m, "accepted_at": NOW - MINUTE}
        S = {
            "pending": add_session(conn, c, status="pending"),
            "booked": add_session(conn, c),
            "cancelled": add_session(conn, c, status="cancelled"),
            "booked_long_ago": add_session(conn, c, scheduled_at=SINCE - MINUTE),
            "booked_in_the_future": add_session(conn, c, created_at=NOW + MINUTE),
            "accepted": add_session(conn, c, **accepted),
            "accepted_later": add_session(conn, c, **{**accepted, "accepted_at": NOW + MINUTE}),
            "starts_in_5": add_session(conn, c, **accepted, scheduled_at=NOW + 5 * MINUTE),
            "starts_in_6": add_session(conn, c, **accepted, scheduled_at=NOW + 6 * MINUTE),
            "ended": add_session(conn, c, status="completed", mechanic_id=m, scheduled_at=NOW - 40 * MINUTE,
                                 started_at=NOW - 40 * MINUTE, ended_at=NOW - MINUTE),
            "summarised": add_session(conn, c, status="completed", mechanic_id=m, scheduled_at=NOW - 90 * MINUTE,
                                      started_at=NOW - 90 * MINUTE, ended_at=NOW - 60 * MINUTE,
                                      summary_submitted_at=NOW - MINUTE),
            "late_3": add_session(conn, c, **accepted, scheduled_at=NOW - 3 * MINUTE),
            "late_5": add_session(conn, c, **accepted, scheduled_at=NOW - 5 * MINUTE),
            "late_2h": add_session(conn, c, **accepted, scheduled_at=NOW - 2 * 60 * MINUTE),
            "unassigned_1": add_session(conn, c, scheduled_at=NOW - MINUTE),
            "unassigned_2": add_session(conn, c, scheduled_at=NOW - 2 * MINUTE),
            "live_alone": add_session(conn, c, status="live", scheduled_at=NOW - 10 * MINUTE,
                                      started_at=NOW - 10 * MINUTE),
            "emailed": add_session(conn, c, **accepted),
        }
        conn.execute(s.email_outbox.insert(), [
            {"session_id": S["emailed"], "milestone": m, "recipient": "c@example.com", "status": "sent"}
            for m in ("booking_confirmed", "mechanic_assigned")])
    return S


def due(engine, labels: dict) -> dict[str, set[str]]:
    names = {v: k for k, v in labels.items()}
    with engine.connect() as conn:
        return {m: {names[sid] for sid in q.due_milestones(conn, milestone=m, now=NOW, since=SINCE).get(
            "session_id", [])} for m in s.EMAIL_MILESTONES}


def test_each_milestone_is_due_by_its_own_rule(engine, sessions_at_each_edge):
    booked_now = {"booked", "unassigned_1", "unassigned_2"}
    accepted = {"accepted", "starts_in_5", "starts_in_6", "late_3", "late_5", "late_2h"}
    assert due(engine, sessions_at_each_edge) == {
        "booking_confirmed": booked_now | accepted | {"accepted_later", "ended", "summarised", "live_alone"},
        "mechanic_assigned": accepted,
        "session_starting": {"starts_in_5", "ended", "summarised", "late_3", "late_5", "late_2h",
                             "unassigned_1", "unassigned_2", "live_alone"},
        "session_ended": {"ended", "summarised"},
        "summary_delivered": {"summarised"},
        "mechanic_nudge": {"late_3", "late_5"},
        "support_alert": {"late_5", "unassigned_2", "live_alone"},
    }


def test_the_facts_name_the_problem_and_the_people(engine, sessions_at_each_edge):
    with engine.connect() as conn:
        facts = q.due_milestones(conn, milestone="support_alert", now=NOW, since=SINCE).set_index("session_id")
    problems = {label: facts.loc[sid, "problem"] for label, sid in sessions_at_each_edge.items() if sid in facts.index}
    assert problems == {"late_5": "mechanic_no_show", "unassigned_2": "no_mechanic",
                        "live_alone": "live_without_mechanic"}
    row = facts.loc[sessions_at_each_edge["late_5"]]
    assert (row.customer_email, row.customer_name, row.mechanic_email, row.mechanic_name) == (
        "c@example.com", "Sam Driver", "mechanic@example.com", "Alex Wrench")
    assert (row.vehicle_make, row.category, row.file_count, bool(row.nudge_due)) == ("Honda", "brakes", 0, True)


def _outbox_row(when: dt.datetime, milestone: str, status: str, **columns) -> dict:
    return {"milestone": milestone, "recipient": f"{uuid.uuid4()}@x.com", "status": status,
            "created_at": when, "updated_at": when, "last_error": None, "skip_reason": None, **columns}


@pytest.fixture
def outbox_history(engine):
    with engine.begin() as conn:
        sid = add_session(conn, add_person(conn, "c@example.com"))
        conn.execute(s.email_outbox.insert(), [
            _outbox_row(dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc), "booking_confirmed", "sent",
                        session_id=sid),
            _outbox_row(dt.datetime(2026, 3, 1, 13, tzinfo=dt.timezone.utc), "session_ended", "failed",
                        session_id=sid, last_error="500 application_error: boom"),
            # 2 March 03:00 UTC is still 1 March in Chicago
            _outbox_row(dt.datetime(2026, 3, 2, 3, tzinfo=dt.timezone.utc), "booking_confirmed", "skipped",
                        session_id=sid, skip_reason="customer opted out of emails"),
            _outbox_row(dt.datetime(2026, 3, 2, 12, tzinfo=dt.timezone.utc), "booking_confirmed", "sent",
                        session_id=sid),
            _outbox_row(dt.datetime(2026, 2, 20, 12, tzinfo=dt.timezone.utc), "summary_delivered", "failed",
                        session_id=sid, last_error="422 validation_error: bad"),
        ])
        conn.execute(s.email_outbox.insert().values(_outbox_row(
            dt.datetime(2026, 2, 21, 12, tzinfo=dt.timezone.utc), "mechanic_assigned", "uncertain", session_id=sid,
            last_error="Its batch may have reached Resend",
            batch_started_at=dt.datetime(2026, 2, 21, 11, tzinfo=dt.timezone.utc))))


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
    assert got == {("2026-03-01", "sent"): 1, ("2026-03-01", "failed"): 1, ("2026-03-01", "skipped"): 1,
                   ("2026-03-02", "sent"): 1}


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
