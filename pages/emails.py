"""Emails (admin): the milestone emails the job queued, sent, skipped or failed; the
failed ones grouped by cause (``dashboard.domain.emails.failures``) with a retry only where
it can help and one "Retry all" for a Resend outage or rate limit; the uncertain ones (their
batch may have reached Resend, too long ago to re-send safely) with "Mark as sent" and
"Send again"; a preview of every template; "Run now", which says why when it cannot run.

The sidebar's period filters by the day an email was queued, in the display timezone; the
failed and uncertain tabs list emails of any date. ``?status=failed|uncertain`` opens that
tab, and picking a tab puts it in the URL; only the open tab is built. Retry, the decisions
and "Run now" check the admin role on the server, write an audit row and clear the cached
queries. Names, addresses and errors are shown as plain text
(``st.text``/``st.code``/dataframes) or escaped, never as Markdown or HTML; the template
previews render a built-in sample session, not data from the database.
"""

import datetime as dt
import uuid

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import sqlalchemy as sa
import streamlit as st

from dashboard.core.errors import ConfigError
from dashboard.core.period import today_in
from dashboard.core.schema import EMAIL_MILESTONES, EMAIL_STATUSES
from dashboard.domain.emails.failures import BY_CODE
from dashboard.domain.emails.outbox import decide, retry_cause
from dashboard.domain.emails.render import email_context, load_brand, render, sample_facts
from dashboard.domain.emails.settings import EmailSettings
from dashboard.domain.emails.worker import run_now, run_now_blocker, run_running, utc_now
from dashboard.ui import components as ui
from dashboard.ui.axes import whole_ticks
from dashboard.ui.exports import as_csv, csv_download
from dashboard.ui.labels import label
from dashboard.ui.links import customer_url, mechanic_url, name_column, with_name
from dashboard.ui.times import column_to_the_second, to_the_second
from queries import emails as q

STATUS_COLORS = {
    "sent": "#0F766E",
    "pending": "#A16207",
    "sending": "#1D4ED8",
    "failed": "#B91C1C",
    "skipped": "#94A3B8",
    "uncertain": "#7C3AED",
}
GROUPS_PER_ROW = 3
SHOWN = 20  # cards per list (a cause's failures, the uncertain ones)
TABS = {"outbox": "Outbox", "failed": "Failed emails", "uncertain": "Uncertain emails", "templates": "Templates"}
TAB_KEY = "emails_tab"
BULK_WHAT = {"outage": "the Resend outage", "rate_limited": "the rate limit"}  # "Retry all N failed by …"
DECIDED = {
    "retry": ("Queued again: the job sends it on its next run.", ":material/replay:"),
    "send_again": ("Queued again: the job checks the rules and sends it on its next run.", ":material/replay:"),
    "mark_sent": ("Recorded as sent.", ":material/check_circle:"),
}
LINKS = {"customer": customer_url, "mechanic": mechanic_url}


@ui.write_action
def decide_email(outbox_id: uuid.UUID, decision: str) -> None:
    """Button callback: the decision on the server (role checked there), then refresh every cached query."""
    message, icon = DECIDED[decision]
    ui.run_write(lambda: decide(ui.write_engine(), ui.actor(), outbox_id, decision, utc_now()), message, icon=icon)


@ui.write_action
def retry_group(cause: str, seen: tuple) -> None:
    """Button callback: every failed email of ``cause`` queued again, if the group is still as seen."""
    ui.run_write(
        lambda: retry_cause(ui.write_engine(), ui.actor(), cause, seen=seen, now=utc_now()),
        lambda count: f"Queued {ui.plural(count, 'email')} again: the job sends them on its next run.",
        icon=":material/replay:",
    )


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


def recipient_url(row) -> str | None:
    """The lookup or profile of the person an email is for, carrying their name; None for others."""
    link = LINKS.get(row.recipient_kind)
    if link is None or pd.isna(row.recipient_id) or row.recipient_name is None:
        return None
    return with_name(link(row.recipient_id), row.recipient_name)


