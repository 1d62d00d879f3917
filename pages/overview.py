"""Overview, every role's home: what needs doing now (tiles that open the page behind them,
filtered), then the marketplace's headline numbers of the chosen period.

Each tile's figure comes from the query of the page it opens, so the two always agree:
support sees the review queue and the follow-ups near or past their target, a manager the
week's utilisation and unfilled peak hours, an admin the intake -> session conversion, upsell
revenue and the emails waiting for a decision.
"""

import datetime as dt

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from dashboard.core.period import incomplete_buckets, today_in
from dashboard.domain.calendars.slots import SlotRules
from dashboard.domain.followups import FollowUpRules
from dashboard.domain.funnel.interactions import DEFAULT_STEPS, DEFAULT_WINDOW_DAYS, FunnelSpec
from dashboard.ui import components as ui
from queries import emails, followups, funnel, overview, reviews, upsells

PURPOSE = {
    "support": "What needs doing now in the review queue and the follow-ups, then how the marketplace did.",
    "manager": "How full this week's calendars are and where peak hours are still open, then how the marketplace did.",
    "admin": "How intake converts, what upsells earn and which emails need you, then how the marketplace did.",
}


def support_tiles(now: dt.datetime) -> list[ui.HomeTile]:
    queue = ui.run_query(  # the review queue's own count, with its unfiltered arguments
        reviews.queue_size,
        loading="the review queue",
        status="pending",
        flags=(),
        ratings=(),
        mechanic_id=None,
        period=None,
    ).iloc[0]
    waiting = int(queue.reviews)
    if waiting:
        age = ui.fmt_duration((now - pd.Timestamp(queue.oldest).to_pydatetime()).total_seconds() / 60)
        todo, tone = f"The oldest has waited {age}: moderate it first.", "warning"
    else:
        todo, tone = "The queue is clear.", "good"
    counts = ui.run_query(followups.summary, now=now, rules=FollowUpRules.from_settings(ui.settings())).iloc[0]
    late, soon = int(counts.breached), int(counts.soon)
    return [
        ui.HomeTile(
            "Reviews waiting",
            ui.fmt_count(waiting),
            ui.NOW,
            todo,
            "reviews.py",
            "Open the queue",
            {"status": "pending"},
            tone,
            help="Reviews waiting for a decision, of any date.",
        ),
        ui.HomeTile(
            "Follow-ups past their target",
            ui.fmt_count(late),
            ui.NOW,
            "Answer or assign these first." if late else "None is late.",
            "followups.py",
            "Open late ones",
            {"due": "overdue"},
            "bad" if late else "good",
            help="Waiting follow-ups older than their type's first-response target.",
        ),
        ui.HomeTile(
            f"Follow-ups due within {followups.SOON_MINUTES // 60} h",
            ui.fmt_count(soon),
            ui.NOW,
            "Assign these before they are late." if soon else "None is close to its target.",
            "followups.py",
            "Open due soon",
            {"due": "soon"},
            "warning" if soon else "good",
            help="Waiting follow-ups whose first-response target falls within the next "
            f"{followups.SOON_MINUTES // 60} hours.",
        ),
    ]


def manager_tiles(now: dt.datetime, tz: str) -> list[ui.HomeTile]:
    today = today_in(tz)
    week_start = today - dt.timedelta(days=today.weekday())
    week = ui.run_query(
        overview.week_capacity,
        loading="this week's calendars",
        week_start=week_start,
        tz=tz,
        session_minutes=SlotRules.from_settings(ui.settings()).session_minutes,
        now=now.replace(minute=0),
    ).iloc[0]
    scope = f"this week (from {week_start:%a %d %b})"
    hours = f"{week.booked_hours:,.1f} of {week.available_hours:,.1f} available hours are booked"
    unfilled = week.unfilled_peak_hours
    return [
        ui.HomeTile(
            "Utilisation",
            ui.fmt_percent(week.utilisation),
            scope,
            f"{hours}: see where the gaps are." if week.available_hours else "No mechanic is available this week.",
            "calendars.py",
            "Open heatmaps",
            {"view": "heatmaps"},
            "neutral" if week.available_hours else "warning",
            help=f"Booked hours / available hours over every active mechanic, days in {tz}.",
        ),
        ui.HomeTile(
            "Unfilled peak hours",
            f"{unfilled:,.1f} h",
            scope,
            "Peak-priced hours still open from now on: check the peak prices."
            if unfilled
            else "Every peak hour left is booked.",
            "calendars.py",
            "Review peak pricing",
            {"view": "peak"},
            "warning" if unfilled else "good",
            help="Available hours priced above the base (multiplier over 1), from the current hour to the week's end, "
            "not booked yet.",
        ),
    ]


