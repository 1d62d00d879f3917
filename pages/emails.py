"""Emails (admin): the milestone emails the job queued, sent, skipped or failed,
the last error of the failed ones with a retry, the uncertain ones (their batch
may have reached Resend, too long ago to re-send safely) with "Mark as sent" and
"Send again", and a preview of every template.

The sidebar's period filters by the day an email was queued, in the display
timezone. Retry, the decisions on uncertain emails and "Run now" check the admin
role on the server, write an audit row and clear the cached queries. Addresses and errors are shown with
``st.dataframe``/``st.code`` or escaped, never as Markdown or HTML; the template
previews render a built-in sample session, not data from the database.
"""

import uuid

import plotly.express as px
import sqlalchemy as sa
import streamlit as st

from dashboard.core.errors import ConfigError
from dashboard.core.schema import EMAIL_MILESTONES, EMAIL_STATUSES
from dashboard.domain.emails.outbox import decide
from dashboard.domain.emails.render import email_context, load_brand, render, sample_facts
from dashboard.domain.emails.settings import EmailSettings
from dashboard.domain.emails.worker import run_now, utc_now
from dashboard.ui import components as ui
from queries import emails as q

MILESTONE_LABELS = {
    "booking_confirmed": "Booking confirmed",
    "mechanic_assigned": "Mechanic assigned",
    "session_starting": "Session starting",
    "session_ended": "Session ended",
    "summary_delivered": "Summary delivered",
    "mechanic_nudge": "Mechanic nudge",
    "support_alert": "Support alert",
}
STATUS_LABELS = {
    "pending": "Waiting",
    "sending": "Sending",
    "sent": "Sent",
    "failed": "Failed",
    "skipped": "Skipped",
    "uncertain": "Uncertain",
}
STATUS_COLORS = {
    "sent": "#0F766E",
    "pending": "#A16207",
    "sending": "#1D4ED8",
    "failed": "#B91C1C",
    "skipped": "#94A3B8",
    "uncertain": "#7C3AED",
}
SHOWN = 20  # cards per tab (failed, uncertain)
DECIDED = {
    "retry": ("Queued again: the job sends it on its next run.", ":material/replay:"),
    "send_again": ("Queued again: the job checks the rules and sends it on its next run.", ":material/replay:"),
    "mark_sent": ("Recorded as sent.", ":material/check_circle:"),
}


@ui.write_action
def decide_email(outbox_id: uuid.UUID, decision: str) -> None:
    """Button callback: the decision on the server (role checked there), then refresh every cached query."""
    message, icon = DECIDED[decision]
    ui.run_write(lambda: decide(ui.write_engine(), ui.actor(), outbox_id, decision, utc_now()), message, icon=icon)


@ui.write_action
def run_job() -> None:
    try:
        with st.spinner("Sending the emails that are due…", show_time=True):
            result = ui.run_write(
                lambda: run_now(ui.write_engine(), ui.actor(), EmailSettings.from_settings(ui.settings())),
                refusals=(ConfigError,),
            )
    except sa.exc.OperationalError as exc:
        ui.keep_notice(f"The run stopped: {str(exc.orig or exc).splitlines()[0]}")
        ui.clear_query_cache()
        return
    if result is not None:
        st.session_state["emails_last_run"] = result.summary()


def outbox_table(outbox, tz: str) -> None:
    st.dataframe(
        outbox.assign(
            created_at=outbox.created_at.dt.tz_convert(tz),
            sent_at=[ui.fmt_datetime(t, tz) for t in outbox.sent_at],
            next_attempt_at=[ui.fmt_datetime(t, tz) for t in outbox.next_attempt_at],
            skip_reason=outbox.skip_reason.fillna(""),
            last_error=outbox.last_error.fillna(""),
            milestone=outbox.milestone.map(MILESTONE_LABELS),
            status=outbox.status.map(STATUS_LABELS),
        ),
        column_order=[
            "created_at",
            "milestone",
            "status",
            "recipient",
            "attempts",
            "sent_at",
            "next_attempt_at",
            "skip_reason",
            "last_error",
        ],
        column_config={
            "created_at": st.column_config.DatetimeColumn(f"Queued ({tz})", format="D MMM YYYY, HH:mm"),
            "milestone": "Milestone",
            "status": "Status",
            "recipient": "To",
            "attempts": "Attempts",
            "sent_at": f"Sent ({tz})",
            "next_attempt_at": f"Next attempt ({tz})",
            "skip_reason": "Why skipped",
            "last_error": st.column_config.TextColumn("Last error", width="large"),
        },
        hide_index=True,
    )
    if len(outbox) == q.OUTBOX_LIMIT:
        st.caption(f"The newest {q.OUTBOX_LIMIT:,} emails; narrow the filters to see older ones.")


