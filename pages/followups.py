"""Follow-ups: customers' questions on their past sessions, most overdue first.

Support and admin staff assign each follow-up to a mechanic (by default the one
of the parent session), mark it answered, close it, or cancel it with a reason;
every action is checked and audited on the server (``dashboard.domain.followups``). The
SLA state shows as a coloured badge that also says it in words. What customers
and mechanics wrote is shown as plain text, never as Markdown or HTML.
"""

import datetime as dt
import uuid
from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from sqlalchemy.engine import Engine

from dashboard.core.auth import Actor
from dashboard.core.schema import FOLLOW_UP_PRICE_MAX_CENTS, FOLLOW_UP_STATES, FOLLOW_UP_TYPES, PLANS
from dashboard.domain import followups as fu
from dashboard.ui import components as ui
from queries import followups as queries
from queries import mechanics as mechanic_queries

PAGE_SIZE = 20
SLA_BADGES = {  # sla_state -> (label, tone, icon)
    "breached": ("Breached", "bad", None),
    "due_soon": ("Due soon", "warning", None),
    "on_track": ("On track", "good", None),
    "met": ("Answered in time", "info", ":material/task_alt:"),
    "missed": ("Answered late", "neutral", ":material/history:"),
}
ORDER_LABELS = {"due": "Most overdue first", "oldest": "Oldest first"}
WEEK_MS = 7 * 24 * 3600 * 1000
SUMMARY_PARTS = {
    "findings": "Findings",
    "steps_taken": "Steps taken",
    "parts_needed": "Parts needed",
    "next_steps": "Next steps",
}


@ui.write_action
def act(action: str, step: Callable[[Engine, Actor], object]) -> None:
    """Button callback: ``step(engine, actor)`` on the server (role checked there), then refresh
    every cached query. Steps read their widgets' values when clicked."""
    ui.run_write(lambda: step(ui.write_engine(), ui.actor()), f"Follow-up {fu.DONE[action]}.")


@ui.write_action
def save_prices(current: dict) -> None:
    """Form callback: the prices edited in the table, in dollars, as cents per (plan, type)."""
    edits = st.session_state["followup_price_editor"]["edited_rows"]
    changes = {}
    for row, columns in edits.items():
        for plan, dollars in columns.items():
            key = (plan, FOLLOW_UP_TYPES[int(row)])
            cents = None if dollars is None else round(dollars * 100)
            if cents != current[key].cents:
                changes[key] = cents
    ui.run_write(
        lambda: fu.set_prices(
            ui.write_engine(), ui.actor(), changes, seen={key: current[key].cents for key in changes}
        ),
        lambda count: f"Saved {ui.plural(count, 'price')}.",
    )


def sla_badge(row) -> None:
    if pd.isna(row.sla_state):
        return
    label, tone, icon = SLA_BADGES[row.sla_state]
    if row.sla_state == "breached":
        label += f" · {ui.fmt_duration(row.minutes_to_due)} over"
    elif row.sla_state in ("due_soon", "on_track"):
        label += f" · {ui.fmt_duration(row.minutes_to_due)} left"
    ui.status_badge(label, tone, icon)


def state_badge(row) -> None:
    if row.state in ("assigned", "answered", "closed") and row.assigned_mechanic_name:
        text = f"{fu.STATE_LABELS[row.state]} · {row.assigned_mechanic_name}"
    elif row.state == "cancelled" and row.cancel_reason:
        text = f"Cancelled · {row.cancel_reason}"
    else:
        text = fu.STATE_LABELS[row.state]
    ui.status_badge(text, icon=":material/person:" if row.state == "assigned" else None)


def parent_summary(row, tz: str) -> None:
    with st.popover("Parent session", icon=":material/description:"):
        mechanic = row.parent_mechanic_name or "no mechanic"
        ended = ui.fmt_datetime(row.parent_ended_at, tz) if pd.notna(row.parent_ended_at) else "not ended"
        st.markdown(
            f"**{(row.parent_session_type or 'session').capitalize()} session** with "
            f"{ui.escape_markdown(mechanic)}, ended {ended}"
        )
        if pd.isna(row.summary_submitted_at):
            st.caption("The mechanic has not written a summary.")
        for column, label in SUMMARY_PARTS.items():
            text = getattr(row, column)
            if text:
                st.markdown(f"**{label}**")
                st.text(text)


