"""How people read the codes the database stores: one label per code, for pages, charts
and exports alike (``label``), and for audit actions (``action_label``).

A code without a label reads as its words ("paid_search" -> "Paid search"), so a value the
platform adds later still shows as text rather than as a code.
"""

from __future__ import annotations

from collections.abc import Mapping

from dashboard.domain.followups import STATE_LABELS as FOLLOW_UP_STATE_LABELS
from dashboard.domain.followups import TYPE_LABELS as FOLLOW_UP_TYPE_LABELS
from dashboard.domain.funnel.interactions import STEP_LABELS
from dashboard.domain.reviews import FLAG_LABELS, HIDE_REASON_LABELS
from dashboard.domain.upsells import TYPE_LABELS as RECOMMENDATION_LABELS

LABELS: dict[str, Mapping[str, str]] = {
    "plan": {"standard": "Standard", "premium": "Premium"},
    "channel": {
        "organic_search": "Organic search",
        "paid_search": "Paid search",
        "social": "Social",
        "referral": "Referral",
        "partner": "Partner",
        "direct": "Direct",
    },
    "category": {"hvac": "Heating and air conditioning", "tyres": "Tyres"},
    "request_status": {"open": "Open", "matched": "Matched", "completed": "Completed", "cancelled": "Cancelled"},
    "session_type": {"chat": "Chat", "video": "Video"},
    "session_status": {
        "pending": "Pending",
        "scheduled": "Scheduled",
        "accepted": "Accepted",
        "live": "Live",
        "completed": "Completed",
        "cancelled": "Cancelled",
    },
    "interaction": STEP_LABELS,
    "recommendation": RECOMMENDATION_LABELS,
    "review_status": {"pending": "Waiting", "published": "Published", "hidden": "Hidden"},
    "review_flag": FLAG_LABELS,
    "hide_reason": HIDE_REASON_LABELS,
    "follow_up_type": FOLLOW_UP_TYPE_LABELS,
    "follow_up_state": FOLLOW_UP_STATE_LABELS,
    "role": {"admin": "Admin", "support": "Support", "manager": "Manager"},
    "milestone": {
        "booking_confirmed": "Booking confirmed",
        "mechanic_assigned": "Mechanic assigned",
        "session_starting": "Session starting",
        "session_ended": "Session ended",
        "summary_delivered": "Summary delivered",
        "mechanic_nudge": "Mechanic nudge",
        "support_alert": "Support alert",
    },
    "email_status": {
        "pending": "Waiting",
        "sending": "Sending",
        "sent": "Sent",
        "failed": "Failed",
        "skipped": "Skipped",
        "uncertain": "Uncertain",
    },
    # Who wrote an audit row when no staff member did.
    "actor": {"platform": "The platform", "intake job": "Intake job", "migration": "Database upgrade"},
}

# Audit actions are "<thing>.<verb>"; each part has a label.
ACTION_SUBJECTS = {
    "base_price": "Base price",
    "email": "Email",
    "follow_up": "Follow-up",
    "follow_up_price": "Follow-up price",
    "funnel_rollup": "Funnel figures",
    "override": "Date override",
    "review": "Review",
    "review_settings": "Review settings",
    "scheduling": "Scheduling setting",
    "slot": "Weekly slot",
    "timezone": "Timezone",
    "upsell_service": "Upsell service",
}
ACTION_VERBS = {
    "create": "added",
    "update": "changed",
    "delete": "removed",
    "set": "set",
    "refresh": "refreshed",
    "retry": "retried",
    "mark_sent": "marked as sent",
    "send_again": "sent again",
    "run_now": "run now",
    "intake": "received",
    "intake_rejected": "refused",
    "publish": "published",
    "hide": "hidden",
    "unhide": "shown again",
    "assign": "assigned",
    "answer": "answered",
    "close": "closed",
    "cancel": "cancelled",
}


def words(code: str) -> str:
    """A code as words: ``paid_search`` -> "Paid search"."""
    return code.replace("_", " ").capitalize()


def label(family: str, code: str | None) -> str:
    """The label of ``code`` in ``family`` (a key of ``LABELS``); a dash for a missing code."""
    if code is None or code != code:  # None or NaN
        return "—"
    return LABELS[family].get(code) or words(str(code))


def actor_label(who: str | None) -> str:
    """Who changed something, for people: a staff member's email as it is, the platform, a job
    or a database upgrade (``migration 16``) by its label."""
    if who is None or who != who:
        return "—"
    if who.startswith("migration"):
        return LABELS["actor"]["migration"]
    return LABELS["actor"].get(who, who)


def action_label(action: str) -> str:
    """An audit action for people: ``slot.update`` -> "Weekly slot changed"."""
    subject, _, verb = action.partition(".")
    subject_label = ACTION_SUBJECTS.get(subject) or words(subject)
    if not verb:
        return subject_label
    return f"{subject_label} {ACTION_VERBS.get(verb) or words(verb).lower()}"
