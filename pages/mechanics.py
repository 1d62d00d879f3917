"""Mechanic profiles: the leaderboard by Bayesian rating, and one mechanic's profile.

The profile shows the mechanic's details, star rating and Bayesian score, the
rating distribution, their reviews (hidden ones marked, as staff see them)
and measured response times against their SLA in the sidebar period.
Names, bios and review text are escaped; nothing users wrote is rendered as markup.
"""

import functools
import uuid

import pandas as pd
import plotly.express as px
import streamlit as st

from dashboard.domain.reviews import HIDE_REASON_LABELS, PRIOR_WEIGHT, highlight_html
from dashboard.ui import components as ui
from queries import mechanics as mechanic_queries
from queries import reviews as review_queries

REVIEWS_SHOWN = 30


def open_profile(mechanic_ids: list[str]) -> None:
    """Leaderboard row clicked: show that mechanic's profile."""
    rows = st.session_state["leaderboard"].selection.rows
    if rows:
        st.session_state["mechanic"] = mechanic_ids[rows[0]]
        st.session_state["view"] = "Profile"


def leaderboard_view() -> None:
    specialty = st.selectbox(
        "Specialty",
        ui.run_query(mechanic_queries.specialties),
        index=None,
        format_func=ui.specialty_label,
        placeholder="All specialties",
        key="specialty",
        bind="query-params",
        width=320,
    )
    board = ui.run_query(mechanic_queries.leaderboard, loading="the leaderboard", specialty=specialty)
    if board.empty:
        ui.empty_state(
            "No active mechanic lists this specialty." if specialty else "There are no active mechanics.",
            "Choose another specialty." if specialty else "Mechanics appear here once they are active.",
        )
        return
    ids = [str(mid) for mid in board.user_id]
    st.dataframe(
        board.assign(specialties=[[ui.specialty_label(x) for x in listed] for listed in board.specialties]),
        column_order=[
            "rank",
            "display_name",
            "bayesian_rating",
            "avg_rating",
            "total_reviews",
            "specialties",
            "response_sla_minutes",
            "years_experience",
        ],
        column_config={
            "rank": st.column_config.NumberColumn("Rank", width="small"),
            "display_name": "Mechanic",
            "bayesian_rating": st.column_config.NumberColumn(
                "Bayesian rating", format="%.2f", help="The rating used for ranking (see below)."
            ),
            "avg_rating": st.column_config.NumberColumn("Average rating", format="%.2f ★"),
            "total_reviews": st.column_config.NumberColumn("Reviews", format="localized"),
            "specialties": st.column_config.ListColumn("Specialties"),
            "response_sla_minutes": st.column_config.NumberColumn("Response SLA", format="%d min"),
            "years_experience": st.column_config.NumberColumn("Experience", format="%d yrs"),
        },
        hide_index=True,
        key="leaderboard",
        height=35 * (min(len(board), 15) + 1) + 3,
        on_select=functools.partial(open_profile, ids),
        selection_mode="single-row",
    )
    st.caption(
        f"Ranked by Bayesian rating = ({PRIOR_WEIGHT} × C + n × average) / ({PRIOR_WEIGHT} + n), where n is the "
        f"mechanic's published reviews and C = {board.global_mean.iloc[0]:.2f} the mean of all published reviews: "
        "a few reviews count for little until there are more. Active mechanics only; click a row for the profile."
    )


def reviews_list(mechanic_id: uuid.UUID, total: int, tz: str) -> None:
    shown = ui.run_query(
        review_queries.recent_reviews, mechanic_id=mechanic_id, statuses=("published", "hidden"), limit=REVIEWS_SHOWN
    )
    st.subheader("Reviews", anchor=False)
    if shown.empty:
        ui.empty_state("No published or hidden reviews yet.", "Reviews appear here once they are published.")
        return
    st.caption(
        f"The newest {len(shown):,} published and hidden reviews ({total:,} published in all). "
        "Hidden reviews are visible to staff only."
    )
    for row in shown.itertuples(index=False):
        with st.container(border=True):
            author = ui.escape_markdown(row.customer_name or "a deleted account")
            st.markdown(
                f"**{ui.fmt_stars(row.rating)}** · by {author} · {ui.fmt_datetime(row.created_at, tz, date_only=True)}"
            )
            if row.status == "hidden":
                ui.status_badge(
                    f"Hidden from customers: {HIDE_REASON_LABELS[row.hidden_reason]}", icon=":material/visibility_off:"
                )
            if row.review_text:
                ui.review_text(highlight_html(row.review_text))
            else:
                st.caption("No text: a rating only.")
            if row.helpful_count:
                st.caption(f"{row.helpful_count:,} found this helpful")


