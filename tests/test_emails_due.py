"""The email job's due rules (``dashboard.domain.emails.due``): each milestone's edges and the
facts the templates read, on both backends."""

from __future__ import annotations

import datetime as dt

import pytest

from dashboard.core import schema as s
from dashboard.domain.emails import due as rules
from tests.emails_support import DRIVER, MECHANIC, MINUTE, NOW, booked
from tests.factories import add_mechanic, add_session, add_user

SINCE = NOW - dt.timedelta(days=7)


@pytest.fixture
def sessions_at_each_edge(engine):
    """Sessions just inside and just outside each due rule, by label."""
    with engine.begin() as conn:
        m = add_mechanic(conn, **MECHANIC)
        c = add_user(conn, DRIVER, email="c@example.com")
        accepted = {"status": "accepted", "mechanic_id": m, "accepted_at": NOW - MINUTE}
        S = {
            "pending": add_session(conn, c, **booked(status="pending")),
            "booked": add_session(conn, c, **booked()),
            "cancelled": add_session(conn, c, **booked(status="cancelled")),
            "booked_long_ago": add_session(conn, c, **booked(scheduled_at=SINCE - MINUTE)),
            "booked_in_the_future": add_session(conn, c, **booked(created_at=NOW + MINUTE)),
            "accepted": add_session(conn, c, **booked(**accepted)),
            "accepted_later": add_session(conn, c, **booked(**{**accepted, "accepted_at": NOW + MINUTE})),
            "starts_in_5": add_session(conn, c, **booked(**accepted, scheduled_at=NOW + 5 * MINUTE)),
            "starts_in_6": add_session(conn, c, **booked(**accepted, scheduled_at=NOW + 6 * MINUTE)),
            "ended": add_session(
                conn,
                c,
                **booked(
                    status="completed",
                    mechanic_id=m,
                    scheduled_at=NOW - 40 * MINUTE,
                    started_at=NOW - 40 * MINUTE,
                    ended_at=NOW - MINUTE,
                ),
            ),
            "summarised": add_session(
                conn,
                c,
                **booked(
                    status="completed",
                    mechanic_id=m,
                    scheduled_at=NOW - 90 * MINUTE,
                    started_at=NOW - 90 * MINUTE,
                    ended_at=NOW - 60 * MINUTE,
                    summary_submitted_at=NOW - MINUTE,
                ),
            ),
            "late_3": add_session(conn, c, **booked(**accepted, scheduled_at=NOW - 3 * MINUTE)),
            "late_5": add_session(conn, c, **booked(**accepted, scheduled_at=NOW - 5 * MINUTE)),
            "late_2h": add_session(conn, c, **booked(**accepted, scheduled_at=NOW - 2 * 60 * MINUTE)),
            "unassigned_1": add_session(conn, c, **booked(scheduled_at=NOW - MINUTE)),
            "unassigned_2": add_session(conn, c, **booked(scheduled_at=NOW - 2 * MINUTE)),
            "live_alone": add_session(
                conn, c, **booked(status="live", scheduled_at=NOW - 10 * MINUTE, started_at=NOW - 10 * MINUTE)
            ),
            "emailed": add_session(conn, c, **booked(**accepted)),
        }
        conn.execute(
            s.email_outbox.insert(),
            [
                {"session_id": S["emailed"], "milestone": m, "recipient": "c@example.com", "status": "sent"}
                for m in ("booking_confirmed", "mechanic_assigned")
            ],
        )
    return S


def due(engine, labels: dict) -> dict[str, set[str]]:
    names = {v: k for k, v in labels.items()}
    with engine.connect() as conn:
        return {
            m: {
                names[sid]
                for sid in rules.due_milestones(conn, milestone=m, now=NOW, since=SINCE).get("session_id", [])
            }
            for m in s.EMAIL_MILESTONES
        }


def test_each_milestone_is_due_by_its_own_rule(engine, sessions_at_each_edge):
    booked_now = {"booked", "unassigned_1", "unassigned_2"}
    accepted = {"accepted", "starts_in_5", "starts_in_6", "late_3", "late_5", "late_2h"}
    assert due(engine, sessions_at_each_edge) == {
        "booking_confirmed": booked_now | accepted | {"accepted_later", "ended", "summarised", "live_alone"},
        "mechanic_assigned": accepted,
        "session_starting": {
            "starts_in_5",
            "ended",
            "summarised",
            "late_3",
            "late_5",
            "late_2h",
            "unassigned_1",
            "unassigned_2",
            "live_alone",
        },
        "session_ended": {"ended", "summarised"},
        "summary_delivered": {"summarised"},
        "mechanic_nudge": {"late_3", "late_5"},
        "support_alert": {"late_5", "unassigned_2", "live_alone"},
    }


def test_the_facts_name_the_problem_and_the_people(engine, sessions_at_each_edge):
    with engine.connect() as conn:
        facts = rules.due_milestones(conn, milestone="support_alert", now=NOW, since=SINCE).set_index("session_id")
    problems = {label: facts.loc[sid, "problem"] for label, sid in sessions_at_each_edge.items() if sid in facts.index}
    assert problems == {
        "late_5": "mechanic_no_show",
        "unassigned_2": "no_mechanic",
        "live_alone": "live_without_mechanic",
    }
    row = facts.loc[sessions_at_each_edge["late_5"]]
    assert (row.customer_email, row.customer_name, row.mechanic_email, row.mechanic_name) == (
        "c@example.com",
        "Sam Driver",
        "mechanic@example.com",
        "Alex Wrench",
    )
    assert (row.vehicle_make, row.category, row.file_count, bool(row.nudge_due)) == ("Honda", "brakes", 0, True)
