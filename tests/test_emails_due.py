"""The email job's due rules (``dashboard.domain.emails.due``): each milestone's edges and the
facts the templates read, on both backends."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

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


BOOKED_NOW = {"booked", "unassigned_1", "unassigned_2"}
ACCEPTED = {"accepted", "starts_in_5", "starts_in_6", "late_3", "late_5", "late_2h"}
# The due sessions of ``sessions_at_each_edge`` per milestone.
DUE = {
    "booking_confirmed": BOOKED_NOW | ACCEPTED | {"accepted_later", "ended", "summarised", "live_alone"},
    "mechanic_assigned": ACCEPTED,
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


def test_each_milestone_is_due_by_its_own_rule(engine, sessions_at_each_edge):
    assert due(engine, sessions_at_each_edge) == DUE


def queue(engine, session_id, milestone: str, queued_at: dt.datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            s.email_outbox.insert().values(
                session_id=session_id,
                milestone=milestone,
                recipient="c@example.com",
                status="sent",
                created_at=queued_at,
            )
        )


# One due session per milestone, and when the window's rows are queued from as a rule: the look-back
# (the last hour for the operational emails) less the 5 minutes' lead of the session-starting email,
# and 2 days more for the bookings and acceptances.
QUEUED_FROM = {
    "booking_confirmed": ("booked", SINCE - dt.timedelta(days=2) - 5 * MINUTE),
    "mechanic_assigned": ("accepted", SINCE - dt.timedelta(days=2) - 5 * MINUTE),
    "session_starting": ("starts_in_5", SINCE - 5 * MINUTE),
    "session_ended": ("ended", SINCE - 5 * MINUTE),
    "summary_delivered": ("summarised", SINCE - 5 * MINUTE),
    "mechanic_nudge": ("late_3", NOW - 65 * MINUTE),
    "support_alert": ("late_5", NOW - 65 * MINUTE),
}


@pytest.mark.parametrize("milestone", s.EMAIL_MILESTONES)
@pytest.mark.parametrize(
    "queued", [dt.timedelta(days=-30), -dt.timedelta(microseconds=1), dt.timedelta(0), dt.timedelta(days=1)]
)
def test_a_queued_milestone_is_never_due_again_however_long_ago_it_was_queued(
    engine, sessions_at_each_edge, milestone, queued
):
    label, queued_from = QUEUED_FROM[milestone]
    queue(engine, sessions_at_each_edge[label], milestone, queued_from + queued)
    assert due(engine, sessions_at_each_edge) == {**DUE, milestone: DUE[milestone] - {label}}


def test_the_look_back_edge_holds_for_sessions_queued_before_and_after_it(engine, sessions_at_each_edge):
    labels = dict(sessions_at_each_edge)
    with engine.begin() as conn:
        c = add_user(conn, DRIVER, email="edge@example.com")
        labels["at_the_edge"] = add_session(conn, c, **booked(scheduled_at=SINCE, created_at=SINCE - 3 * MINUTE))
        labels["edge_queued"] = add_session(conn, c, **booked(scheduled_at=SINCE, created_at=SINCE - 9 * MINUTE))
    queue(engine, labels["edge_queued"], "booking_confirmed", SINCE - 9 * MINUTE)
    found = due(engine, labels)
    assert found["booking_confirmed"] == DUE["booking_confirmed"] | {"at_the_edge"}
    assert found["session_starting"] == DUE["session_starting"] | {"at_the_edge", "edge_queued"}


def test_a_session_whose_status_or_time_changed_after_it_was_queued_is_not_due_again(engine, sessions_at_each_edge):
    S = sessions_at_each_edge
    queue(engine, S["booked"], "booking_confirmed", SINCE - dt.timedelta(days=2))
    queue(engine, S["starts_in_5"], "session_starting", NOW - 10 * MINUTE)
    with engine.begin() as conn:
        mechanic = conn.execute(sa.select(s.sessions.c.mechanic_id).where(s.sessions.c.id == S["accepted"])).scalar()
        accept = {"status": "accepted", "mechanic_id": mechanic, "accepted_at": NOW - MINUTE}
        conn.execute(s.sessions.update().where(s.sessions.c.id == S["booked"]).values(**accept))
        conn.execute(
            s.sessions.update().where(s.sessions.c.id == S["starts_in_5"]).values(scheduled_at=NOW + 2 * MINUTE)
        )
    found = due(engine, S)
    assert found["booking_confirmed"] == DUE["booking_confirmed"] - {"booked"}
    assert found["mechanic_assigned"] == DUE["mechanic_assigned"] | {"booked"}
    assert found["session_starting"] == DUE["session_starting"] - {"starts_in_5"}


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
