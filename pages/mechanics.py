"""Mechanic profiles: the leaderboard by Bayesian rating, and one mechanic's profile.

The leaderboard lists every active mechanic, all time. The profile shows the mechanic's
details, star rating and ranking score, the rating distribution, their reviews (hidden ones
marked, as staff see them; each author links to their customer lookup) and measured response
times against their SLA in the sidebar period. ``?mechanic=<id>`` opens that profile.
Names, bios and review text are escaped; nothing users wrote is rendered as markup.
"""

import functools
import uuid

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from dashboard.domain.reviews import highlight_html
from dashboard.ui import components as ui
from dashboard.ui.labels import label
from dashboard.ui.links import customer_url, mechanic_url, name_column, with_name
from queries import mechanics as mechanic_queries
from queries import reviews as review_queries

REVIEWS_SHOWN = 30
BOARD_ROWS = 15  # rows of the leaderboard before it scrolls
SCORE_HELP = (
    "The rating the ranking uses: the average of the mechanic's published reviews, pulled "
    "toward the average of all mechanics while they have only a few."
)


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
    ui.scope_caption(
        ui.ALL_TIME,
        f"All {len(board):,} active mechanics, ranked by their reviews: a few reviews count for little until "
        "there are more. Click a name or pick a row for the profile; click a column to sort.",
    )
    st.dataframe(
        board.assign(
            specialties=[[ui.specialty_label(x) for x in listed] for listed in board.specialties],
            mechanic=[with_name(mechanic_url(mid), name) for mid, name in zip(ids, board.display_name)],
        ),
        column_order=[
            "rank",
            "mechanic",
            "bayesian_rating",
            "avg_rating",
            "total_reviews",
            "specialties",
            "response_sla_minutes",
            "years_experience",
        ],
        column_config={
            "rank": st.column_config.NumberColumn("Rank", width=56, pinned=True),
            "mechanic": name_column("Mechanic", help="Opens the mechanic's profile.", pinned=True),
            "bayesian_rating": st.column_config.NumberColumn("Score", format="%.2f", help=SCORE_HELP, width=72),
            "avg_rating": st.column_config.NumberColumn("Average", format="%.2f ★", width=84),
            "total_reviews": st.column_config.NumberColumn("Reviews", format="localized", width=76),
            "specialties": st.column_config.ListColumn("Specialties", width=210),
            "response_sla_minutes": st.column_config.NumberColumn(
                "SLA", format="%d min", width=72, help="Accepts a request within this time."
            ),
            "years_experience": st.column_config.NumberColumn("Experience", format="%d yrs", width=92),
        },
        hide_index=True,
        key="leaderboard",
        height=35 * (min(len(board), BOARD_ROWS) + 1) + 3,
        on_select=functools.partial(open_profile, ids),
        selection_mode="single-row",
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
    ui.review_styles()
    for row in shown.itertuples(index=False):
        with st.container(border=True):
            author = (
                f"[{ui.escape_markdown(row.customer_name or row.customer_email)}]({customer_url(row.customer_id)})"
                if pd.notna(row.customer_id)
                else "a deleted account"
            )
            st.markdown(
                f"**{ui.fmt_stars(row.rating)}** · by {author} · {ui.fmt_datetime(row.created_at, tz, date_only=True)}"
            )
            if row.status == "hidden":
                ui.status_badge(
                    f"Hidden from customers: {label('hide_reason', row.hidden_reason)}",
                    icon=":material/visibility_off:",
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
    ui.chart(
        within_sla_figure,
        weekly,
        title=f"Share of sessions accepted within the {sla}-minute SLA",
        x_title=f"Week ({period.tz})",
        y_title="Within SLA (share of sessions)",
        y_format="percent",
    )
    ui.chart(
        median_response_figure,
        weekly,
        sla,
        title="Median time from request to acceptance",
        x_title=f"Week ({period.tz})",
        y_title="Median response (minutes)",
    )


def rating_figure(distribution: pd.DataFrame) -> go.Figure:
    fig = px.bar(
        distribution.assign(label=distribution.stars.map(lambda s: f"{s} ★")), x="reviews", y="label", orientation="h"
    )
    fig.update_yaxes(categoryorder="array", categoryarray=[f"{s} ★" for s in range(1, 6)])
    fig.update_traces(hovertemplate="%{y}: %{x:,} reviews<extra></extra>")
    return fig


def within_sla_figure(weekly: pd.DataFrame) -> go.Figure:
    fig = px.bar(weekly, x="week", y="within_sla_share")
    fig.update_traces(hovertemplate="Week of %{x|%d %b %Y}: %{y:.0%} within SLA<extra></extra>")
    fig.update_yaxes(range=[0, 1])
    return fig


def median_response_figure(weekly: pd.DataFrame, sla: int) -> go.Figure:
    fig = px.line(weekly, x="week", y="median_minutes", markers=True)
    fig.add_hline(y=sla, line_dash="dash", annotation_text=f"SLA {sla} min")
    fig.update_traces(hovertemplate="Week of %{x|%d %b %Y}: median %{y:.1f} min<extra></extra>")
    return fig


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
        linked = st.query_params.get("mechanic")
        if linked is not None and linked not in names:
            ui.empty_state("This link does not name a mechanic.", "Pick one above, or click a row of the leaderboard.")
        else:
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
        f"Rank {int(profile['rank'])} of {profile.ranked_mechanics:,} active mechanics"
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
                help=f"All time: the average of {profile.total_reviews:,} published reviews.",
            ),
            ui.Kpi("Ranking score", f"{profile.bayesian_rating:.2f}", help=f"All time. {SCORE_HELP}"),
            ui.Kpi(
                "Response SLA",
                ui.fmt_duration(profile.response_sla_minutes),
                help="The time within which this mechanic should accept a request.",
            ),
            ui.Kpi(
                "Median response",
                "—" if summary.sessions == 0 else ui.fmt_duration(summary.median_minutes),
                help=f"In the period: from the request to the session accepted, {summary.sessions:,} sessions.",
            ),
            ui.Kpi(
                "Within SLA",
                ui.fmt_percent(summary.within_sla_share),
                help="In the period: the share of sessions accepted within the SLA.",
            ),
        ]
    )

    period = ui.period()
    st.caption(
        f"Ratings and rank are all time; response times cover {period.start:%d %b %Y} – {period.end:%d %b %Y} "
        f"({period.tz}), the sidebar period."
    )
    distribution = ui.run_query(mechanic_queries.rating_distribution, mechanic_id=mechanic_id)
    ratings_column, responses_column = st.columns(2)
    with ratings_column:
        st.subheader("Rating distribution", anchor=False)
        if distribution.reviews.sum() == 0:
            ui.empty_state("No published reviews yet.", "The distribution shows once reviews are published.")
        else:
            ui.chart(
                rating_figure,
                distribution,
                title="Published reviews by stars",
                x_title="Reviews (count)",
                y_title="Stars",
                x_format="count",
            )
    with responses_column:
        response_view(mechanic_id, int(profile.response_sla_minutes))
    reviews_list(mechanic_id, int(profile.total_reviews), ui.period().tz)


ui.page_header("Mechanic profiles", "Who the best-rated mechanics are, and how each one is reviewed and responds.")
if "mechanic" in st.query_params and "view" not in st.query_params:  # a link to a profile (?mechanic=<id>)
    st.session_state["view"] = "Profile"
leaderboard_tab, profile_tab = st.tabs(["Leaderboard", "Profile"], key="view", on_change="rerun", bind="query-params")
if leaderboard_tab.open:
    with leaderboard_tab:
        leaderboard_view()
if profile_tab.open:
    with profile_tab:
        profile_view()