def note(row, tz: str) -> str:
    """When it was sent, why it was skipped, its last error, or when it is tried next."""
    if row.status == "sent":
        return f"Sent {to_the_second(row.sent_at, tz)}"
    if isinstance(row.skip_reason, str):
        return f"Skipped: {row.skip_reason}"
    error = row.last_error if isinstance(row.last_error, str) else None
    if row.status == "pending":
        return f"Next attempt {to_the_second(row.next_attempt_at, tz)}" + (f" · last error: {error}" if error else "")
    return error or ""


def outbox_frame(outbox: pd.DataFrame, tz: str) -> pd.DataFrame:
    """The outbox as people read it: who (a link where the address is a person's), labels, times to the second."""
    return pd.DataFrame(
        {
            "to": [recipient_url(row) for row in outbox.itertuples()],
            "address": outbox.recipient,
            "milestone": [label("milestone", m) for m in outbox.milestone],
            "status": [label("email_status", v) for v in outbox.status],
            "queued": column_to_the_second(outbox.created_at, tz),
            "note": [note(row, tz) for row in outbox.itertuples()],
        }
    )


def outbox_export(outbox: pd.DataFrame, tz: str) -> bytes:
    frame = outbox_frame(outbox, tz).assign(
        to=[n or "" for n in outbox.recipient_name],
        sent=column_to_the_second(outbox.sent_at, tz),
        attempts=outbox.attempts,
    )
    return as_csv(
        frame.rename(
            columns={
                "to": "To",
                "address": "Address",
                "milestone": "Milestone",
                "status": "Status",
                "queued": f"Queued ({tz})",
                "note": "Sent, why skipped, last error or next attempt",
                "sent": f"Sent ({tz})",
                "attempts": "Attempts",
            }
        )
    )


def outbox_table(outbox, tz: str) -> None:
    st.dataframe(
        outbox_frame(outbox, tz),
        column_config={
            "to": name_column("To", help="The customer's lookup or the mechanic's profile.", pinned=True),
            "address": st.column_config.TextColumn("Address", width="medium"),
            "milestone": "Milestone",
            "status": st.column_config.TextColumn("Status", width="small"),
            "queued": f"Queued ({tz})",
            "note": st.column_config.TextColumn(
                "What happened",
                width="medium",
                help="When it was sent, why it was skipped, its last error, or its next attempt.",
            ),
        },
        hide_index=True,
    )
    with st.container(horizontal=True, vertical_alignment="center"):
        if len(outbox) == q.OUTBOX_LIMIT:
            st.caption(f"The newest {q.OUTBOX_LIMIT:,} emails; narrow the filters to see older ones.")
        csv_download(
            lambda: outbox_export(outbox, tz),
            file_name="outbox.csv",
            help=f"These emails with names, labels and times to the second ({tz}).",
            key="emails_export",
        )


def recipient_line(row) -> None:
    """Who the email is for: a link to the person where the address is theirs, and the address (plain text)."""
    url = recipient_url(row)
    if url is not None:
        st.markdown(f"To [{ui.escape_markdown(row.recipient_name)}]({url.rsplit('#', 1)[0]})")
    elif row.recipient_kind == "support":
        st.markdown("To the support inbox")
    st.text(f"Address: {row.recipient or 'no address'}")


def email_card(row, when: str, missing: str) -> None:
    """What an admin decides on: the milestone, attempts, recipient and last error, as plain text."""
    st.markdown(f"**{label('milestone', row.milestone)}** · {ui.plural(row.attempts, 'attempt')} · {when}")
    recipient_line(row)
    st.code(row.last_error or missing, language=None, wrap_lines=True)


def failed_card(row, tz: str) -> None:
    cause = BY_CODE[row.cause]
    with st.container(border=True, key=f"failed_{row.id}"):
        email_card(row, f"failed {to_the_second(row.updated_at, tz)}", "No error recorded.")
        if cause.retry:
            st.button(
                "Retry", key=f"retry_{row.id}", icon=":material/replay:", on_click=decide_email, args=(row.id, "retry")
            )
        else:
            st.caption(f"No retry: {cause.sentence}")


