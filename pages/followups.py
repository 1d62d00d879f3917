"""Follow-ups: customers' questions on their past sessions, most overdue first.

Support and admin staff assign each follow-up to a mechanic (by default the one
of the parent session; the picker shows each mechanic's specialties, rating, open load
and whether they have hours left today), record the answer the mechanic gave, close it,
or cancel it with a reason; every action is checked and audited on the server
(``dashboard.domain.followups``). The SLA state shows as a coloured badge that also says
it in words. What customers, mechanics and staff wrote is shown as plain text, never as
Markdown or HTML.

The queue is what waits now, whatever the sidebar's period; the weekly chart is the
period's. Links open it filtered (``docs/followups.md``): ``?due=overdue|soon`` and
``?state=open|assigned``.
"""

import datetime as dt
import uuid
from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from sqlalchemy.engine import Engine

from dashboard.core.auth import Actor
from dashboard.core.period import today_in
from dashboard.core.schema import FOLLOW_UP_PRICE_MAX_CENTS, FOLLOW_UP_STATES, FOLLOW_UP_TYPES, PLANS
from dashboard.domain import followups as fu
from dashboard.ui import components as ui
from dashboard.ui.axes import whole_ticks
from dashboard.ui.exports import as_csv, csv_download
from dashboard.ui.labels import label
from dashboard.ui.links import customer_url, mechanic_url
from dashboard.ui.paging import page_of
from dashboard.ui.times import column_to_the_second, to_the_second
from queries import followups as queries
from queries import mechanics as mechanic_queries

PAGE_SIZE = 10
SLA_BADGES = {  # sla_state -> (label, tone, icon)
    "breached": ("Breached", "bad", None),
    "due_soon": ("Due soon", "warning", None),
    "on_track": ("On track", "good", None),
    "met": ("Answered in time", "info", ":material/task_alt:"),
    "missed": ("Answered late", "neutral", ":material/history:"),
}
ORDER_LABELS = {"due": "Most overdue first", "oldest": "Oldest first"}
DUE_LABELS = {"overdue": "Past their target", "soon": f"Due within {queries.SOON_MINUTES // 60} h"}
URL_STATES = ("open", "assigned")  # ?state= values (one state of the waiting ones)
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


def sla_badge(row) -> list[str]:
    """The response target's state as a badge (none for a follow-up without one)."""
    if pd.isna(row.sla_state):
        return []
    label, tone, icon = SLA_BADGES[row.sla_state]
    if row.sla_state == "breached":
        label += f" · {ui.fmt_duration(row.minutes_to_due)} over"
    elif row.sla_state in ("due_soon", "on_track"):
        label += f" · {ui.fmt_duration(row.minutes_to_due)} left"
    return [ui.status(label, tone, icon)]


def state_badge(row) -> str:
    if row.state in ("assigned", "answered", "closed") and row.assigned_mechanic_name:
        text = f"{label('follow_up_state', row.state)} · {row.assigned_mechanic_name}"
    elif row.state == "cancelled" and row.cancel_reason:
        text = f"Cancelled · {row.cancel_reason}"
    else:
        text = label("follow_up_state", row.state)
    return ui.status(text, icon=":material/person:" if row.state == "assigned" else None)


def linked(name: str, url: str) -> str:
    """A Markdown link whose text is ``name`` as plain text."""
    return f"[{ui.escape_markdown(name)}]({url})"


def answer_block(row, tz: str) -> None:
    """Who answered (the assigned mechanic), who recorded it, when, and what, as plain text."""
    if not row.answer_text:
        if row.state in ("answered", "closed"):
            st.caption("Answered before answers were recorded here: no text kept.")
        return
    mechanic = (
        linked(row.assigned_mechanic_name, mechanic_url(row.assigned_mechanic_id))
        if row.assigned_mechanic_name
        else "a mechanic no longer listed"
    )
    recorder = ui.escape_markdown(row.answered_by_name or "someone no longer on the staff list")
    with st.container(key=f"answer_shown_{row.id}"):
        st.markdown(
            f":material/forum: **Answer** from {mechanic}, recorded by {recorder} · "
            f"{to_the_second(row.answered_at, tz)}"
        )
        st.text(row.answer_text)


