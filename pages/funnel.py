"""CRM funnel: where customers fall out between intake, session and a follow-up sale.

Admins pick the steps in order and the conversion window; the period and display timezone
come from the sidebar. The rules (entry, order, window, ties, repeats, time zones) are in
``dashboard.domain.funnel.interactions``; every number is computed in SQL by ``queries.funnel``.
"""

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from dashboard.core.schema import FUNNEL_MAX_STEPS, INTERACTION_TYPES
from dashboard.domain.funnel.interactions import (
    DEFAULT_STEPS,
    DEFAULT_WINDOW_DAYS,
    MAX_WINDOW_DAYS,
    NO_SESSION,
    STEP_LABELS,
    UNKNOWN,
    CrmInputError,
    FunnelSpec,
    serving_funnel,
)
from dashboard.domain.funnel.rollups import refresh
from dashboard.ui import components as ui
from dashboard.ui.exports import csv_download, export_frame
from dashboard.ui.labels import label
from dashboard.ui.links import customer_url, name_column, with_name
from queries import funnel as q

PREVIEW_ROWS = 200
CSV_LIMIT = 100_000
GRAIN_LABELS = {"day": "Day", "week": "Week", "month": "Month"}
# The groups the breakdown makes up itself, as words.
GROUP_WORDS = {q.OTHER: "Other", UNKNOWN: "Unknown", NO_SESSION: "No session"}
GROUP_LABELS = {"plan": lambda g: label("plan", g), "acquisition_channel": lambda g: label("channel", g)}


def in_tz(frame: pd.DataFrame, columns, tz: str) -> pd.DataFrame:
    return frame.assign(**{c: frame[c].dt.tz_convert(tz) for c in columns})


def group_label(dimension: str, group: str) -> str:
    """A breakdown group as people read it: the label of a plan or channel, a specialty's name,
    a vehicle make as the customer typed it."""
    if group in GROUP_WORDS:
        return GROUP_WORDS[group]
    if dimension == "specialty":
        return ui.specialty_label(group)
    return GROUP_LABELS.get(dimension, str)(group)