def uncertain_card(row, tz: str) -> None:
    with st.container(border=True):
        email_card(row, f"its batch was first sent {to_the_second(row.batch_started_at, tz)}", "No answer recorded.")
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


def failure_group(group, tz: str) -> None:
    """One cause: how many, what it means, and the one thing to do."""
    cause = BY_CODE[group.cause]
    with st.container(border=True, key=f"cause_{cause.code}"):
        st.markdown(
            f"**{cause.label}** · {ui.plural(int(group.emails), 'email')} · latest {to_the_second(group.latest_at, tz)}"
        )
        st.caption(cause.sentence)
        if cause.bulk:
            seen = (int(group.emails), group.latest_at.to_pydatetime())
            ui.confirm(
                f"Retry all {int(group.emails):,} failed by {BULK_WHAT[cause.code]}",
                f"Queue these {ui.plural(int(group.emails), 'email')} again? The job sends them on its next run "
                "and applies every rule first (opted out, cancelled, too old).",
                f"Retry {ui.plural(int(group.emails), 'email')}",
                retry_group,
                (cause.code, seen),
                key=f"retry_cause_{cause.code}",
                icon=":material/replay:",
            )


def outbox_tab(period, milestones: tuple, statuses: tuple) -> None:
    outbox = ui.run_query(q.outbox, loading="the outbox", period=period, milestones=milestones, statuses=statuses)
    if outbox.empty:
        ui.empty_state("No emails match these filters.", "Clear the milestone or status filter, or widen the period.")
    else:
        outbox_table(outbox, period.tz)


def failed_tab(tz: str) -> None:
    groups = ui.run_query(q.failure_groups, loading="failures by cause")
    if groups.empty:
        ui.empty_state("No email has failed.", "Emails Resend refuses, or that run out of attempts, show here.")
        return
    ui.scope_caption(
        ui.ALL_TIME, f"{ui.plural(int(groups.emails.sum()), 'failed email')} of any date, by cause, most first."
    )
    rows = list(groups.itertuples())
    for start in range(0, len(rows), GROUPS_PER_ROW):  # at most three side by side: each stays readable at 1280 px
        for column, group in zip(st.columns(GROUPS_PER_ROW), rows[start : start + GROUPS_PER_ROW]):
            with column:
                failure_group(group, tz)
    cause = st.segmented_control(
        "Show the emails of",
        list(groups.cause),
        format_func=lambda c: BY_CODE[c].label,
        default=groups.cause.iloc[0],
        required=True,
        key="emails_cause",
    )
    failed = ui.run_query(q.awaiting_decision, loading="failed emails", status="failed", cause=cause, limit=SHOWN)
    for row in failed.itertuples():
        failed_card(row, tz)
    if len(failed) == SHOWN:
        st.caption(f"The {SHOWN} most recent of this cause; filter the outbox by status Failed to see all.")


def uncertain_tab(tz: str) -> None:
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
        uncertain_card(row, tz)
    if len(uncertain) == SHOWN:
        st.caption(f"The {SHOWN} most recent; filter the outbox by status Uncertain to see all.")


def run_now_control(settings: EmailSettings) -> None:
    """ "Run now", and beside it why it cannot run when it cannot."""
    minute = utc_now().replace(second=0, microsecond=0)
    state = ui.run_query(q.job_state, loading="the job's state", now=minute, lookback=settings.lookback).iloc[0]
    blocker = run_now_blocker(
        ui.actor().role,
        settings,
        running=run_running(),
        due=int(state.due + state.new),
        in_flight=int(state.in_flight),
    )
    with st.container(horizontal=True, vertical_alignment="center", key="run_now"):
        st.button(
            "Run now",
            icon=":material/send:",
            on_click=run_job,
            disabled=blocker is not None,
            help="Send the emails that are due now, inside the app (the embedded database allows one writer).",
        )
        st.caption(
            blocker
            or f"{ui.plural(int(state.due), 'email')} due now" + (", and milestones to queue." if state.new else ".")
        )


