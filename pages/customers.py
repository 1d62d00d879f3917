"""Customer lookup: find a customer by email or name and see everything about them.

Support and admin staff search (the text is a bound parameter in ``queries.customers``) and
pick one of the matches from a list (one match opens directly), then get the profile, the
service to recommend next and a timeline of requests, sessions with summaries, reviews,
follow-ups, interactions, recommendations and emails. Everything the customer wrote is shown
in tables or escaped.

Links (``dashboard.ui.links``): ``?customer=<id>`` opens that customer, ``?q=<text>`` searches.
"""

import hashlib

import pandas as pd
import streamlit as st

from dashboard.core.errors import Invalid
from dashboard.ui import components as ui
from dashboard.ui.labels import label
from dashboard.ui.links import customer_url, mechanic_url, name_column, with_name
from queries import customers as q

SEARCH_KEY = "customer_search_text"
RESULTS_SHOWN = 8  # rows of the results list before it scrolls
# Pixel widths of the timeline's columns: 820 in all, the page's width at 1280 px (wider
# screens stretch them alike).
TIMELINE_WIDTHS = {"happened_at": 130, "kind": 110, "about": 190, "mechanic": 140, "detail": 170, "amount": 80}
# Which label family each code of a timeline row belongs to, by the row's kind.
TIMELINE_CODES = {
    "Request": {"category": "category", "status": "request_status"},
    "Follow-up question": {"category": "category", "subtype": "follow_up_type", "status": "request_status"},
    "Session": {"subtype": "session_type", "status": "session_status"},
    "Review": {"status": "review_status"},
    "Interaction": {"subtype": "interaction"},
    "Upsell shown": {"subtype": "recommendation"},
    "Upsell clicked": {"subtype": "recommendation"},
    "Upsell purchased": {"subtype": "recommendation"},
    "Email": {"subtype": "milestone", "status": "email_status"},
}


def about(event) -> str:
    """A timeline row's codes as labels, with its title: "Brakes · 2015 Toyota Corolla · Open"."""
    families = TIMELINE_CODES.get(event.kind, {})
    parts = [label(families[c], event[c]) for c in ("category", "subtype") if c in families and pd.notna(event[c])]
    if pd.notna(event.title):
        parts.append(event.title)
    if "status" in families and pd.notna(event.status):
        parts.append(label(families["status"], event.status))
    return " · ".join(parts)


def searched() -> None:
    """Search form submitted: the search goes into the URL (``?q=``) and replaces the open customer."""
    st.query_params["q"] = st.session_state[SEARCH_KEY]
    st.query_params.pop("customer", None)


def profile(customer_id: str, tz: str) -> None:
    try:
        found = ui.run_query(q.customer, loading="the customer", customer_id=customer_id)
    except Invalid:
        ui.empty_state("This link does not name a customer.", "Search by email or name above.")
        return
    if found.empty:
        ui.empty_state("No customer has this id; they may have been deleted.", "Search by email or name above.")
        return
    row = found.iloc[0]
    st.subheader(ui.escape_markdown(row.full_name or row.email), anchor=False)
    facts = [ui.escape_markdown(row.email), f"{label('plan', row.plan)} plan"]
    if pd.notna(row.acquisition_channel):
        facts.append(f"came from {label('channel', row.acquisition_channel).lower()}")
    facts.append(f"lives in {ui.escape_markdown(row.timezone or 'an unknown timezone')}")
    facts.append(f"joined {ui.fmt_datetime(row.created_at, tz, date_only=True)}")
    st.caption(" · ".join(facts))
    ui.kpi_row(
        [
            ui.Kpi("Requests", ui.fmt_count(row.requests), help="All time."),
            ui.Kpi("Sessions completed", ui.fmt_count(row.sessions_completed), help="All time."),
            ui.Kpi("Reviews", ui.fmt_count(row.reviews), help="All time."),
            ui.Kpi(
                "Upsell spend",
                ui.fmt_money(row.upsell_spend_cents),
                help=f"All time: {ui.plural(int(row.upsells_bought), 'follow-up service')} bought.",
            ),
        ]
    )
    ui.scope_caption(ui.ALL_TIME, "Everything about this customer, from their first request on.")
    recommend(customer_id)
    timeline(customer_id, tz)