def response_view(mechanic_id: uuid.UUID, sla: int) -> None:
    period = ui.period()
    weekly = ui.run_query(
        mechanic_queries.response_times, loading="response times", mechanic_id=mechanic_id, period=period
    )
    st.subheader("Response times", anchor=False)
    if weekly.empty:
        ui.empty_state("No sessions were accepted in this period.", "Choose a longer period in the sidebar.")
        return
    fig = px.bar(weekly, x="week", y="within_sla_share")
    fig.update_traces(hovertemplate="Week of %{x|%d %b %Y}: %{y:.0%} within SLA<extra></extra>")
    fig.update_yaxes(tickformat=".0%", range=[0, 1])
    ui.chart(
        fig,
        title=f"Share of sessions accepted within the {sla}-minute SLA",
        x_title=f"Week ({period.tz})",
        y_title="Within SLA (share of sessions)",
    )
    fig = px.line(weekly, x="week", y="median_minutes", markers=True)
    fig.add_hline(y=sla, line_dash="dash", annotation_text=f"SLA {sla} min")
    fig.update_traces(hovertemplate="Week of %{x|%d %b %Y}: median %{y:.1f} min<extra></extra>")
    ui.chart(
        fig,
        title="Median time from request to acceptance",
        x_title=f"Week ({period.tz})",
        y_title="Median response (minutes)",
    )


def rating_chart(distribution: pd.DataFrame) -> None:
    fig = px.bar(
        distribution.assign(label=distribution.stars.map(lambda s: f"{s} ★")), x="reviews", y="label", orientation="h"
    )
    fig.update_yaxes(categoryorder="array", categoryarray=[f"{s} ★" for s in range(1, 6)])
    fig.update_traces(hovertemplate="%{y}: %{x:,} reviews<extra></extra>")
    ui.chart(fig, title="Published reviews by stars", x_title="Reviews (count)", y_title="Stars")


def profile_view() -> None:
    options = ui.run_query(mechanic_queries.mechanic_options)
    names = {
        str(mid): name + ("" if active else " (inactive)")
        for mid, name, active in zip(options.user_id, options.display_name, options.is_active)
    }
    # Kept in the URL as the mechanic's id (names need not be unique), so a profile can be shared.
    if "mechanic" not in st.session_state and st.query_params.get("mechanic") in names:
        st.session_state["mechanic"] = st.query_params["mechanic"]
    chosen = st.selectbox(
        "Mechanic", list(names), index=None, format_func=names.get, key="mechanic", placeholder="Choose a mechanic"
    )
    if chosen is not None and st.query_params.get("mechanic") != chosen:
        st.query_params["mechanic"] = chosen
    if chosen is None:
        ui.empty_state("Choose a mechanic.", "Pick one above, or click a row of the leaderboard.")
        return
    mechanic_id = uuid.UUID(chosen)
    profile = ui.run_query(mechanic_queries.profile, mechanic_id=mechanic_id).iloc[0]
    summary = ui.run_query(mechanic_queries.response_summary, mechanic_id=mechanic_id, period=ui.period()).iloc[0]

    st.header(ui.escape_markdown(profile.display_name), anchor=False)
    if not profile.is_active:
        ui.status_badge("Inactive", icon=":material/pause_circle:")
    ui.specialty_badges(profile.specialties)
    facts = [
        f"Rank {int(profile['rank'])} of {profile.ranked_mechanics:,} by Bayesian rating"
        if profile.is_active
        else "Not ranked while inactive"
    ]
    if pd.notna(profile.years_experience):
        facts.append(f"{int(profile.years_experience)} years of experience")
    facts.append(f"works in {ui.escape_markdown(profile.timezone)}")
    st.caption(" · ".join(facts))
    if pd.notna(profile.bio):
        st.markdown(ui.escape_markdown(profile.bio))

    ui.kpi_row(
        [
            ui.Kpi(
                "Rating",
                ui.fmt_rating(profile.avg_rating) if profile.total_reviews else "—",
                help=f"Mean of {profile.total_reviews:,} published reviews.",
            ),
            ui.Kpi(
                "Bayesian rating",
                f"{profile.bayesian_rating:.2f}",
                help=f"({PRIOR_WEIGHT} × C + n × average) / ({PRIOR_WEIGHT} + n) with C = "
                f"{profile.global_mean:.2f}, the mean of all published reviews.",
            ),
            ui.Kpi(
                "Response SLA",
                ui.fmt_duration(profile.response_sla_minutes),
                help="The time within which this mechanic should accept a request.",
            ),
            ui.Kpi(
                "Median response",
                "—" if summary.sessions == 0 else ui.fmt_duration(summary.median_minutes),
                help=f"Request created → session accepted, {summary.sessions:,} sessions accepted in the period.",
            ),
            ui.Kpi(
                "Within SLA",
                ui.fmt_percent(summary.within_sla_share),
                help="Share of the period's accepted sessions accepted within the SLA.",
            ),
        ]
    )

    distribution = ui.run_query(mechanic_queries.rating_distribution, mechanic_id=mechanic_id)
    ratings_column, responses_column = st.columns(2)
    with ratings_column:
        st.subheader("Rating distribution", anchor=False)
        if distribution.reviews.sum() == 0:
            ui.empty_state("No published reviews yet.", "The distribution shows once reviews are published.")
        else:
            rating_chart(distribution)
    with responses_column:
        response_view(mechanic_id, int(profile.response_sla_minutes))
    reviews_list(mechanic_id, int(profile.total_reviews), ui.period().tz)


ui.page_header("Mechanic profiles", "Who the best-rated mechanics are, and how each one is reviewed and responds.")
leaderboard_tab, profile_tab = st.tabs(["Leaderboard", "Profile"], key="view", on_change="rerun", bind="query-params")
if leaderboard_tab.open:
    with leaderboard_tab:
        leaderboard_view()
if profile_tab.open:
    with profile_tab:
        profile_view()
