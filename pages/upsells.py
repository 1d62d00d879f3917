"""Upsells: what the follow-up offers shown after a session earn, and the catalogue they come from.

Numbers follow the recommendations shown in the period to what became of them (see
``queries.upsells``); the catalogue is as it is now. It is edited here by admins;
``dashboard.domain.upsells`` checks the role again, validates and audits every change. Each
service is previewed as the card the customer sees (the fields of the API's ``UpsellCard``).
"""

import html

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from dashboard.core.schema import RECOMMENDATION_TYPES
from dashboard.domain.upsells import save_service
from dashboard.ui import components as ui
from dashboard.ui.labels import actor_label, label
from dashboard.ui.links import mechanic_url, name_column, with_name
from queries import upsells as q

NEW = "new"
CARDS_PER_ROW = 3
CARD_STYLE = """<style>.pw-card-call { background: #C2410C; color: #fff; border-radius: 0.5rem; padding: 0.45rem;
text-align: center; font-weight: 600; }</style>"""
# The button of the card in the customer's app for each type (the API sends the card's kind;
# the app draws the button).
CALLS_TO_ACTION = {
    "follow_up": "Book the follow-up",
    "maintenance_plan": "Start the plan",
    "premium_upgrade": "Upgrade now",
}


def type_label(code: str) -> str:
    return label("recommendation", code)


RATES = {
    "shown": st.column_config.NumberColumn("Shown", format="localized"),
    "clicked": st.column_config.NumberColumn("Clicked", format="localized"),
    "purchased": st.column_config.NumberColumn("Bought", format="localized"),
    "ctr": ui.percent_column("Click rate"),
    "conversion": ui.percent_column("Conversion", help="Bought / shown."),
    "click_to_purchase": ui.percent_column("Bought after click"),
}


def money_columns(frame):
    return frame.assign(revenue=frame.revenue_cents / 100, per_shown=frame.revenue_per_shown / 100)


def table(frame):
    """``frame`` as the tables show it: dollars and percentages."""
    return ui.in_percent(money_columns(frame), ["ctr", "conversion", "click_to_purchase"])


MONEY = {
    "revenue": st.column_config.NumberColumn("Revenue", format="dollar"),
    "per_shown": st.column_config.NumberColumn("Revenue per shown", format="$%.2f"),
    "revenue_cents": None,
    "revenue_per_shown": None,
}


def kpis(period) -> int:
    """The KPI row; returns how many recommendations were shown in the period."""
    summary = ui.run_query(q.summary, period=period)
    now, before = summary.loc["current"], summary.loc["previous"]
    revenue = ui.run_query(q.revenue, period=period)  # the figure Overview shows too
    ui.kpi_row(
        [
            ui.Kpi(
                "Shown",
                ui.fmt_count(now.shown),
                ui.change(now.shown, before.shown, ui.fmt_count),
                help="Recommendations shown to customers in the period.",
            ),
            ui.Kpi(
                "Click rate",
                ui.fmt_percent(now.ctr),
                ui.change(now.ctr, before.ctr, ui.fmt_points),
                help="Clicked / shown, clicks up to now.",
            ),
            ui.Kpi(
                "Conversion",
                ui.fmt_percent(now.conversion),
                ui.change(now.conversion, before.conversion, ui.fmt_points),
                help="Bought / shown.",
            ),
            ui.Kpi(
                "Revenue",
                ui.fmt_money(revenue.loc["current", "revenue_cents"]),
                ui.change(
                    revenue.loc["current", "revenue_cents"], revenue.loc["previous", "revenue_cents"], ui.fmt_money
                ),
                help="Price of the upsells bought in the period.",
            ),
            ui.Kpi(
                "Revenue per shown",
                ui.fmt_money(now.revenue_per_shown),
                ui.change(now.revenue_per_shown, before.revenue_per_shown, ui.fmt_money),
            ),
        ]
    )
    ui.comparison_caption(period)
    return int(now.shown)


def funnel_figure(totals: list) -> go.Figure:
    """Shown, clicked and bought as a funnel (``totals`` in that order)."""
    fig = go.Figure(
        go.Funnel(
            y=["Shown", "Clicked", "Bought"],
            x=totals,
            textinfo="value+percent initial",
            hovertemplate="%{y}: %{x:,}<extra></extra>",
        )
    )
    fig.update_traces(texttemplate="%{x:,} (%{percentInitial:.1%})")
    fig.update_layout(height=320)
    return fig


