"""Review moderation: the reviews waiting for a decision, oldest first.

Support and admin staff publish a review, hide it with a reason or restore a
hidden one, one at a time or in bulk. Flags show as badges and the words that
raised them are highlighted. Review text is escaped before any highlighting is
added, so nothing a customer wrote is ever rendered as HTML or Markdown.
Keyboard: P publishes and H hides the oldest review shown.
"""

import uuid

import pandas as pd
import streamlit as st

from dashboard.core.schema import HIDE_REASONS, REVIEW_FLAGS
from dashboard.domain.reviews import (
    FLAG_LABELS,
    HIDE_REASON_LABELS,
    find_spans,
    highlight_html,
    moderate,
    moderation_required,
    set_moderation_required,
    suggested_reason,
)
from dashboard.ui import components as ui
from queries import mechanics as mechanic_queries
from queries import reviews as review_queries

PAGE_SIZE = 20
STATUS_LABELS = {"pending": "Waiting", "published": "Published", "hidden": "Hidden"}
FLAG_COLORS = {
    "personal_data": "red",
    "link_or_promo": "orange",
    "profanity": "violet",
    "short_negative": "yellow",
    "duplicate_text": "blue",
    "review_burst": "gray",
}
DONE = {"publish": "Published", "hide": "Hid", "restore": "Restored"}


@ui.write_action
def act(review_ids: list[str], action: str, reason_key: str | None = None) -> None:
    """Button callback: moderate on the server (role checked there), then refresh every cached query."""
    reason = st.session_state.get(reason_key) if reason_key else None
    if (
        ui.run_write(
            lambda: moderate(ui.write_engine(), ui.actor(), review_ids, action, reason),
            lambda count: f"{DONE[action]} {ui.plural(count, 'review')}.",
        )
        is not None
    ):
        for review_id in review_ids:
            st.session_state.pop(f"select_{review_id}", None)


def select(review_ids: list[str], value: bool) -> None:
    for review_id in review_ids:
        st.session_state[f"select_{review_id}"] = value


@ui.write_action
def save_setting() -> None:
    ui.run_write(lambda: set_moderation_required(ui.write_engine(), ui.actor(), st.session_state["moderate_all"]))


def hide_controls(review_ids: list[str], key: str, suggested: str | None, label: str, shortcut: str | None) -> None:
    reason = st.selectbox(
        "Reason to hide",
        HIDE_REASONS,
        index=HIDE_REASONS.index(suggested) if suggested else None,
        format_func=HIDE_REASON_LABELS.get,
        key=key,
        placeholder="Reason to hide…",
        label_visibility="collapsed",
        width=230,
    )
    st.button(
        label,
        key=f"hide_{key}",
        icon=":material/visibility_off:",
        on_click=act,
        args=(review_ids, "hide", key),
        disabled=not review_ids or reason is None,
        shortcut=shortcut,
    )


def history_table(frame: pd.DataFrame, review_id, other: str, tz: str) -> None:
    frame = frame[frame.id != review_id]
    if frame.empty:
        st.caption("No other reviews.")
        return
    st.dataframe(
        frame.assign(created_at=frame.created_at.dt.tz_convert(tz), rating=frame.rating.map(ui.fmt_stars)),
        column_order=["created_at", "rating", "status", other, "review_text"],
        column_config={
            "created_at": st.column_config.DatetimeColumn("Written", format="D MMM YYYY"),
            "rating": "Rating",
            "status": "Status",
            other: "Mechanic" if other == "mechanic_name" else "Customer",
            "review_text": st.column_config.TextColumn("Text", width="large"),
        },
        hide_index=True,
    )


def history(row, tz: str) -> None:
    panel = st.expander(
        "Other recent reviews by this customer and of this mechanic",
        key=f"history_{row.id}",
        on_change="rerun",
        icon=":material/history:",
    )
    with panel:
        if not panel.open:
            return
        by_customer, of_mechanic = st.columns(2)
        with by_customer:
            st.markdown("**By the customer**")
            if row.customer_id is None:
                st.caption("The customer's account was deleted.")
            else:
                history_table(
                    ui.run_query(review_queries.recent_reviews, customer_id=row.customer_id),
                    row.id,
                    "mechanic_name",
                    tz,
                )
        with of_mechanic:
            st.markdown(f"**Of {ui.escape_markdown(row.mechanic_name or 'the mechanic')}**")
            history_table(
                ui.run_query(review_queries.recent_reviews, mechanic_id=row.mechanic_id), row.id, "customer_name", tz
            )