def email_card(row, when: str, missing: str) -> None:
    """What an admin decides on: the milestone, attempts, recipient and last error, as plain text."""
    st.markdown(f"**{MILESTONE_LABELS[row.milestone]}** · {ui.plural(row.attempts, 'attempt')} · {when}")
    st.text(f"To: {row.recipient or 'no address'}")
    st.code(row.last_error or missing, language=None, wrap_lines=True)


def failed_card(row, tz: str) -> None:
    with st.container(border=True):
        email_card(row, f"failed {ui.fmt_datetime(row.updated_at, tz)}", "No error recorded.")
        st.button(
            "Retry", key=f"retry_{row.id}", icon=":material/replay:", on_click=decide_email, args=(row.id, "retry")
        )


def uncertain_card(row, tz: str) -> None:
    with st.container(border=True):
        email_card(row, f"its batch was first sent {ui.fmt_datetime(row.batch_started_at, tz)}", "No answer recorded.")
        with st.container(horizontal=True):
            st.button(
                "Mark as sent",
                key=f"mark_sent_{row.id}",
                icon=":material/check_circle:",
                on_click=decide_email,
                args=(row.id, "mark_sent"),
                help="Resend's log shows this email: record it as sent, send nothing.",
            )
            st.button(
                "Send again",
                key=f"send_again_{row.id}",
                icon=":material/replay:",
                on_click=decide_email,
                args=(row.id, "send_again"),
                help="Resend's log does not show it: the job checks the rules again and sends it.",
            )


def template_preview(settings) -> None:
    with ui.filter_bar():
        milestone = st.selectbox(
            "Template", EMAIL_MILESTONES, format_func=MILESTONE_LABELS.get, key="emails_template", width=360
        )
        width = st.segmented_control("Width", ["Desktop", "Phone"], default="Desktop", key="emails_width")
    preview = render(
        milestone, email_context(milestone, sample_facts(utc_now()), settings, load_brand(settings.brand_name))
    )
    st.markdown(
        f"**Subject:** {ui.escape_markdown(preview.subject)}  \n**Preheader:** {ui.escape_markdown(preview.preheader)}"
    )
    html_tab, text_tab = st.tabs(["HTML", "Plain text"])
    with html_tab:
        st.iframe(preview.html, width=375 if width == "Phone" else "stretch", height=720)
    with text_tab:
        st.code(preview.text, language=None, wrap_lines=True)
    st.caption(
        "Rendered with a sample session. Subject and preheader come from the template; "
        "the preheader is the hidden preview line mail apps show after the subject."
    )


ui.page_header(
    "Emails",
    "The milestone emails queued for customers, mechanics and support: what was sent, "
    "skipped or failed, and what each template looks like.",
)
ui.write_notice(st.warning)

period = ui.period()
settings = EmailSettings.from_settings(ui.settings())
with ui.filter_bar():
    milestones = tuple(
        st.multiselect(
            "Milestones",
            EMAIL_MILESTONES,
            format_func=MILESTONE_LABELS.get,
            placeholder="All milestones",
            key="emails_milestones",
            width=360,
        )
    )
    statuses = tuple(
        st.multiselect(
            "Statuses",
            EMAIL_STATUSES,
            format_func=STATUS_LABELS.get,
            placeholder="All statuses",
            key="emails_statuses",
            width=280,
        )
    )
    st.button(
        "Run now",
        icon=":material/send:",
        on_click=run_job,
        disabled=not settings.api_key,
        help="Send the emails that are due now, inside the app (the embedded database allows one writer)."
        if settings.api_key
        else "Set RESEND_API_KEY (or [resend] api_key in the secrets) to send emails.",
    )