def weekly_figure(frame) -> go.Figure:
    """Revenue per week shown, with what was shown, clicked and bought in the hover."""
    fig = px.bar(money_columns(frame), x="bucket", y="revenue", custom_data=["shown", "ctr", "conversion"])
    fig.update_traces(
        hovertemplate="Week of %{x|%d %b %Y}: $%{y:,.2f}; %{customdata[0]:,} shown, "
        "%{customdata[1]:.1%} clicked, %{customdata[2]:.1%} bought<extra></extra>"
    )
    fig.update_xaxes(tickvals=frame.bucket, tickformat="%d %b")
    return fig


def performance(period) -> None:
    by = st.segmented_control(
        "Group by",
        list(q.GROUPS),
        format_func=q.GROUPS.get,
        default="recommendation_type",
        required=True,
        key="upsell_group",
    )
    frame = ui.run_query(q.performance, loading="upsell performance", period=period, by=by)
    totals = frame[["shown", "clicked", "purchased"]].sum()
    ui.chart(
        funnel_figure,
        totals.tolist(),
        title="Shown → clicked → bought",
        x_title="Recommendations (count)",
        y_title="",
        x_format="count",
    )
    first = "service_title" if by == "service" else "recommendation_type"
    st.dataframe(
        table(frame).assign(recommendation_type=frame.recommendation_type.map(type_label)),
        hide_index=True,
        column_config={
            "recommendation_type": st.column_config.TextColumn("Type", pinned=first == "recommendation_type"),
            "service_title": st.column_config.TextColumn("Service", pinned=True),
            **RATES,
            **MONEY,
        },
        column_order=[first, *(["recommendation_type"] if by == "service" else []), *RATES, "revenue", "per_shown"],
    )


def weekly(period) -> None:
    frame = ui.run_query(q.trend, loading="weekly revenue", period=period, grain="week")
    if frame.empty or frame.shown.sum() == 0:
        ui.empty_state(
            "No recommendation was shown in this period.", "Choose earlier dates or a longer period in the sidebar."
        )
        return
    ui.chart(
        weekly_figure,
        frame,
        title="Revenue by week shown",
        x_title=f"Week starting Monday ({period.tz})",
        y_title="Revenue (dollars)",
        y_format="money",
    )
    st.dataframe(
        table(frame),
        hide_index=True,
        column_config={"bucket": st.column_config.DateColumn("Week starting", format="D MMM YYYY"), **RATES, **MONEY},
    )


def mechanics(period) -> None:
    frame = ui.run_query(q.by_mechanic, loading="revenue by mechanic", period=period)
    if frame.empty:
        ui.empty_state("There are no mechanics yet.", "Mechanics appear here once they join.")
        return
    if frame.shown.sum() == 0:
        ui.empty_state(
            "No recommendation in the period followed a session with a mechanic.",
            "Choose a longer period in the sidebar.",
        )
    ui.scope_caption(
        period,
        f"All {len(frame):,} mechanics, by the revenue of the offers shown after their sessions; "
        "click a column to sort, a name for the profile.",
    )
    st.dataframe(
        table(frame).assign(
            mechanic=[with_name(mechanic_url(mid), name) for mid, name in zip(frame.mechanic_id, frame.display_name)]
        ),
        hide_index=True,
        column_order=["mechanic", "revenue", "shown", "clicked", "purchased", "ctr", "conversion", "per_shown"],
        column_config={
            "mechanic": name_column("Mechanic", help="Opens the mechanic's profile.", pinned=True),
            **RATES,
            **MONEY,
        },
        height=min(len(frame), 15) * 35 + 38,
    )


@ui.write_action
def save(choice: str, seen_updated_at) -> None:
    """Form callback: save on the server (admins only, validated, audited, refused if the service
    changed since this view loaded), then refresh the queries."""
    field = {
        name: st.session_state[f"service_{name}_{choice}"]
        for name in ("type", "title", "description", "price", "active")
    }
    ui.run_write(
        lambda: save_service(
            ui.write_engine(),
            ui.actor(),
            None if choice == NEW else choice,
            seen_updated_at=seen_updated_at,
            recommendation_type=field["type"],
            title=field["title"],
            description=field["description"],
            price=field["price"],
            is_active=field["active"],
        ),
        f"Saved “{ui.escape_markdown(field['title'].strip())}”.",
    )


