"""Customer lookup: find a customer by email or name and see everything about them.

Support and admin staff search (the text is a bound parameter in ``queries.customers``),
pick a match and get the profile, the service to recommend next and a timeline of requests,
sessions with summaries, reviews, follow-ups, interactions, recommendations and emails.
Everything the customer wrote is shown in tables or escaped.
"""

import streamlit as st

from dashboard.core.errors import Invalid
from dashboard.domain.upsells import TYPE_LABELS
from dashboard.ui import components as ui
from queries import customers as q


def label(row) -> str:
    return f"{row.full_name or 'No name'} · {row.email}"


def profile(customer_id: str, tz: str) -> None:
    found = ui.run_query(q.customer, loading="the customer", customer_id=customer_id)
    if found.empty:
        ui.empty_state("This customer no longer exists.", "Search again.")
        return
    row = found.iloc[0]
    st.subheader(ui.escape_markdown(row.full_name or row.email), anchor=False)
    st.caption(
        f"{ui.escape_markdown(row.email)} · {row.plan or 'no profile'} plan · "
        f"{ui.escape_markdown(row.acquisition_channel or 'unknown channel')} · "
        f"lives in {ui.escape_markdown(row.timezone or 'an unknown timezone')} · "
        f"joined {ui.fmt_datetime(row.created_at, tz, date_only=True)}"
    )
    ui.kpi_row(
        [
            ui.Kpi("Requests", ui.fmt_count(row.requests)),
            ui.Kpi("Sessions completed", ui.fmt_count(row.sessions_completed)),
            ui.Kpi("Reviews", ui.fmt_count(row.reviews)),
            ui.Kpi(
                "Upsell spend",
                ui.fmt_money(row.upsell_spend_cents),
                help=f"{ui.plural(int(row.upsells_bought), 'follow-up service')} bought.",
            ),
        ]
    )
    recommend(customer_id)
    timeline(customer_id, tz)


def recommend(customer_id: str) -> None:
    found = ui.run_query(q.recommended_next, customer_id=customer_id)
    if found.empty:
        st.info(
            "**No service to recommend yet.**  \nThe rules need a delivered summary, and open "
            "recommendations are not offered twice.",
            icon=":material/recommend:",
        )
        return
    row = found.iloc[0]
    st.success(
        f"**Recommended next: {ui.escape_markdown(row.service_title)}** "
        f"({TYPE_LABELS[row.recommendation_type]}, {ui.fmt_money(row.price_cents)})  \n"
        f"Why: {ui.escape_markdown(row.reason)}.",
        icon=":material/recommend:",
    )


def timeline(customer_id: str, tz: str) -> None:
    events = ui.run_query(q.timeline, loading="the customer's history", customer_id=customer_id)
    if events.empty:
        ui.empty_state(
            "Nothing has happened for this customer yet.",
            "Requests, sessions, reviews, interactions and emails show here as they happen.",
        )
        return
    kinds = sorted(events.kind.unique())
    shown = st.pills("Show", kinds, selection_mode="multi", default=kinds, key=f"timeline_kinds_{customer_id}")
    events = events[events.kind.isin(shown)]
    st.caption(f"{len(events):,} of the customer's events, latest first. Times in {tz}.")
    st.dataframe(
        events.assign(
            happened_at=events.happened_at.dt.tz_convert(tz),
            detail=events.detail.fillna(""),
            amount=events.amount_cents.map(ui.fmt_money),
        ),
        hide_index=True,
        column_config={
            "happened_at": st.column_config.DatetimeColumn("When", format="D MMM YYYY, HH:mm"),
            "kind": "What",
            "title": st.column_config.TextColumn("About", width="medium"),
            "detail": st.column_config.TextColumn("Detail", width="large"),
            "amount_cents": None,
            "amount": "Amount",
        },
    )


ui.page_header("Customer lookup", "Find a customer by email or name: their history, and what to offer them next.")
tz = ui.period().tz
with st.form("customer_search", border=False, enter_to_submit=True):
    text_column, button_column = st.columns([5, 1], vertical_alignment="bottom")
    text = text_column.text_input(
        "Email or name",
        key="customer_search_text",
        max_chars=q.SEARCH_MAX,
        placeholder="e.g. maria.garcia@example.com or Garcia",
    )
    button_column.form_submit_button("Search", type="primary", icon=":material/search:")

if not text.strip():
    st.caption("Type part of an email address or name, at least 3 characters.")
    st.stop()
try:
    matches = ui.run_query(q.search, loading="matching customers", text=text)
except Invalid as exc:
    st.warning(ui.escape_markdown(exc), icon=":material/search_off:")
    st.stop()
if matches.empty:
    ui.empty_state("No customer matches.", "Check the spelling, or search by part of the email address.")
    st.stop()

options = dict(zip(matches.customer_id, (label(row) for row in matches.itertuples())))
if len(matches) == q.SEARCH_LIMIT:
    st.caption(f"The first {q.SEARCH_LIMIT} matches; type more to narrow the search.")
customer_id = st.selectbox(
    f"{len(matches):,} {'match' if len(matches) == 1 else 'matches'}",
    list(options),
    format_func=options.get,
    key="customer_choice",
)
profile(customer_id, tz)