def recommend(customer_id: str) -> None:
    found = ui.run_query(q.recommended_next, customer_id=customer_id)
    if found.empty:
        st.info(
            "**No service to recommend yet.**  \n"
            "An offer follows a session summary, and an open offer is not made twice.",
            icon=":material/recommend:",
        )
        return
    row = found.iloc[0]
    st.success(
        f"**Recommended next: {ui.escape_markdown(row.service_title)}** "
        f"({label('recommendation', row.recommendation_type)}, {ui.fmt_money(row.price_cents)})  \n"
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
            about=[about(event) for _, event in events.iterrows()],
            mechanic=[
                "" if pd.isna(mid) else with_name(mechanic_url(mid), name)
                for mid, name in zip(events.mechanic_id, events.mechanic_name)
            ],
            detail=events.detail.fillna(""),
            amount=events.amount_cents.map(ui.fmt_money),
        ),
        hide_index=True,
        column_order=["happened_at", "kind", "about", "mechanic", "detail", "amount"],
        column_config={
            "happened_at": st.column_config.DatetimeColumn(
                "When", format="D MMM YYYY, HH:mm", pinned=True, width=TIMELINE_WIDTHS["happened_at"]
            ),
            "kind": st.column_config.TextColumn("What", width=TIMELINE_WIDTHS["kind"]),
            "about": st.column_config.TextColumn("About", width=TIMELINE_WIDTHS["about"]),
            "mechanic": name_column(
                "Mechanic", help="Opens the mechanic's profile.", width=TIMELINE_WIDTHS["mechanic"]
            ),
            "detail": st.column_config.TextColumn("Detail", width=TIMELINE_WIDTHS["detail"]),
            "amount": st.column_config.TextColumn("Amount", width=TIMELINE_WIDTHS["amount"]),
        },
        row_height=56,
    )


def results(matches: pd.DataFrame, text: str, tz: str) -> str | None:
    """The list of matches to pick from; returns the id of the one picked (the only one if
    there is one), or None."""
    shown = matches.head(q.SEARCH_LIMIT)
    if len(matches) == 1:
        st.caption("1 match.")
        return shown.customer_id.iloc[0]
    if len(matches) > q.SEARCH_LIMIT:
        st.warning(
            f"More than {q.SEARCH_LIMIT} customers match; the first {q.SEARCH_LIMIT} are listed. "
            "Refine your search: type more of the email or the full name. Select a row to open a customer.",
            icon=":material/manage_search:",
        )
    else:
        st.caption(f"{len(matches):,} matches: select a row to open the customer.")
    picked = st.dataframe(
        shown.assign(
            customer=[
                with_name(customer_url(cid), name or email)
                for cid, name, email in zip(shown.customer_id, shown.full_name, shown.email)
            ],
            plan=shown.plan.map(lambda code: label("plan", code)),
            last_activity=[ui.fmt_datetime(at, tz) for at in shown.last_activity],
        ),
        hide_index=True,
        column_order=["customer", "email", "plan", "last_activity"],
        column_config={
            "customer": name_column("Name", help="Opens the customer in a new tab.", pinned=True),
            "email": "Email",
            "plan": "Plan",
            "last_activity": f"Last activity ({tz})",
        },
        on_select="rerun",
        selection_mode="single-row",
        key=f"customer_results_{hashlib.sha256(text.encode()).hexdigest()[:16]}",
        height=(min(len(shown), RESULTS_SHOWN) + 1) * 35 + 3,
    )
    rows = picked.selection.rows
    return shown.customer_id.iloc[rows[0]] if rows else None


ui.page_header("Customer lookup", "Find a customer by email or name: their history, and what to offer them next.")
tz = ui.period().tz
if SEARCH_KEY not in st.session_state and st.query_params.get("q"):
    st.session_state[SEARCH_KEY] = st.query_params["q"][: q.SEARCH_MAX]
with st.form("customer_search", border=False, enter_to_submit=True):
    text_column, button_column = st.columns([5, 1], vertical_alignment="bottom")
    text_column.text_input(
        "Email or name",
        key=SEARCH_KEY,
        max_chars=q.SEARCH_MAX,
        placeholder="e.g. maria.garcia@example.com or Garcia",
    )
    button_column.form_submit_button("Search", type="primary", icon=":material/search:", on_click=searched)

text = st.session_state.get(SEARCH_KEY, "")
chosen = st.query_params.get("customer")
if text.strip():
    try:
        matches = ui.run_query(q.search, loading="matching customers", text=text, limit=q.SEARCH_LIMIT + 1)
    except Invalid as exc:
        st.warning(ui.escape_markdown(exc), icon=":material/search_off:")
        matches = None
    if matches is not None and matches.empty:
        ui.empty_state("No customer matches.", "Check the spelling, or search by part of the email address.")
    elif matches is not None:
        picked = results(matches, text, tz)
        if picked is not None and picked != chosen:
            chosen = picked
            st.query_params["customer"] = picked
elif chosen is None:
    st.caption("Type part of an email address or name, at least 3 characters, and press Enter.")

if chosen is not None:
    profile(chosen, tz)