def card(service) -> None:
    """``service`` as the card the customer's app shows: its type, title, description, price and
    button (what ``GET /v1/customers/{id}/upsells`` sends for it); every text inert."""
    with st.container(border=True, height="stretch"):
        st.caption(ui.escape_markdown(type_label(service.recommendation_type)))
        st.markdown(f"**{ui.escape_markdown(service.title)}**")
        if service.description:
            st.markdown(ui.escape_markdown(service.description))
        st.markdown(f"### {ui.fmt_money(service.price_cents)}")
        call = html.escape(CALLS_TO_ACTION.get(service.recommendation_type, "Add"))
        st.html(f'<div class="pw-card-call" title="What the customer taps">{call}</div>{CARD_STYLE}')
        if not service.is_active:
            ui.status_badge("Not offered: inactive", icon=":material/pause_circle:")


def card_previews(frame) -> None:
    st.subheader("As the customer sees them", anchor=False)
    st.caption("Each service as the card offered in the customer's app after a session; inactive ones are not offered.")
    for start in range(0, len(frame), CARDS_PER_ROW):
        for column, service in zip(st.columns(CARDS_PER_ROW), frame.iloc[start : start + CARDS_PER_ROW].itertuples()):
            with column:
                card(service)


def catalogue() -> None:
    frame = ui.run_query(q.catalogue)
    ui.scope_caption(ui.NOW, "One active service per type; a recommendation keeps the price it was shown at.")
    st.dataframe(
        frame.assign(
            price=frame.price_cents / 100,
            updated_by=frame.updated_by.map(actor_label),
            recommendation_type=frame.recommendation_type.map(type_label),
        ),
        hide_index=True,
        column_order=["title", "recommendation_type", "price", "is_active", "updated_at", "updated_by"],
        column_config={
            "title": st.column_config.TextColumn("Service", pinned=True),
            "recommendation_type": "Type",
            "price": st.column_config.NumberColumn("Price", format="dollar"),
            "is_active": "Active",
            "updated_by": "Changed by",
            "updated_at": st.column_config.DatetimeColumn("Changed", format="D MMM YYYY"),
        },
    )
    if not frame.empty:
        card_previews(frame)
    if ui.actor().role != "admin":
        return
    titles = dict(zip(frame.service_id, frame.title))
    choice = st.selectbox(
        "Edit",
        [NEW, *titles],
        format_func=lambda key: "Add a service" if key == NEW else titles[key],
        key="service_choice",
    )
    row = None if choice == NEW else frame.set_index("service_id").loc[choice]
    with st.form(f"service_{choice}", border=True):
        st.selectbox(
            "Type",
            RECOMMENDATION_TYPES,
            format_func=type_label,
            key=f"service_type_{choice}",
            index=0 if row is None else RECOMMENDATION_TYPES.index(row.recommendation_type),
        )
        st.text_input("Title", value="" if row is None else row.title, key=f"service_title_{choice}", max_chars=80)
        st.text_area(
            "Description",
            value="" if row is None else (row.description or ""),
            key=f"service_description_{choice}",
            max_chars=300,
        )
        st.number_input(
            "Price (dollars)",
            min_value=0.0,
            max_value=1000.0,
            step=1.0,
            format="%.2f",
            value=None if row is None else row.price_cents / 100,
            key=f"service_price_{choice}",
        )
        st.toggle(
            "Active (replaces the active service of its type)",
            key=f"service_active_{choice}",
            value=True if row is None else bool(row.is_active),
        )
        st.form_submit_button(
            "Save",
            type="primary",
            icon=":material/save:",
            on_click=save,
            args=(choice, None if row is None else row.updated_at.to_pydatetime()),
        )


def performance_tab(period) -> None:
    if kpis(period) == 0:
        ui.empty_state(
            "No recommendation was shown in this period.", "Choose earlier dates or a longer period in the sidebar."
        )
    else:
        performance(period)


@ui.fragment
def views(period) -> None:
    """The page's tabs: only the open one is built, and a tab or a control in it reruns this part."""
    ui.tabbed(
        {
            "Performance": lambda: performance_tab(period),
            "By week": lambda: weekly(period),
            "By mechanic": lambda: mechanics(period),
            "Catalogue (now)": catalogue,
        },
        key="upsell_tab",
    )


ui.page_header("Upsells", "What the offers shown after a session earn, and the services they offer.")
ui.write_notice()

views(ui.period())
