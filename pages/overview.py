"""Overview: the headline numbers of the chosen period against the period before."""

import plotly.express as px

from dashboard.ui import components as ui
from queries import overview

ui.page_header(
    "Overview", "How the marketplace did in the chosen period, against the period of equal length before it."
)

period = ui.period()
kpis = ui.run_query(overview.kpis, loading="the headline numbers", period=period)
now, before = kpis.loc["current"], kpis.loc["previous"]
open_follow_ups = ui.run_query(overview.open_follow_ups).loc[0, "open_follow_ups"]

ui.kpi_row(
    [
        ui.Kpi(
            "Sessions completed",
            ui.fmt_count(now.sessions_completed),
            ui.change(now.sessions_completed, before.sessions_completed, ui.fmt_count),
            help="Sessions that ended in the period with status completed.",
        ),
        ui.Kpi(
            "Intake → session",
            ui.fmt_percent(now.conversion_rate),
            ui.change(now.conversion_rate, before.conversion_rate, ui.fmt_points),
            help=f"{now.converted_requests:,} of the {now.intake_requests:,} intake requests made in the period "
            "have a completed session (follow-up questions not counted).",
        ),
        ui.Kpi(
            "Average rating",
            ui.fmt_rating(now.avg_rating),
            ui.change(now.avg_rating, before.avg_rating, lambda diff: f"{diff:.2f}"),
            help=f"Mean of the {now.reviews_published:,} published reviews written in the period.",
        ),
    ]
)
ui.kpi_row(
    [
        ui.Kpi(
            "Upsell revenue",
            ui.fmt_money(now.upsell_revenue_cents),
            ui.change(now.upsell_revenue_cents, before.upsell_revenue_cents, ui.fmt_money),
            help="Price of the follow-up services bought in the period.",
        ),
        ui.Kpi(
            "Open follow-ups",
            ui.fmt_count(open_follow_ups),
            help="Follow-up requests waiting for an answer right now (open or matched), whatever the period.",
        ),
        ui.Kpi(
            "Emails failed",
            ui.fmt_count(now.emails_failed),
            ui.change(now.emails_failed, before.emails_failed, ui.fmt_count),
            lower_is_better=True,
            help="Milestone emails queued in the period whose sending failed.",
        ),
    ]
)
ui.comparison_caption(period)

per_day = ui.run_query(overview.sessions_completed_per_day, loading="sessions per day", period=period)
if per_day.sessions.sum() == 0:
    ui.empty_state(
        "No sessions were completed in this period.", "Choose earlier dates or a longer period in the sidebar."
    )
else:
    fig = px.bar(per_day, x="day", y="sessions")
    fig.update_traces(hovertemplate="%{x|%a %d %b %Y}: %{y:,} sessions<extra></extra>")
    ui.chart(
        fig, title="Sessions completed per day", x_title=f"Day ({period.tz})", y_title="Sessions completed (count)"
    )