def mechanic_chooser(row, names: dict[str, str], load: dict[str, int]) -> None:
    """A popover to choose any active mechanic, with their open load; built only while open."""
    follow_up_id = str(row.id)
    reassign = row.state == "assigned"
    popover = st.popover(
        "Reassign…" if reassign else "Choose mechanic…",
        key=f"choose_{follow_up_id}",
        on_change="rerun",
        icon=":material/person_add:",
    )
    with popover:
        if not popover.open:
            return
        current = str(row.assigned_mechanic_id if reassign else row.parent_mechanic_id)
        options = list(names)
        choice = st.selectbox(
            "Mechanic (follow-ups waiting on them)",
            options,
            key=f"mechanic_{follow_up_id}",
            index=options.index(current) if current in names else None,
            placeholder="Choose a mechanic…",
            format_func=lambda m: f"{names[m]} · {load[m]:,} open",
        )
        seen = row.assigned_mechanic_id if reassign else None  # who this page showed as assigned

        def step(engine, actor):
            return fu.assign(
                engine, actor, follow_up_id, st.session_state[f"mechanic_{follow_up_id}"], seen_mechanic_id=seen
            )

        st.button(
            "Reassign" if reassign else "Assign",
            key=f"assign_{follow_up_id}",
            type="primary",
            disabled=choice is None or choice == str(seen),
            on_click=act,
            args=("assign", step),
        )


def canceller(follow_up_id: str) -> None:
    ui.confirm(
        "Cancel…",
        "The customer's question is closed without an answer. Say why:",
        "Cancel follow-up",
        act,
        (
            "cancel",
            lambda engine, actor: fu.cancel(engine, actor, follow_up_id, st.session_state[f"reason_{follow_up_id}"]),
        ),
        key=f"cancel_{follow_up_id}",
        icon=":material/cancel:",
        inputs=lambda: st.text_input(
            "Reason to cancel",
            key=f"reason_{follow_up_id}",
            max_chars=fu.CANCEL_REASON_MAX,
            placeholder="e.g. the customer found the answer",
        ),
    )


def card(row, tz: str, names: dict[str, str], load: dict[str, int]) -> None:
    follow_up_id = str(row.id)
    with st.container(border=True, key=f"followup_{follow_up_id}"):
        customer = row.customer_name or row.customer_email or "a deleted account"
        price = (
            "price not recorded"
            if pd.isna(row.price_cents)
            else "free"
            if row.price_cents == 0
            else ui.fmt_money(row.price_cents)
        )
        st.markdown(
            f"**{fu.TYPE_LABELS[row.follow_up_type]}** from {ui.escape_markdown(customer)} "
            f"({row.plan}) · asked {ui.fmt_duration(row.age_minutes)} ago, "
            f"{ui.fmt_datetime(row.created_at, tz)} · {price}"
        )
        with ui.badge_row():
            sla_badge(row)
            state_badge(row)
        st.text(row.description or "(no text)")
        with st.container(horizontal=True, vertical_alignment="center"):
            parent_summary(row, tz)
            parent = str(row.parent_mechanic_id)
            if row.state == "open" and parent in names:
                st.button(
                    f"Assign to {ui.escape_markdown(names[parent])} · {load[parent]:,} open",
                    key=f"assign_default_{follow_up_id}",
                    type="primary",
                    icon=":material/person_check:",
                    on_click=act,
                    args=("assign", lambda e, a: fu.assign(e, a, follow_up_id)),
                )
            if row.state in fu.WAITING:
                mechanic_chooser(row, names, load)
            if row.state == "assigned":
                st.button(
                    "Mark answered",
                    key=f"answer_{follow_up_id}",
                    type="primary",
                    icon=":material/done:",
                    on_click=act,
                    args=("answer", lambda e, a: fu.mark_answered(e, a, follow_up_id)),
                )
            if row.state == "answered":
                st.button(
                    "Close",
                    key=f"close_{follow_up_id}",
                    type="primary",
                    icon=":material/done_all:",
                    on_click=act,
                    args=("close", lambda e, a: fu.close(e, a, follow_up_id)),
                )
            if row.state in fu.WAITING:
                canceller(follow_up_id)