if "emails_last_run" in st.session_state:
    st.success(f"Run finished: {st.session_state.pop('emails_last_run')}.", icon=":material/check_circle:")

per_day = ui.run_query(q.status_counts_per_day, loading="email counts", period=period, milestones=milestones)
totals = per_day.groupby("status")["emails"].sum()
ui.kpi_row(
    [
        ui.Kpi("Sent", ui.fmt_count(totals.get("sent", 0)), help="Accepted by Resend."),
        ui.Kpi(
            "Waiting",
            ui.fmt_count(totals.get("pending", 0) + totals.get("sending", 0)),
            help="Queued, being sent, or waiting for a retry after a temporary error.",
        ),
        ui.Kpi(
            "Skipped",
            ui.fmt_count(totals.get("skipped", 0)),
            help="Not sent on purpose: opted out, no address, late or too old; the reason is in the outbox.",
        ),
        ui.Kpi("Failed", ui.fmt_count(totals.get("failed", 0)), help="Refused by Resend or out of attempts."),
        ui.Kpi(
            "Uncertain",
            ui.fmt_count(totals.get("uncertain", 0)),
            help="May have reached Resend before a worker stopped, too long ago to re-send safely: "
            "an admin decides in the Uncertain tab.",
        ),
    ]
)
st.caption(f"Emails queued from {period.start:%d %b %Y} to {period.end:%d %b %Y} ({period.tz}).")

if per_day.empty:
    ui.empty_state(
        "No emails were queued in this period.", "Choose other dates in the sidebar, or clear the milestone filter."
    )
else:
    shown = per_day[per_day.status.isin(statuses)] if statuses else per_day
    fig = px.bar(
        shown.assign(status=shown.status.map(STATUS_LABELS)),
        x="day",
        y="emails",
        color="status",
        color_discrete_map={STATUS_LABELS[k]: v for k, v in STATUS_COLORS.items()},
        category_orders={
            "status": [STATUS_LABELS[s] for s in ("sent", "pending", "sending", "skipped", "failed", "uncertain")]
        },
    )
    fig.update_traces(hovertemplate="%{x|%a %d %b %Y}: %{y:,} %{fullData.name}<extra></extra>")
    fig.update_layout(legend=dict(title=None, xanchor="right", x=1))
    ui.chart(fig, title="Emails queued per day, by status", x_title=f"Day ({period.tz})", y_title="Emails (count)")

outbox_tab, failed_tab, uncertain_tab, templates_tab = st.tabs(
    ["Outbox", "Failed emails", "Uncertain emails", "Templates"]
)
with outbox_tab:
    outbox = ui.run_query(q.outbox, loading="the outbox", period=period, milestones=milestones, statuses=statuses)
    if outbox.empty:
        ui.empty_state("No emails match these filters.", "Clear the milestone or status filter, or widen the period.")
    else:
        outbox_table(outbox, period.tz)

with failed_tab:
    failed = ui.run_query(q.awaiting_decision, loading="failed emails", status="failed", limit=SHOWN)
    if failed.empty:
        ui.empty_state("No email has failed.", "Emails Resend refuses, or that run out of attempts, show here.")
    for row in failed.itertuples():
        failed_card(row, period.tz)
    if len(failed) == SHOWN:
        st.caption(f"The {SHOWN} most recent failures; filter the outbox by status Failed to see all.")

with uncertain_tab:
    uncertain = ui.run_query(q.awaiting_decision, loading="uncertain emails", status="uncertain", limit=SHOWN)
    if uncertain.empty:
        ui.empty_state(
            "No email is uncertain.",
            "An email whose batch may have reached Resend more than "
            "a day before the job could check shows here, for you to decide.",
        )
    else:
        st.caption(
            "Find each email in Resend's log (by recipient and time), then mark it as sent, "
            "or send it again if Resend has no trace of it."
        )
    for row in uncertain.itertuples():
        uncertain_card(row, period.tz)
    if len(uncertain) == SHOWN:
        st.caption(f"The {SHOWN} most recent; filter the outbox by status Uncertain to see all.")

with templates_tab:
    template_preview(settings)