def with_labels(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop-off rows with the plan and channel as labels and the name as a link to the customer."""
    return frame.assign(
        plan=frame.plan.map(lambda code: label("plan", code)),
        acquisition_channel=frame.acquisition_channel.map(lambda code: label("channel", code)),
        customer=[
            with_name(customer_url(cid), name or email)
            for cid, name, email in zip(frame.customer_id, frame.full_name, frame.email)
        ],
    )


@ui.write_action
def rebuild_rollup() -> None:
    """Button callback: refresh the roll-up on the server (admins only, audited)."""
    with st.spinner("Counting the new interactions…", show_time=True):
        ui.run_write(
            lambda: refresh(ui.write_engine(), actor=ui.actor()),
            lambda results: f"Figures refreshed with {sum(r.new_events for r in results):,} new interactions.",
        )


def source_caption(spec: FunnelSpec) -> None:
    status = ui.run_query(q.rollup_status, steps=spec.steps)
    tracked = serving_funnel(spec.steps) is not None
    with st.container(horizontal=True, vertical_alignment="center"):
        if not status.empty:
            row = status.iloc[0]
            pending = int(row.pending_events)
            refreshed = ui.fmt_datetime(row.refreshed_at, spec.period.tz)
            st.caption(
                f"Figures as of {refreshed} ({spec.period.tz})"
                + (f"; {pending:,} newer interactions are not counted yet." if pending else ".")
            )
        elif tracked:
            st.caption("Counted from every interaction until these figures are first refreshed.")
        else:
            st.caption("Counted from every interaction for these steps, which can take a few seconds.")
        if tracked:
            st.button(
                "Refresh the figures",
                icon=":material/refresh:",
                on_click=rebuild_rollup,
                type="tertiary",
                help="Counts the interactions recorded since the last refresh; this also happens on a schedule.",
            )


def funnel_figure(labels: list, customers: list) -> go.Figure:
    return go.Figure(
        go.Funnel(
            y=labels,
            x=customers,
            texttemplate="%{x:,} (%{percentInitial:.1%})",
            hovertemplate="%{y}: %{x:,} customers, %{percentPrevious:.1%} of the step before<extra></extra>",
        )
    )


def funnel_chart(frame: pd.DataFrame) -> None:
    ui.chart(
        funnel_figure,
        frame.label.tolist(),
        frame.customers.tolist(),
        title="Customers reaching each step",
        x_title="Customers (count)",
        y_title="",
    )


def breakdown_figure(frame: pd.DataFrame, first: str, last: str) -> go.Figure:
    fig = px.bar(frame, x="conversion", y="group", orientation="h", custom_data=[first, last])
    fig.update_traces(hovertemplate="%{y}: %{x:.1%} (%{customdata[1]:,} of %{customdata[0]:,})<extra></extra>")
    fig.update_layout(yaxis={"autorange": "reversed"}, height=140 + 36 * len(frame))
    return fig


def time_figure(frame: pd.DataFrame) -> go.Figure:
    fig = px.bar(frame, x="bin", y="customers")
    fig.update_traces(hovertemplate="%{x}: %{y:,} customers<extra></extra>")
    return fig


def trend_figure(frame: pd.DataFrame, grain: str) -> go.Figure:
    state = frame.complete.map({True: "final", False: "window still open"})
    fig = go.Figure(
        go.Scatter(
            x=frame.bucket,
            y=frame.conversion,
            mode="lines+markers",
            connectgaps=True,
            marker={"size": 9, "symbol": frame.complete.map({True: "circle", False: "circle-open"})},
            customdata=list(zip(frame.entered, frame.converted, state)),
            hovertemplate="%{x|%d %b %Y}: %{y:.1%} (%{customdata[1]:,} of %{customdata[0]:,}; %{customdata[2]})"
            "<extra></extra>",
        )
    )
    if grain != "day":  # one tick per bucket, on its first day
        fig.update_xaxes(tickvals=frame.bucket, tickformat="%d %b" if grain == "week" else "%b %Y")
    return fig


def steps_table(frame: pd.DataFrame) -> None:
    st.dataframe(
        frame.assign(
            first=frame.from_first.map(ui.fmt_percent),
            previous=frame.from_previous.map(ui.fmt_percent),
            median=(frame.median_seconds / 60).map(ui.fmt_duration),
        ),
        column_order=["label", "step", "customers", "first", "previous", "median"],
        column_config={
            "step": st.column_config.NumberColumn("Step", format="%d", width="small"),
            "label": st.column_config.TextColumn("Step name", pinned=True),
            "customers": st.column_config.NumberColumn("Customers", format="localized"),
            "first": "From step 1",
            "previous": "From the step before",
            "median": "Median time from the step before",
        },
        hide_index=True,
    )


def breakdown_tab(spec: FunnelSpec) -> None:
    left, right = st.columns([2, 3])
    dimension = left.selectbox(
        "Break down by", list(q.BREAKDOWNS), format_func=q.BREAKDOWNS.get, key="funnel_breakdown"
    )
    top_n = right.slider("Largest groups shown (the rest are summed as “Other”)", 1, q.MAX_TOP_N, 8, key="funnel_top_n")
    frame = ui.run_query(q.breakdown, "the breakdown", spec=spec, dimension=dimension, top_n=top_n)
    frame = frame.assign(group=frame.group.map(lambda group: group_label(dimension, group)))
    ui.chart(
        breakdown_figure,
        frame,
        spec.steps[0],
        spec.steps[-1],
        title=f"Conversion from {STEP_LABELS[spec.steps[0]].lower()} to "
        f"{STEP_LABELS[spec.steps[-1]].lower()} by {q.BREAKDOWNS[dimension].lower()}",
        x_title="Conversion (share of entered customers)",
        y_title=q.BREAKDOWNS[dimension],
        x_format="percent",
    )
    st.dataframe(
        ui.in_percent(frame, ["conversion"]),
        hide_index=True,
        column_config={
            "group": st.column_config.TextColumn(q.BREAKDOWNS[dimension], pinned=True),
            **{step: st.column_config.NumberColumn(STEP_LABELS[step], format="localized") for step in spec.steps},
            "conversion": ui.percent_column("Conversion"),
        },
    )
    st.caption(
        "Plan and channel are the customer's now; vehicle make from their latest request at entry; "
        "specialty of the mechanic of their first completed session inside the window."
    )


def time_tab(spec: FunnelSpec) -> None:
    numbers = list(range(1, len(spec.steps) + 1))
    left, right = st.columns(2)
    name = {k: f"{k}. {STEP_LABELS[spec.steps[k - 1]]}" for k in numbers}
    low = left.selectbox("From step", numbers[:-1], format_func=name.get, key="funnel_from_step")
    high = (
        right.selectbox(
            "To step",
            [k for k in numbers if k > low],
            index=None,
            format_func=name.get,
            key="funnel_to_step",
            placeholder=name[numbers[-1]],
        )
        or numbers[-1]
    )
    frame = ui.run_query(q.time_to_convert, "the times to convert", spec=spec, from_step=low, to_step=high)
    if frame.customers.sum() == 0:
        ui.empty_state(
            f"Nobody reached “{STEP_LABELS[spec.steps[high - 1]]}” in this period.",
            "Widen the period or the conversion window.",
        )
        return
    ui.chart(
        time_figure,
        frame,
        title=f"Time from “{STEP_LABELS[spec.steps[low - 1]]}” to “{STEP_LABELS[spec.steps[high - 1]]}”",
        x_title="Time between the steps",
        y_title="Customers (count)",
        y_format="count",
    )


def trend_tab(spec: FunnelSpec) -> None:
    grain = st.segmented_control(
        "Entries by",
        list(GRAIN_LABELS),
        format_func=GRAIN_LABELS.get,
        default="week",
        required=True,
        key="funnel_grain",
    )
    frame = ui.run_query(q.trend, "the trend", spec=spec, grain=grain)
    ui.chart(
        trend_figure,
        frame,
        grain,
        title=f"Conversion to “{STEP_LABELS[spec.steps[-1]]}” by {grain} of entry",
        x_title=f"{GRAIN_LABELS[grain]} of entry ({spec.period.tz})",
        y_title="Conversion (share of entered)",
        y_format="percent",
    )
    if not frame.complete.all():
        st.caption("Open markers: some customers who entered then can still convert inside the window.")


def drop_off_tab(spec: FunnelSpec, steps: pd.DataFrame) -> None:
    numbers = list(range(1, len(spec.steps)))
    label = {k: f"Reached “{STEP_LABELS[spec.steps[k - 1]]}”, not “{STEP_LABELS[spec.steps[k]]}”" for k in numbers}
    step = st.selectbox("Customers who", numbers, format_func=label.get, key="funnel_drop_step")
    count = int(steps.customers.iloc[step - 1] - steps.customers.iloc[step])
    if count == 0:
        ui.empty_state("Nobody dropped off at this step.", "Choose another step, or widen the period.")
        return
    preview = in_tz(
        ui.run_query(q.drop_off, "the customers who dropped off", spec=spec, step=step, limit=PREVIEW_ROWS),
        ["entered_at", "reached_at"],
        spec.period.tz,
    )
    st.caption(f"{count:,} customers; the latest {min(count, PREVIEW_ROWS):,} shown. Times in {spec.period.tz}.")
    st.dataframe(
        with_labels(preview),
        hide_index=True,
        column_order=["customer", "email", "plan", "acquisition_channel", "entered_at", "reached_at"],
        column_config={
            "customer": name_column("Customer", help="Opens the customer's lookup.", pinned=True),
            "email": "Email",
            "plan": "Plan",
            "acquisition_channel": "Channel",
            "entered_at": st.column_config.DatetimeColumn("Entered", format="D MMM YYYY, HH:mm"),
            "reached_at": st.column_config.DatetimeColumn("Reached the step", format="D MMM YYYY, HH:mm"),
        },
    )

    rows = ui.query_later(q.drop_off, spec=spec, step=step, limit=CSV_LIMIT)
    tz = spec.period.tz

    def csv() -> bytes:  # runs on the click, outside this page's run
        return export_frame(
            with_labels(rows()),
            {
                "full_name": "Name",
                "email": "Email",
                "plan": "Plan",
                "acquisition_channel": "Channel",
                "entered_at": f"Entered ({tz})",
                "reached_at": f"Reached the step ({tz})",
            },
            times=("entered_at", "reached_at"),
            tz=tz,
        )

    csv_download(
        csv,
        file_name=f"drop-off-step-{step}-{spec.period.start}-{spec.period.end}.csv",
        help=f"The latest {min(count, CSV_LIMIT):,} of these customers: name, email, plan, channel and when, "
        f"to the second in {tz}.",
        key=f"drop_off_csv_{step}",
    )
    if count > CSV_LIMIT:
        st.caption(f"The file holds the latest {CSV_LIMIT:,}; narrow the period for the rest.")


@ui.fragment
def details(spec: FunnelSpec, steps: pd.DataFrame) -> None:
    """The tabs under the funnel: only the open one is built, and a tab or a control in it reruns this part."""
    ui.tabbed(
        {
            "Breakdown": lambda: breakdown_tab(spec),
            "Time to convert": lambda: time_tab(spec),
            "Trend": lambda: trend_tab(spec),
            "Drop-off list": lambda: drop_off_tab(spec, steps),
        },
        key="funnel_tab",
    )


ui.page_header("CRM funnel", "Where customers drop out between intake, session and a follow-up sale.")
ui.write_notice()

steps_column, window_column = st.columns([4, 1], vertical_alignment="bottom")
chosen = steps_column.multiselect(
    "Steps, in the order you pick them",
    INTERACTION_TYPES,
    default=DEFAULT_STEPS,
    format_func=STEP_LABELS.get,
    max_selections=FUNNEL_MAX_STEPS,
    key="funnel_steps",
)
window = window_column.number_input(
    "Conversion window (days)",
    1,
    MAX_WINDOW_DAYS,
    DEFAULT_WINDOW_DAYS,
    key="funnel_window",
    help="Every later step must happen at most this long after the customer entered.",
)
try:
    spec = FunnelSpec(tuple(chosen), ui.period(), int(window))
except CrmInputError as exc:
    st.warning(f"**Choose the funnel.** {ui.escape_markdown(exc)}", icon=":material/filter_alt:")
    st.stop()

source_caption(spec)
steps = ui.run_query(q.funnel, "the funnel", spec=spec)
entered = int(steps.customers.iloc[0])
if entered == 0:
    ui.empty_state(
        f"No customer started the funnel with “{STEP_LABELS[spec.steps[0]]}” in this period.",
        "Choose earlier dates or a longer period in the sidebar, or another first step.",
    )
    st.stop()

last = steps.iloc[-1]
worst = steps.iloc[1:].sort_values("from_previous").iloc[0]
ui.kpi_row(
    [
        ui.Kpi(
            "Entered",
            ui.fmt_count(entered),
            help=f"Customers whose first “{STEP_LABELS[spec.steps[0]]}” in the period starts their funnel.",
        ),
        ui.Kpi("Converted", ui.fmt_count(last.customers), help=f"Reached “{last.label}” within the window."),
        ui.Kpi("Conversion", ui.fmt_percent(last.from_first), help="The share of entered customers who converted."),
        ui.Kpi(
            "Biggest drop",
            f"{ui.fmt_percent(1 - worst.from_previous)} lost",
            help=f"At “{worst.label}”: {ui.fmt_percent(worst.from_previous)} of the step before continued.",
        ),
    ]
)
st.caption(
    f"Customers whose first step was in {spec.period.start:%d %b %Y} – {spec.period.end:%d %b %Y} "
    f"({spec.period.tz}), each counted once; later steps count within {spec.window_days} days of it."
)
funnel_chart(steps)
steps_table(steps)
details(spec, steps)