def weekly_chart(period) -> None:
    weeks = ui.run_query(queries.weekly, loading="weekly volumes", period=period)
    if weeks.follow_ups.sum() == 0:
        ui.empty_state("No follow-ups were asked in this period.", "Choose a longer period in the sidebar.")
        return
    fig = go.Figure(
        [
            go.Bar(
                x=weeks.week,
                y=weeks.follow_ups,
                name="Follow-ups asked",
                hovertemplate="Week of %{x|%d %b %Y}: %{y:,} asked<extra></extra>",
            ),
            go.Scatter(
                x=weeks.week,
                y=weeks.median_hours_to_answer,
                name="Median time to answer",
                yaxis="y2",
                mode="lines+markers",
                hovertemplate="Week of %{x|%d %b %Y}: %{y:.1f} h median<extra></extra>",
            ),
        ]
    )
    fig.update_layout(
        yaxis2=dict(
            title=dict(text="Median time to answer (hours)"),
            overlaying="y",
            side="right",
            rangemode="tozero",
            showgrid=False,
            tickmode="auto",
        ),
        legend=dict(yanchor="bottom", y=1.0, xanchor="right", x=1),
    )
    # A tick on Mondays, at most about a dozen of them.
    fig.update_xaxes(tick0=weeks.week.iloc[0], dtick=WEEK_MS * max(1, len(weeks) // 12), tickformat="%d %b")
    ui.chart(
        fig,
        title="Follow-ups asked per week and their median time to answer",
        x_title=f"Week starting Monday ({period.tz})",
        y_title="Follow-ups asked (count)",
    )
    if weeks.answered.sum() == 0:
        st.caption(
            "None of the follow-ups asked in this period has been marked answered here yet, so there is "
            "no time to answer to show."
        )


def pricing(rules: fu.FollowUpRules) -> None:
    with ui.write_engine().connect() as conn:
        current = fu.prices(conn)
    frame = pd.DataFrame(
        {
            "type": [fu.TYPE_LABELS[t] for t in FOLLOW_UP_TYPES],
            **{
                plan: [
                    None if current[plan, t].cents is None else current[plan, t].cents / 100 for t in FOLLOW_UP_TYPES
                ]
                for plan in PLANS
            },
            "sla": [ui.fmt_duration(rules.sla(t)) for t in FOLLOW_UP_TYPES],
        }
    )
    columns = {
        "type": "Type",
        "sla": st.column_config.TextColumn("First-response target", disabled=True),
        **{
            plan: st.column_config.NumberColumn(
                f"{plan.capitalize()} ($)",
                min_value=0.0,
                step=0.01,
                max_value=FOLLOW_UP_PRICE_MAX_CENTS / 100,
                format="$%.2f",
            )
            for plan in PLANS
        },
    }
    if ui.actor().role == "admin":
        with st.form("followup_prices", border=False):
            st.data_editor(
                frame, column_config=columns, disabled=["type", "sla"], hide_index=True, key="followup_price_editor"
            )
            st.form_submit_button("Save prices", on_click=save_prices, args=(current,), icon=":material/save:")
    else:
        st.dataframe(frame, column_config=columns, hide_index=True)
    sources = [
        f"{p.plan} {fu.TYPE_LABELS[p.follow_up_type].lower()}s: set by {ui.escape_markdown(p.updated_by)}"
        for p in current.values()
        if p.source == "rule"
    ]
    st.caption(
        "A price is fixed on the follow-up when it is asked; changes apply to new follow-ups only. "
        f"Without a price set here, premium customers ask for free, standard ones pay the default, and new issues "
        f"cost a new {fu.NEW_SESSION_TYPE} session. "
        + (f"Set by an admin: {'; '.join(sources)}. " if sources else "")
        + f"Follow-ups can be asked up to {rules.window_days} days after a session ends, at most "
        f"{rules.max_open_per_session} waiting per session; targets and limits are set under `[followups]` "
        "in `.streamlit/secrets.toml`."
    )


ui.page_header(
    "Follow-ups",
    "Customers' questions on their past sessions: assign each to a mechanic and see it "
    "answered within its first-response target.",
)
RULES = fu.FollowUpRules.from_settings(ui.settings())
ui.write_notice()

tz = ui.period().tz
now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)  # ages move on once a minute
counts = ui.run_query(queries.summary, now=now, rules=RULES).iloc[0]
ui.kpi_row(
    [
        ui.Kpi("Waiting for an answer", ui.fmt_count(counts.waiting), help="Open and assigned follow-ups, right now."),
        ui.Kpi(
            "Past their target",
            ui.fmt_count(counts.breached),
            help="Waiting follow-ups older than their type's first-response target.",
        ),
        ui.Kpi("Unassigned", ui.fmt_count(counts.open), help="Open follow-ups no mechanic has been assigned yet."),
        ui.Kpi("Answered, to close", ui.fmt_count(counts.answered), help="Answered follow-ups not closed yet."),
    ]
)

load_frame = ui.run_query(queries.mechanic_load)
names = dict(zip(load_frame.user_id.astype(str), load_frame.display_name))
load = dict(zip(load_frame.user_id.astype(str), load_frame.open_items))
all_mechanics = ui.run_query(mechanic_queries.mechanic_options)
mechanic_names = dict(zip(all_mechanics.user_id.astype(str), all_mechanics.display_name))

with ui.filter_bar():
    states = st.pills(
        "State",
        FOLLOW_UP_STATES,
        selection_mode="multi",
        default=list(fu.WAITING),
        format_func=fu.STATE_LABELS.get,
        key="followup_states",
    )
    types = st.pills(
        "Type", FOLLOW_UP_TYPES, selection_mode="multi", format_func=fu.TYPE_LABELS.get, key="followup_types"
    )
    plans = st.pills("Plan", PLANS, selection_mode="multi", format_func=str.capitalize, key="followup_plans")
    mechanic = st.selectbox(
        "Assigned to",
        list(mechanic_names),
        index=None,
        format_func=mechanic_names.get,
        placeholder="Any mechanic",
        key="followup_mechanic",
        width=240,
    )
    order = st.segmented_control(
        "Order", list(ORDER_LABELS), format_func=ORDER_LABELS.get, default="due", required=True, key="followup_order"
    )

queue = ui.run_query(
    queries.queue,
    loading="the follow-up queue",
    now=now,
    rules=RULES,
    states=tuple(states),
    types=tuple(types),
    plans=tuple(plans),
    mechanic_id=uuid.UUID(mechanic) if mechanic else None,
    order=order,
    limit=PAGE_SIZE,
)
filtered = bool(types or plans or mechanic) or set(states) != set(fu.WAITING)
if queue.empty:
    if counts.waiting == 0 and not filtered:
        ui.empty_state("Every follow-up is answered.", "New questions from customers will wait here for a mechanic.")
    else:
        ui.empty_state("No follow-ups match these filters.", "Clear a filter or choose other states.")
else:
    matching = int(queue.matching.iloc[0])
    st.caption(
        f"{ui.plural(matching, 'follow-up')} {'match' if matching != 1 else 'matches'}"
        f"{' these filters' if filtered else ''}; showing {len(queue):,}, {ORDER_LABELS[order].lower()}. "
        f"Ages as of {ui.fmt_datetime(now, tz)} ({tz})."
    )
    for row in queue.itertuples(index=False):
        card(row, tz, names, load)

weekly_chart(ui.period())
with st.expander("Prices and response targets", icon=":material/sell:"):
    pricing(RULES)