def admin_tiles(period) -> list[ui.HomeTile]:
    steps = ui.run_query(
        funnel.funnel, "the funnel", spec=FunnelSpec(DEFAULT_STEPS, period, DEFAULT_WINDOW_DAYS)
    ).set_index("interaction_type")
    entered, booked = int(steps.customers.loc["intake"]), int(steps.customers.loc["session"])
    sales = ui.run_query(upsells.revenue, loading="upsell revenue", period=period)  # the Upsells page's figure
    sold, before = sales.loc["current"], sales.loc["previous"]
    failed = int(ui.run_query(emails.failure_groups, loading="failed emails").emails.sum())
    uncertain = int(ui.run_query(overview.uncertain_emails, loading="uncertain emails").uncertain.iloc[0])
    return [
        ui.HomeTile(
            "Intake → session",
            ui.fmt_percent(steps.from_first.loc["session"]),
            period,
            f"{booked:,} of {entered:,} booked within {DEFAULT_WINDOW_DAYS} days: see where the rest drop out."
            if entered
            else "No customer made an intake in the period.",
            "funnel.py",
            "Open the funnel",
            help="Customers whose first intake falls in the period and who had a session within the window, "
            "as the CRM funnel counts them.",
        ),
        ui.HomeTile(
            "Upsell revenue",
            ui.fmt_money(sold.revenue_cents),
            period,
            f"{int(sold.purchases):,} bought in the period: see which offers sell.",
            "upsells.py",
            "Open upsells",
            delta=ui.change(sold.revenue_cents, before.revenue_cents, ui.fmt_money),
            help="Price of the upsells bought in the period, as the Upsells page counts it; the change compares "
            "with the period before.",
        ),
        ui.HomeTile(
            "Emails failed",
            ui.fmt_count(failed),
            ui.NOW,
            "Retry them, or dismiss the ones that cannot be sent." if failed else "No email has failed.",
            "emails.py",
            "Open failed",
            {"status": "failed"},
            "bad" if failed else "good",
            lower_is_better=True,
            help="Emails Resend refused or that ran out of attempts, of any date, waiting for your decision.",
        ),
        ui.HomeTile(
            "Emails uncertain",
            ui.fmt_count(uncertain),
            ui.NOW,
            "Check each in Resend's log, then mark it sent or send it again." if uncertain else "None to check.",
            "emails.py",
            "Open uncertain",
            {"status": "uncertain"},
            "warning" if uncertain else "good",
            lower_is_better=True,
            help="Emails that may have reached Resend before a worker stopped, of any date.",
        ),
    ]


def sessions_figure(per_day: pd.DataFrame, tz: str, today: dt.date) -> go.Figure:
    """Sessions completed per day, today's bar drawn "so far"."""
    fig = px.bar(per_day, x="day", y="sessions")
    fig.update_traces(
        hovertemplate="%{x|" + ui.HOVER["date"] + "}: %{y:" + ui.HOVER["count"] + "} sessions<extra></extra>"
    )
    ui.mark_partial(fig, per_day.day, "day", tz, today=today)
    return fig


def headline(period) -> None:
    kpis = ui.run_query(overview.kpis, loading="the headline numbers", period=period)
    current, before = kpis.loc["current"], kpis.loc["previous"]
    ui.kpi_row(
        [
            ui.Kpi(
                "Sessions completed",
                ui.fmt_count(current.sessions_completed),
                ui.change(current.sessions_completed, before.sessions_completed, ui.fmt_count),
                help="Sessions that ended in the period with status completed.",
                scope=period,
            ),
            ui.Kpi(
                "Average rating",
                ui.fmt_rating(current.avg_rating),
                ui.change(current.avg_rating, before.avg_rating, lambda diff: f"{diff:.2f}"),
                help=f"Mean of the {current.reviews_published:,} published reviews written in the period.",
                scope=period,
            ),
        ]
    )
    ui.comparison_caption(period)
    per_day = ui.run_query(overview.sessions_completed_per_day, loading="sessions per day", period=period)
    if per_day.sessions.sum() == 0:
        ui.empty_state(
            "No sessions were completed in this period.", "Choose earlier dates or a longer period in the sidebar."
        )
        return
    today = today_in(period.tz)
    ui.chart(
        sessions_figure,
        per_day,
        period.tz,
        today,
        title="Sessions completed per day",
        x_title=f"Day ({period.tz})",
        y_title="Sessions completed (count)",
        x_format="date",
        y_format="count",
    )
    if any(incomplete_buckets(per_day.day, "day", today)):
        st.caption("Today is not over: its bar, lighter and hatched, shows the sessions so far.")


role = ui.actor().role
period = ui.period()
now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)  # snapshots move on once a minute
ui.page_header("Overview", PURPOSE.get(role, PURPOSE["admin"]))

st.subheader("Needs attention", anchor=False)
if role == "support":
    ui.home_tiles(support_tiles(now))
elif role == "manager":
    ui.home_tiles(manager_tiles(now, period.tz))
else:
    ui.home_tiles(admin_tiles(period))

st.subheader(f"The marketplace {ui.scope_text(period)}", anchor=False)  # "in the last 30 days", "today"
headline(period)
