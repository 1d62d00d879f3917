"""The email job's due rules: which milestone emails are due, and the session facts their
templates read.

``now`` is the job's clock; each milestone is found by its own
timestamp and state, within a look-back window (``since``) so that every rule is
an index range scan (``ix_sessions_status_scheduled_due`` or ``ix_sessions_ended_due``)
rather than a scan of all sessions. A milestone with an outbox row for the
session is never due again (``due_ids``). Whether a due email is sent or skipped (opted out,
late, too old) is ``dashboard.domain.emails.outbox.skip_reason``'s rule, applied when it is
queued and again before each send.

| milestone           | due when                                                       | event time            |
|---------------------|----------------------------------------------------------------|-----------------------|
| booking_confirmed   | status scheduled/accepted/live/completed, scheduled_at >= since | created_at            |
| mechanic_assigned   | a mechanic accepted (accepted_at set), status accepted/live/completed | accepted_at     |
| session_starting    | booked, scheduled_at <= now + 5 min                             | scheduled_at          |
| session_ended       | completed, ended_at in [since, now]                             | ended_at              |
| summary_delivered   | summary_submitted_at <= now, ended_at >= since                  | summary_submitted_at  |
| mechanic_nudge      | accepted, not started, 3 min past scheduled_at (last hour)      | scheduled_at          |
| support_alert       | one of the PROBLEMS below (sessions scheduled in the last hour) | scheduled_at          |

PROBLEMS, the support alert's conditions, from the columns the platform has
(there is no mechanic-activity timestamp, so "live with no mechanic activity
for 2 minutes" cannot be checked):
- ``no_mechanic``: still ``scheduled`` (no mechanic accepted) 2 minutes after the scheduled time;
- ``mechanic_no_show``: ``accepted`` but not started 5 minutes after the scheduled time,
  i.e. 2 minutes after the mechanic's nudge;
- ``live_without_mechanic``: ``live`` with no mechanic on the session.

Operational emails (nudge, alert) look back one hour only: later than that the
session shows on the support pages and an email is no help.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.core.schema import (
    EMAIL_MILESTONES,
    email_outbox,
    mechanics,
    profiles,
    requests,
    session_files,
    sessions,
    users,
)
from dashboard.core.settings import DEFAULTS

CUSTOMER_MILESTONES = EMAIL_MILESTONES[:5]
BEFORE_START = ("booking_confirmed", "mechanic_assigned", "session_starting")  # late once the session starts
STARTING_LEAD = dt.timedelta(minutes=5)
NUDGE_AFTER = dt.timedelta(minutes=3)
NO_MECHANIC_AFTER = dt.timedelta(minutes=2)
NO_SHOW_AFTER = NUDGE_AFTER + dt.timedelta(minutes=2)
OPERATIONAL_WINDOW = dt.timedelta(hours=1)
# Queued when the session is booked or accepted, ahead of its scheduled time; BOOKED_AHEAD: how far
# ahead most are (the due rules read those rows at once and probe the older ones, ``due_ids``).
QUEUED_AHEAD = ("booking_confirmed", "mechanic_assigned")
BOOKED_AHEAD = dt.timedelta(days=2)
DEFAULT_LOOKBACK = DEFAULTS["emails.lookback"]  # the job's default look-back for customer milestones
BOOKED = ("scheduled", "accepted", "live", "completed")
ASSIGNED = ("accepted", "live", "completed")

# The column each milestone's age is measured from (see the module docstring).
EVENT_TIME = {
    "booking_confirmed": "created_at",
    "mechanic_assigned": "accepted_at",
    "session_starting": "scheduled_at",
    "session_ended": "ended_at",
    "summary_delivered": "summary_submitted_at",
    "mechanic_nudge": "scheduled_at",
    "support_alert": "scheduled_at",
}

PROBLEMS = {
    "no_mechanic": "No mechanic has accepted the session, and its scheduled time has passed.",
    "mechanic_no_show": "The mechanic accepted the session but has not started it, 2 minutes after being nudged.",
    "live_without_mechanic": "The session is live but has no mechanic on it.",
}

s = sessions
customer_user = users.alias("customer_user")
mechanic_user = users.alias("mechanic_user")


def nudge_due(now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.and_(s.c.status == "accepted", s.c.started_at.is_(None), s.c.scheduled_at <= now - NUDGE_AFTER)


def problem(now: dt.datetime) -> sa.ColumnElement:
    """The session's problem code (a key of PROBLEMS), or NULL."""
    return sa.case(
        (sa.and_(s.c.status == "scheduled", s.c.scheduled_at <= now - NO_MECHANIC_AFTER), "no_mechanic"),
        (
            sa.and_(s.c.status == "accepted", s.c.started_at.is_(None), s.c.scheduled_at <= now - NO_SHOW_AFTER),
            "mechanic_no_show",
        ),
        (sa.and_(s.c.status == "live", s.c.mechanic_id.is_(None)), "live_without_mechanic"),
        else_=sa.null(),
    )