def assignee_label(option) -> str:
    """``Name — Brakes, Engine · 4.70 ★ · 3 open · free today`` (plain text)."""
    parts = [option.display_name]
    if option.specialties:
        parts[0] += " — " + ", ".join(ui.specialty_label(s) for s in option.specialties)
    parts.append(ui.fmt_rating(option.avg_rating) if option.total_reviews else "no rating yet")
    parts.append(f"{option.open_items:,} open")
    parts.append("free today" if option.free_today else "no hours left today")
    return " · ".join(parts)


def parent_summary(row, tz: str) -> None:
    """The parent session's summary in a popover, built only while open (20 cards' worth of
    hidden text would cost every rerun)."""
    popover = st.popover("Parent session", icon=":material/description:", key=f"parent_{row.id}", on_change="rerun")
    with popover:
        if not popover.open:
            return
        mechanic = row.parent_mechanic_name or "no mechanic"
        ended = ui.fmt_datetime(row.parent_ended_at, tz) if pd.notna(row.parent_ended_at) else "not ended"
        st.markdown(
            f"**{label('session_type', row.parent_session_type) if row.parent_session_type else 'A'} session** with "
            f"{ui.escape_markdown(mechanic)}, ended {ended}"
        )
        if pd.isna(row.summary_submitted_at):
            st.caption("The mechanic has not written a summary.")
        for column, part in SUMMARY_PARTS.items():
            text = getattr(row, column)
            if text:
                st.markdown(f"**{part}**")
                st.text(text)