def review_card(row, first: bool, tz: str) -> None:
    review_id = str(row.id)
    with st.container(border=True, key=f"review_{review_id}"):
        author = row.customer_name or row.customer_email or "a deleted account"
        st.markdown(
            f"**{ui.fmt_stars(row.rating)}** for "
            f"**{ui.escape_markdown(row.mechanic_name or 'an unknown mechanic')}**"
            f" · by {ui.escape_markdown(author)} · {ui.fmt_datetime(row.created_at, tz)}"
        )
        if row.flags or row.status == "hidden" or row.helpful_count:
            with ui.badge_row():
                for flag in row.flags:
                    st.badge(FLAG_LABELS.get(flag, flag), color=FLAG_COLORS.get(flag, "gray"), icon=":material/flag:")
                if row.status == "hidden":
                    ui.status_badge(
                        f"Hidden: {HIDE_REASON_LABELS[row.hidden_reason]}", icon=":material/visibility_off:"
                    )
                if row.helpful_count:
                    ui.status_badge(f"{row.helpful_count:,} found it helpful", "good", icon=":material/thumb_up:")
        if row.review_text:
            ui.review_text(highlight_html(row.review_text, find_spans(row.review_text)))
        else:
            st.caption("No text: a rating only.")
        with st.container(horizontal=True, vertical_alignment="center"):
            st.checkbox("Select", key=f"select_{review_id}")
            if row.status == "pending":
                st.button(
                    "Publish",
                    key=f"publish_{review_id}",
                    type="primary",
                    icon=":material/check:",
                    on_click=act,
                    args=([review_id], "publish"),
                    shortcut="P" if first else None,
                )
            if row.status in ("pending", "published"):
                hide_controls(
                    [review_id], f"reason_{review_id}", suggested_reason(row.flags), "Hide", "H" if first else None
                )
            if row.status == "hidden":
                st.button(
                    "Restore",
                    key=f"restore_{review_id}",
                    icon=":material/undo:",
                    on_click=act,
                    args=([review_id], "restore"),
                )
        if row.moderated_by:
            st.caption(
                f"Last moderated by {ui.escape_markdown(row.moderated_by)} on {ui.fmt_datetime(row.moderated_at, tz)}."
            )
        history(row, tz)


def bulk_bar(review_ids: list[str], status: str) -> None:
    """Select reviews, then act on all of them: the actions show once something is selected."""
    selected = [rid for rid in review_ids if st.session_state.get(f"select_{rid}")]
    with st.container(horizontal=True, vertical_alignment="center"):
        st.button("Select all shown", icon=":material/select_all:", on_click=select, args=(review_ids, True))
        if not selected:
            st.caption("Or tick “Select” on the reviews to act on several at once.")
            return
        st.button(f"Clear {len(selected)} selected", on_click=select, args=(review_ids, False))
        if status == "pending":
            st.button(
                f"Publish {len(selected)} selected",
                type="primary",
                icon=":material/done_all:",
                on_click=act,
                args=(selected, "publish"),
                disabled=not selected,
            )
        if status in ("pending", "published"):
            hide_controls(selected, "bulk_reason", None, f"Hide {len(selected)} selected", None)
        if status == "hidden":
            st.button(
                f"Restore {len(selected)} selected",
                icon=":material/undo:",
                on_click=act,
                args=(selected, "restore"),
                disabled=not selected,
            )


ui.page_header(
    "Review moderation",
    "Publish or hide what customers wrote about their mechanic; flagged reviews wait here, oldest first.",
)
ui.write_notice()

tz = ui.period().tz
flag_counts = ui.run_query(review_queries.queue_flag_counts)
waiting = dict(zip(flag_counts.flag, flag_counts.reviews))
mechanics = ui.run_query(mechanic_queries.mechanic_options)
mechanic_names = dict(zip(mechanics.user_id.astype(str), mechanics.display_name))

with ui.filter_bar():
    status = st.segmented_control(
        "Show",
        list(STATUS_LABELS),
        format_func=STATUS_LABELS.get,
        default="pending",
        required=True,
        key="show",
        bind="query-params",
    )
    ratings = st.pills(
        "Stars", [1, 2, 3, 4, 5], selection_mode="multi", key="queue_ratings", format_func=lambda r: f"{r}★"
    )
with ui.filter_bar():
    flags = st.multiselect(
        "Flags",
        REVIEW_FLAGS,
        key="queue_flags",
        placeholder="Any flag",
        width=300,
        format_func=lambda flag: f"{FLAG_LABELS[flag]} ({waiting[flag]:,} waiting)",
    )
    mechanic = st.selectbox(
        "Mechanic",
        list(mechanic_names),
        index=None,
        format_func=mechanic_names.get,
        placeholder="All mechanics",
        key="queue_mechanic",
        width=260,
    )
    in_period = st.toggle(
        "In the period",
        key="queue_in_period",
        help="Only reviews written in the period chosen in the sidebar; off shows every date.",
    )

queue = ui.run_query(
    review_queries.moderation_queue,
    loading="the reviews",
    status=status,
    flags=tuple(flags),
    ratings=tuple(ratings),
    mechanic_id=uuid.UUID(mechanic) if mechanic else None,
    period=ui.period() if in_period else None,
    oldest_first=status == "pending",
    limit=PAGE_SIZE,
)
filtered = bool(flags or ratings or mechanic or in_period)
if queue.empty:
    if status == "pending" and not filtered:
        ui.empty_state("The queue is clear.", "Reviews that get a flag wait here for a decision; none are waiting now.")
    else:
        ui.empty_state(
            f"No {STATUS_LABELS[status].lower()} reviews match these filters.",
            "Clear a filter, or turn off “In the period”.",
        )
else:
    matching = int(queue.matching.iloc[0])
    order = "oldest" if status == "pending" else "newest"
    st.caption(
        f"{ui.plural(matching, 'review')} {'match' if matching != 1 else 'matches'}"
        f"{' these filters' if filtered else ''}; showing the {order} {len(queue):,}. Times in {tz}."
    )
    bulk_bar([str(rid) for rid in queue.id], status)
    for position, row in enumerate(queue.itertuples(index=False)):
        review_card(row, position == 0, tz)

if ui.actor().role == "admin":
    with st.expander("Moderation setting", icon=":material/settings:"):
        with ui.write_engine().connect() as conn:
            required = moderation_required(conn)
        st.toggle(
            "Every new review waits for moderation",
            value=required,
            key="moderate_all",
            on_change=save_setting,
            help="Off: reviews without a flag are published at once. On: every review waits here.",
        )