def facts_select(now: dt.datetime) -> sa.Select:
    """One row per session with everything the email templates and rules read."""
    file_count = (
        sa.select(sa.func.count())
        .select_from(session_files)
        .where(session_files.c.session_id == s.c.id)
        .scalar_subquery()
    )
    return sa.select(
        s.c.id.label("session_id"),
        s.c.status,
        s.c.session_type,
        s.c.created_at,
        s.c.scheduled_at,
        s.c.accepted_at,
        s.c.started_at,
        s.c.ended_at,
        s.c.price_cents,
        s.c.mechanic_id,
        s.c.findings,
        s.c.steps_taken,
        s.c.parts_needed,
        s.c.next_steps,
        s.c.summary_submitted_at,
        customer_user.c.email.label("customer_email"),
        profiles.c.full_name.label("customer_name"),
        profiles.c.timezone.label("customer_timezone"),
        sa.func.coalesce(profiles.c.email_opt_out, sa.false()).label("opted_out"),
        mechanics.c.display_name.label("mechanic_name"),
        mechanics.c.specialties,
        mechanics.c.avg_rating,
        mechanics.c.total_reviews,
        mechanics.c.years_experience,
        mechanics.c.timezone.label("mechanic_timezone"),
        mechanic_user.c.email.label("mechanic_email"),
        requests.c.vehicle_make,
        requests.c.vehicle_model,
        requests.c.vehicle_year,
        requests.c.category,
        requests.c.description,
        file_count.label("file_count"),
        nudge_due(now).label("nudge_due"),
        problem(now).label("problem"),
    ).select_from(
        s.outerjoin(customer_user, customer_user.c.id == s.c.customer_id)
        .outerjoin(profiles, profiles.c.id == s.c.customer_id)
        .outerjoin(mechanics, mechanics.c.user_id == s.c.mechanic_id)
        .outerjoin(mechanic_user, mechanic_user.c.id == s.c.mechanic_id)
        .outerjoin(requests, requests.c.id == s.c.request_id)
    )


def _due_rule(milestone: str, now: dt.datetime, since: dt.datetime) -> sa.ColumnElement[bool]:
    recent = now - OPERATIONAL_WINDOW
    rules = {
        "booking_confirmed": sa.and_(s.c.status.in_(BOOKED), s.c.scheduled_at >= since, s.c.created_at <= now),
        "mechanic_assigned": sa.and_(
            s.c.status.in_(ASSIGNED), s.c.scheduled_at >= since, s.c.mechanic_id.is_not(None), s.c.accepted_at <= now
        ),
        "session_starting": sa.and_(
            s.c.status.in_(BOOKED), s.c.scheduled_at >= since, s.c.scheduled_at <= now + STARTING_LEAD
        ),
        "session_ended": sa.and_(s.c.status == "completed", s.c.ended_at >= since, s.c.ended_at <= now),
        "summary_delivered": sa.and_(s.c.ended_at >= since, s.c.summary_submitted_at <= now),
        "mechanic_nudge": sa.and_(s.c.status == "accepted", s.c.scheduled_at >= recent, nudge_due(now)),
        "support_alert": sa.and_(
            s.c.status.in_(("scheduled", "accepted", "live")), s.c.scheduled_at >= recent, problem(now).is_not(None)
        ),
    }
    return rules[milestone]


def due_ids(milestone: str, now: dt.datetime, since: dt.datetime) -> sa.Select:
    """The ids of the sessions whose ``milestone`` is due at ``now`` and not yet in the outbox.

    Every session of the window is checked against every outbox row of the milestone, in two steps
    that PostgreSQL takes from indexes alone: the milestone's rows queued since the window opened
    (``_queued_from``) are read at once (``ix_email_outbox_milestone_created_session``) and rule out
    the sessions they name; only the sessions left are probed one by one
    (``ix_email_outbox_<milestone>_session``), so a row queued before (a booking confirmed days
    ahead) still counts. The window's sessions come from ``ix_sessions_status_scheduled_due`` or
    ``ix_sessions_ended_due``."""

    def queued(*also: sa.ColumnElement[bool]) -> sa.Exists:
        return sa.exists().where(email_outbox.c.session_id == s.c.id, email_outbox.c.milestone == milestone, *also)

    recent = email_outbox.c.created_at >= _queued_from(milestone, now, since)
    # ~queued() alone decides; ~queued(recent), which it implies, only spares most of its probes.
    return sa.select(s.c.id).where(_due_rule(milestone, now, since), ~queued(recent), ~queued())


def _queued_from(milestone: str, now: dt.datetime, since: dt.datetime) -> dt.datetime:
    """When the outbox rows of the milestone's window are queued from, as a rule: its look-back
    (the last hour for the operational emails) less the lead of the session-starting email, and
    for a booking or an acceptance, which come before the scheduled times the window is on, less
    ``BOOKED_AHEAD`` too."""
    opens = since if milestone in CUSTOMER_MILESTONES else now - OPERATIONAL_WINDOW
    return opens - STARTING_LEAD - (BOOKED_AHEAD if milestone in QUEUED_AHEAD else dt.timedelta(0))


def due_select(milestone: str, now: dt.datetime, since: dt.datetime) -> sa.Select:
    """The facts of every session whose ``milestone`` is due at ``now`` and not yet in the outbox:
    the due ones are found first (``due_ids``, materialized: the planner cannot tell how few they
    are), then only their rows are read."""
    ids = due_ids(milestone, now, since).cte("due").prefix_with("MATERIALIZED")
    return facts_select(now).where(s.c.id.in_(sa.select(ids.c.id)))


def due_milestones(conn: Connection, *, milestone: str, now: dt.datetime, since: dt.datetime) -> pd.DataFrame:
    """The sessions whose ``milestone`` is due (see ``due_select``), one row each."""
    result = conn.execute(due_select(milestone, now, since))
    return pd.DataFrame(result.all(), columns=list(result.keys()))


# --- the Emails page ----------------------------------------------------------------