def mechanic_chooser(row, now: dt.datetime) -> None:
    """A popover to choose any active mechanic, best matches for the follow-up's category
    first, each with specialties, rating, open load and hours left today; built only while open."""
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
        options = ui.run_query(queries.assignee_options, loading="the mechanics", now=now, category=row.category)
        labels = {str(o.user_id): assignee_label(o) for o in options.itertuples()}
        current = str(row.assigned_mechanic_id if reassign else row.parent_mechanic_id)
        choice = st.selectbox(
            "Mechanic",
            list(labels),
            key=f"mechanic_{follow_up_id}",
            index=list(labels).index(current) if current in labels else None,
            placeholder="Choose a mechanic…",
            format_func=labels.get,
            width=520,
        )
        st.caption(
            (
                f"Those with {label('category', row.category).lower()} among their specialties first, then "
                if row.category
                else ""
            )
            + "those with hours left today (in their timezone), fewest open follow-ups, best rated."
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


# The steps that need a text: what opens the popover, what it asks ({mechanic}: the assigned one),
# its button, the text field (its key is "<field>_<id>") and the write.
TEXT_STEPS = {
    "answer": dict(
        opener="Record answer…",
        question="What did {mechanic} tell the customer? It is saved with your name and the time, "
        "and the follow-up is answered.",
        confirm="Save answer",
        icon=":material/done:",
        label="Answer",
        field="answer_text",
        widget=st.text_area,
        limit=fu.ANSWER_MAX,
        placeholder="e.g. Yes, it is safe for 300 km; book a brake check this week.",
        write=lambda engine, actor, follow_up_id, text: fu.mark_answered(engine, actor, follow_up_id, answer=text),
    ),
    "cancel": dict(
        opener="Cancel…",
        question="The customer's question is closed without an answer. Say why:",
        confirm="Cancel follow-up",
        icon=":material/cancel:",
        label="Reason to cancel",
        field="reason",
        widget=st.text_input,
        limit=fu.CANCEL_REASON_MAX,
        placeholder="e.g. the customer found the answer",
        write=fu.cancel,
    ),
}


def text_step(row, action: str) -> None:
    """A step of ``TEXT_STEPS``: a popover with its question, its text field and the button
    ``<action>_<id>`` that saves it (the text is checked on the server)."""
    follow_up_id, step = str(row.id), TEXT_STEPS[action]
    key = f"{step['field']}_{follow_up_id}"
    mechanic = ui.escape_markdown(row.assigned_mechanic_name or "the mechanic")
    ui.confirm(
        step["opener"],
        step["question"].format(mechanic=mechanic),
        step["confirm"],
        act,
        (action, lambda engine, actor: step["write"](engine, actor, follow_up_id, st.session_state.get(key))),
        key=f"{action}_{follow_up_id}",
        icon=step["icon"],
        inputs=lambda: step["widget"](step["label"], key=key, max_chars=step["limit"], placeholder=step["placeholder"]),
        open_key=f"open_{action}_{follow_up_id}",
    )


def card(row, tz: str, now: dt.datetime, names: dict[str, str], load: dict[str, int]) -> None:
    follow_up_id = str(row.id)
    with st.container(border=True, key=f"followup_{follow_up_id}"):
        customer = row.customer_name or row.customer_email
        who = linked(customer, customer_url(row.customer_id)) if customer else "a deleted account"
        price = (
            "price not recorded"
            if pd.isna(row.price_cents)
            else "free"
            if row.price_cents == 0
            else ui.fmt_money(row.price_cents)
        )
        st.markdown(
            f"**{label('follow_up_type', row.follow_up_type)}** from {who} "
            f"({label('plan', row.plan)}) · asked {ui.fmt_duration(row.age_minutes)} ago, "
            f"{ui.fmt_datetime(row.created_at, tz)} · {price}"
        )
        ui.badges([*sla_badge(row), state_badge(row)])
        st.text(row.description or "(no text)")
        answer_block(row, tz)
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
                mechanic_chooser(row, now)
            if row.state == "assigned":
                text_step(row, "answer")
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
                text_step(row, "cancel")


def export(frame: pd.DataFrame, tz: str) -> bytes:
    """The follow-ups as a spreadsheet: names and labels, not ids and codes; times to the second."""
    return as_csv(
        pd.DataFrame(
            {
                f"Asked ({tz})": column_to_the_second(frame.created_at, tz),
                "Type": [label("follow_up_type", t) for t in frame.follow_up_type],
                "State": [label("follow_up_state", t) for t in frame.state],
                "Response target": [SLA_BADGES[v][0] if isinstance(v, str) else "" for v in frame.sla_state],
                f"Due ({tz})": column_to_the_second(frame.due_at, tz),
                "Customer": frame.customer_name.fillna(frame.customer_email).fillna(""),
                "Customer email": frame.customer_email.fillna(""),
                "Plan": [label("plan", p) for p in frame.plan],
                "Question": frame.description.fillna(""),
                "Mechanic": frame.assigned_mechanic_name.fillna(""),
                f"Assigned ({tz})": column_to_the_second(frame.assigned_at, tz),
                "Answer": frame.answer_text.fillna(""),
                "Answer recorded by": frame.answered_by_name.fillna(""),
                f"Answered ({tz})": column_to_the_second(frame.answered_at, tz),
                f"Closed ({tz})": column_to_the_second(frame.closed_at, tz),
                "Cancel reason": frame.cancel_reason.fillna(""),
                "Price": ["" if pd.isna(c) else ui.fmt_money(c) for c in frame.price_cents],
            }
        )
    )


def partial_weeks(weeks: pd.DataFrame) -> pd.Series:
    """Weeks only partly in the period (its first or last; ``ui.mark_partial`` also draws the
    week in progress as "so far")."""
    return weeks.days < 7


def weekly_figure(weeks: pd.DataFrame, tz: str, today: dt.date) -> go.Figure:
    """Follow-ups asked per week (bars) and their median time to answer (a line on its own axis),
    the week in progress drawn "so far"."""
    note = [
        "" if not p else f" (partial: {d} of 7 days in the period)" for p, d in zip(partial_weeks(weeks), weeks.days)
    ]
    fig = go.Figure(
        [
            go.Bar(
                x=weeks.week,
                y=weeks.follow_ups,
                name="Follow-ups asked",
                customdata=note,
                hovertemplate="Week of %{x|%d %b %Y}%{customdata}: %{y:,} asked<extra></extra>",
            ),
            go.Scatter(
                x=weeks.week,
                y=weeks.median_hours_to_answer,
                name="Median time to answer",
                yaxis="y2",
                mode="lines+markers",
                customdata=note,
                hovertemplate="Week of %{x|%d %b %Y}%{customdata}: %{y:,.1f} h median<extra></extra>",
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
            tickformat=",.1f",
        ),
        legend=dict(yanchor="bottom", y=1.0, xanchor="right", x=1),
    )
    # A tick on Mondays, at most about a dozen of them.
    fig.update_xaxes(tick0=weeks.week.iloc[0], dtick=WEEK_MS * max(1, len(weeks) // 12), tickformat="%d %b")
    whole_ticks(fig, weeks.follow_ups.max())
    ui.mark_partial(fig, list(weeks.week), "week", tz, today=today)  # the week in progress, drawn "so far"
    return fig


def weekly_chart(period) -> None:
    weeks = ui.run_query(queries.weekly, loading="weekly volumes", period=period)
    if weeks.follow_ups.sum() == 0:
        ui.empty_state("No follow-ups were asked in this period.", "Choose a longer period in the sidebar.")
        return
    partial = partial_weeks(weeks)
    ui.chart(
        weekly_figure,
        weeks,
        period.tz,
        today_in(period.tz),
        title="Follow-ups asked per week and their median time to answer",
        x_title=f"Week starting Monday ({period.tz})",
        y_title="Follow-ups asked (count)",
        y_format="count",
    )
    if partial.any():
        shown = [f"{w:%d %b} ({d} of 7 days)" for w, d, p in zip(weeks.week, weeks.days, partial) if p]
        st.caption(f"Only partly in the period: {', '.join(shown)}; their counts are not comparable with full weeks.")
    if weeks.answered.sum() == 0:
        st.caption(
            "None of the follow-ups asked in this period has been answered here yet, so there is "
            "no time to answer to show."
        )


def pricing(rules: fu.FollowUpRules) -> None:
    with ui.write_engine().connect() as conn:
        current = fu.prices(conn)
    frame = pd.DataFrame(
        {
            "type": [label("follow_up_type", t) for t in FOLLOW_UP_TYPES],
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
                f"{label('plan', plan)} ($)",
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
        f"{label('plan', p.plan)} {label('follow_up_type', p.follow_up_type).lower()}s: "
        f"set by {ui.escape_markdown(p.updated_by)}"
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


def filters_from_url() -> list[str]:
    """The filters a link asked for (``?state=``, ``?due=``) as the widgets' first values;
    what it asked that this page does not know is said, not guessed."""
    ignored = []
    wanted_state, wanted_due = st.query_params.get("state"), st.query_params.get("due")
    if "followup_states" not in st.session_state:
        st.session_state["followup_states"] = [wanted_state] if wanted_state in URL_STATES else list(fu.WAITING)
        if wanted_state is not None and wanted_state not in URL_STATES:
            ignored.append(f"state “{wanted_state[:40]}” (use open or assigned)")
    if "followup_due" not in st.session_state:
        st.session_state["followup_due"] = wanted_due if wanted_due in queries.DUE_FILTERS else None
        if wanted_due is not None and wanted_due not in queries.DUE_FILTERS:
            ignored.append(f"due “{wanted_due[:40]}” (use overdue or soon)")
    return ignored


def turn_page(number: int) -> None:
    st.query_params["page"] = str(number)


def restart_paging() -> None:
    st.query_params.pop("page", None)


def filters_to_url(states: list[str], due: str | None) -> None:
    """Keep the link filters in the URL, so that a reload or a shared link shows the same queue."""
    wanted = {"state": states[0] if len(states) == 1 and states[0] in URL_STATES else None, "due": due}
    for key, value in wanted.items():
        if value is None:
            st.query_params.pop(key, None)
        elif st.query_params.get(key) != value:
            st.query_params[key] = value


@ui.fragment
def queue_part(tz: str, now: dt.datetime, waiting: int) -> None:
    """The filters and the cards: a filter, or a popover opened on a card, reruns this part only."""
    load_frame = ui.run_query(queries.assignee_options, now=now)
    names = dict(zip(load_frame.user_id.astype(str), load_frame.display_name))
    load = dict(zip(load_frame.user_id.astype(str), load_frame.open_items))
    all_mechanics = ui.run_query(mechanic_queries.mechanic_options)
    mechanic_names = dict(zip(all_mechanics.user_id.astype(str), all_mechanics.display_name))

    with ui.filter_bar():
        states = st.pills(
            "State",
            FOLLOW_UP_STATES,
            selection_mode="multi",
            format_func=lambda s: label("follow_up_state", s),
            key="followup_states",
            on_change=restart_paging,
        )
        due = st.segmented_control(
            "Target",
            list(DUE_LABELS),
            format_func=DUE_LABELS.get,
            key="followup_due",
            on_change=restart_paging,
            help="Waiting follow-ups only.",
        )
        types = st.pills(
            "Type",
            FOLLOW_UP_TYPES,
            selection_mode="multi",
            format_func=lambda t: label("follow_up_type", t),
            key="followup_types",
            on_change=restart_paging,
        )
        plans = st.pills(
            "Plan",
            PLANS,
            selection_mode="multi",
            format_func=lambda p: label("plan", p),
            key="followup_plans",
            on_change=restart_paging,
        )
        mechanic = st.selectbox(
            "Assigned to",
            list(mechanic_names),
            index=None,
            format_func=mechanic_names.get,
            placeholder="Any mechanic",
            key="followup_mechanic",
            on_change=restart_paging,
            width=240,
        )
        order = st.segmented_control(
            "Order",
            list(ORDER_LABELS),
            format_func=ORDER_LABELS.get,
            default="due",
            required=True,
            key="followup_order",
            on_change=restart_paging,
        )
    filters_to_url(states, due)

    filters = dict(
        now=now,
        rules=RULES,
        states=tuple(states),
        types=tuple(types),
        plans=tuple(plans),
        mechanic_id=uuid.UUID(mechanic) if mechanic else None,
        due=due,
    )
    size = ui.run_query(queries.queue_size, **filters)
    page, page_notice = page_of(st.query_params.get("page"), int(size.follow_ups.iloc[0]), PAGE_SIZE)
    if page_notice:
        st.warning(page_notice, icon=":material/link_off:")
        turn_page(page.number) if page.number > 1 else restart_paging()
    queue = ui.run_query(
        queries.queue, loading="the follow-up queue", order=order, limit=PAGE_SIZE, offset=page.offset, **filters
    )
    filtered = bool(types or plans or mechanic or due) or set(states) != set(fu.WAITING)
    if queue.empty:
        if waiting == 0 and not filtered:
            ui.empty_state(
                "Every follow-up is answered.", "New questions from customers will wait here for a mechanic."
            )
        else:
            ui.empty_state("No follow-ups match these filters.", "Clear a filter or choose other states.")
    else:
        with ui.pager(page, "follow-up", turn_page, key="followup_pager"):
            st.caption(
                f"Matching these filters, {ORDER_LABELS[order].lower()}." if filtered else f"{ORDER_LABELS[order]}."
            )
            rows = ui.query_later(queries.queue, order=order, limit=queries.QUEUE_LIMIT, **filters)
            csv_download(
                lambda: export(rows(), tz),
                file_name="follow-ups.csv",
                help=f"These follow-ups, at most {queries.QUEUE_LIMIT:,}, with names and times to the second ({tz}).",
                key="followup_export",
            )
        for row in queue.itertuples(index=False):
            card(row, tz, now, names, load)


ui.page_header(
    "Follow-ups",
    "Customers' questions on their past sessions: assign each to a mechanic and record the answer "
    "within its response target.",
)
RULES = fu.FollowUpRules.from_settings(ui.settings())
ui.write_notice()
ignored = filters_from_url()
if ignored:
    st.warning(
        ui.escape_markdown(f"The link's filter {' and '.join(ignored)} was ignored."), icon=":material/link_off:"
    )

tz = ui.period().tz
now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)  # ages move on once a minute
counts = ui.run_query(queries.summary, now=now, rules=RULES).iloc[0]
ui.kpi_row(
    [
        ui.Kpi("Waiting for an answer", ui.fmt_count(counts.waiting), help="Open and assigned follow-ups, right now."),
        ui.Kpi(
            "Past their target",
            ui.fmt_count(counts.breached),
            help="Waiting follow-ups older than their type's response target, right now.",
        ),
        ui.Kpi(
            DUE_LABELS["soon"],
            ui.fmt_count(counts.soon),
            help=f"Waiting follow-ups whose target is in the next {queries.SOON_MINUTES // 60} hours, right now.",
        ),
        ui.Kpi("Unassigned", ui.fmt_count(counts.open), help="Open follow-ups no mechanic has been assigned yet."),
    ]
)
ui.scope_caption(
    ui.NOW,
    ui.escape_markdown(
        f"{ui.plural(int(counts.answered), 'follow-up')} answered and not closed yet. "
        f"Ages as of {ui.fmt_datetime(now, tz)} ({tz})."
    ),
)

queue_part(tz, now, int(counts.waiting))

st.subheader("Per week in the period")
weekly_chart(ui.period())
prices_panel = st.expander(
    "Prices and response targets", icon=":material/sell:", key="followup_prices_open", on_change="rerun"
)
with prices_panel:
    if prices_panel.open:  # read from the database, and its editor drawn, only while open
        pricing(RULES)