def per_day_figure(shown: pd.DataFrame, tz: str, today: dt.date) -> go.Figure:
    """Emails queued per day stacked by status (labels, the status colours), today drawn "so far"."""
    fig = px.bar(
        shown.assign(status=[label("email_status", v) for v in shown.status]),
        x="day",
        y="emails",
        color="status",
        color_discrete_map={label("email_status", k): v for k, v in STATUS_COLORS.items()},
        category_orders={
            "status": [
                label("email_status", v) for v in ("sent", "pending", "sending", "skipped", "failed", "uncertain")
            ]
        },
    )
    fig.update_traces(hovertemplate="%{x|%a %d %b %Y}: %{y:,} %{fullData.name}<extra></extra>")
    fig.update_layout(legend=dict(title=None, xanchor="right", x=1))
    whole_ticks(fig, shown.groupby("day").emails.sum().max() if len(shown) else 0)
    ui.mark_partial(fig, sorted(shown.day.unique()), "day", tz, today=today)  # today, drawn "so far"
    return fig


def template_preview(settings) -> None:
    with ui.filter_bar():
        milestone = st.selectbox(
            "Template",
            EMAIL_MILESTONES,
            format_func=lambda m: label("milestone", m),
            key="emails_template",
            width=360,
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


def tab_picked() -> None:
    """A tab picked: the URL says which (``?status=`` for the failed and uncertain ones)."""
    status = next((code for code, name in TABS.items() if name == st.session_state[TAB_KEY]), None)
    if status in q.DECISION_STATUSES:
        st.query_params["status"] = status
    else:
        st.query_params.pop("status", None)


@ui.fragment
def views(period, milestones: tuple, statuses: tuple, settings: EmailSettings) -> None:
    """The tabs: only the open one is built, and a tab or a control in it reruns this part."""
    ui.tabbed(
        {
            TABS["outbox"]: lambda: outbox_tab(period, milestones, statuses),
            TABS["failed"]: lambda: failed_tab(period.tz),
            TABS["uncertain"]: lambda: uncertain_tab(period.tz),
            TABS["templates"]: lambda: template_preview(settings),
        },
        key=TAB_KEY,
        on_change=tab_picked,
    )


ui.page_header(
    "Emails",
    "The milestone emails queued for customers, mechanics and support: what was sent, "
    "skipped or failed, and what each template looks like.",
)
ui.write_notice(st.warning)

wanted_tab = st.query_params.get("status")
if wanted_tab is not None and wanted_tab not in q.DECISION_STATUSES:
    st.warning(
        ui.escape_markdown(f"The link's status “{wanted_tab[:40]}” was ignored (use failed or uncertain)."),
        icon=":material/link_off:",
    )
period = ui.period()
settings = EmailSettings.from_settings(ui.settings())
with ui.filter_bar():
    milestones = tuple(
        st.multiselect(
            "Milestones",
            EMAIL_MILESTONES,
            format_func=lambda m: label("milestone", m),
            placeholder="All milestones",
            key="emails_milestones",
            width=360,
        )
    )
    statuses = tuple(
        st.multiselect(
            "Statuses",
            EMAIL_STATUSES,
            format_func=lambda v: label("email_status", v),
            placeholder="All statuses",
            key="emails_statuses",
            width=280,
        )
    )
run_now_control(settings)
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
ui.scope_caption(period, "Emails by the day they were queued.")

if per_day.empty:
    ui.empty_state(
        "No emails were queued in this period.", "Choose other dates in the sidebar, or clear the milestone filter."
    )
else:
    shown = per_day[per_day.status.isin(statuses)] if statuses else per_day
    ui.chart(
        per_day_figure,
        shown,
        period.tz,
        today_in(period.tz),
        title="Emails queued per day, by status",
        x_title=f"Day ({period.tz})",
        y_title="Emails (count)",
        y_format="count",
    )

if wanted_tab in q.DECISION_STATUSES:  # a link's tab, opened until another one is picked
    st.session_state[TAB_KEY] = TABS[wanted_tab]
views(period, milestones, statuses, settings)
