"""Review moderation: the reviews waiting for a decision, oldest first, a page at a time.

Support and admin staff publish a review, hide it with a reason or restore a hidden one, one
at a time or in bulk (bulk publish asks first); the notice after each decision offers Undo.
The suggested action is each card's primary button (``suggested_action``). Flags show as
badges and the words that raised them are highlighted; review text is escaped before any
highlighting is added, so nothing a customer wrote is ever rendered as HTML or Markdown.

The URL holds ``status`` (pending, published, hidden), ``flag`` (repeatable) and ``page``.
Keyboard (``dashboard.ui.keyboard``): J/K move the focus, P publishes and H hides the focused
review, U undoes the last decision.
"""

import datetime as dt
import functools
import uuid

import pandas as pd
import streamlit as st

from dashboard.core.schema import HIDE_REASONS, REVIEW_FLAGS, REVIEW_STATUSES
from dashboard.domain.reviews import (
    find_spans,
    highlight_html,
    moderate,
    moderation_required,
    set_moderation_required,
    suggested_action,
    suggested_reason,
    undo_moderation,
)
from dashboard.ui import components as ui
from dashboard.ui import keyboard
from dashboard.ui.labels import label
from dashboard.ui.links import customer_url, mechanic_url, name_column, with_name
from dashboard.ui.paging import Page, page_of
from queries import mechanics as mechanic_queries
from queries import reviews as review_queries

PAGE_SIZE = 10
FOCUS = "review_focus"
LAST = "_reviews_last_decision"  # (Moderation, what the notice says) of the last decision, for Undo
UNDONE = "_reviews_undone"  # what the notice says after an undo
FLAG_COLORS = {
    "personal_data": "red",
    "link_or_promo": "orange",
    "profanity": "violet",
    "short_negative": "yellow",
    "duplicate_text": "blue",
    "review_burst": "gray",
}
DONE = {"publish": "Published", "hide": "Hid", "restore": "Restored"}
WHY_HIDE = {
    "personal_data": "it shows personal information",
    "link_or_promo": "it advertises",
    "profanity": "it has profanity",
}


# --- the URL: status, flag, page ---------------------------------------------------


def url_filters() -> tuple[str, list[str], list[str]]:
    """(status, flags, notices) the URL asks for; unknown values are dropped, each with a notice."""
    notices = []
    status = st.query_params.get("status") or "pending"
    if status not in REVIEW_STATUSES:
        notices.append(
            f"The link's status {status[:30]!r} is not one of pending, published or hidden: showing waiting reviews."
        )
        status = "pending"
        st.query_params.pop("status", None)  # the URL says what is shown
    flags = []
    for flag in st.query_params.get_all("flag"):
        if flag not in REVIEW_FLAGS:
            notices.append(f"The link's flag {flag[:30]!r} is not a flag reviews get: left out.")
        elif flag not in flags:
            flags.append(flag)
    if flags != st.query_params.get_all("flag"):
        set_param("flag", flags)
    return status, flags, notices


def set_param(name: str, value, default=None) -> None:
    """Put a filter in the URL (empty or the default: take it out); a new filter starts at page 1."""
    if not value or value == default:
        st.query_params.pop(name, None)
    else:
        st.query_params[name] = value
    st.query_params.pop("page", None)


def status_changed() -> None:
    set_param("status", st.session_state["status_pick"], default="pending")


def flags_changed() -> None:
    set_param("flag", list(st.session_state["flag_pick"]))


def turn_page(number: int) -> None:
    st.query_params["page"] = str(number)
    st.session_state.pop(FOCUS, None)


def turn_page_by(page: Page, step: int) -> bool:
    """J past the last review or K before the first: the next or previous page, if there is one."""
    if 1 <= page.number + step <= page.pages:
        turn_page(page.number + step)
        return True
    return False


def restart_paging() -> None:
    st.query_params.pop("page", None)


# --- writes ---------------------------------------------------------------------------


@ui.write_action
def act(review_ids: list[str], action: str, reason_key: str | None = None, focus_next: str | None = None) -> None:
    """Button callback: moderate on the server (role checked there), then refresh every cached
    query; the notice says what was done and offers Undo."""
    reason = st.session_state.get(reason_key) if reason_key else None
    done = ui.run_write(lambda: moderate(ui.write_engine(), ui.actor(), review_ids, action, reason))
    if done is None:
        return
    for review_id in review_ids:
        st.session_state.pop(f"select_{review_id}", None)
    st.session_state[LAST] = (done, f"{DONE[action]} {ui.plural(done.count, 'review')}.")
    st.session_state.pop(UNDONE, None)
    if focus_next:
        st.session_state[FOCUS] = focus_next


@ui.write_action
def undo_last() -> None:
    """Take the last decision back (the server refuses if a review changed since)."""
    last = st.session_state.pop(LAST, None)
    if last is None:
        return
    moderation, _ = last
    done = ui.run_write(
        lambda: undo_moderation(ui.write_engine(), ui.actor(), moderation.review_ids, seen=moderation.seen)
    )
    if done is not None:
        st.session_state[UNDONE] = f"Undone: {ui.plural(done.count, 'review')} back as before."
        st.session_state[FOCUS] = str(done.review_ids[0])


def dismiss() -> None:
    st.session_state.pop(LAST, None)
    st.session_state.pop(UNDONE, None)


def select(review_ids: list[str], value: bool) -> None:
    for review_id in review_ids:
        st.session_state[f"select_{review_id}"] = value


@ui.write_action
def save_setting() -> None:
    ui.run_write(lambda: set_moderation_required(ui.write_engine(), ui.actor(), st.session_state["moderate_all"]))


def decision_notice() -> None:
    """What the last decision did, with Undo (U); or what the undo did."""
    last, undone = st.session_state.get(LAST), st.session_state.get(UNDONE)
    if last:
        ui.undo_toast(last[1], key="decision_notice", on_undo=undo_last, on_dismiss=dismiss)
    elif undone:
        ui.undo_toast(undone, key="decision_notice", on_undo=None, on_dismiss=dismiss)


# --- the cards ------------------------------------------------------------------------


def hide_controls(
    review_ids: list[str],
    key: str,
    suggested: str | None,
    text: str,
    *,
    primary: bool = False,
    shortcut: str | None = None,
    focus_next: str | None = None,
) -> None:
    reason = st.selectbox(
        "Reason to hide",
        HIDE_REASONS,
        index=HIDE_REASONS.index(suggested) if suggested else None,
        format_func=lambda code: label("hide_reason", code),
        key=key,
        placeholder="Reason to hide…",
        label_visibility="collapsed",
        width=230,
    )
    st.button(
        text,
        key=f"hide_{key}",
        icon=":material/visibility_off:",
        type="primary" if primary else "secondary",
        on_click=act,
        args=(review_ids, "hide", key, focus_next),
        disabled=not review_ids or reason is None,
        shortcut=shortcut,
    )


def person_link(name: str | None, url: str | None, missing: str) -> str:
    """Markdown: the person's name (escaped) linking to their page, or ``missing``."""
    if not name or url is None:
        return missing
    return f"[{ui.escape_markdown(name)}]({url})"


def history_table(frame: pd.DataFrame, review_id, other: str, tz: str) -> None:
    frame = frame[frame.id != review_id]
    if frame.empty:
        st.caption("No other reviews.")
        return
    if other == "mechanic_name":
        names = [with_name(mechanic_url(m), n) for m, n in zip(frame.mechanic_id, frame.mechanic_name)]
    else:
        names = [
            with_name(customer_url(c), n or "deleted account") if c is not None else None
            for c, n in zip(frame.customer_id, frame.customer_name)
        ]
    st.dataframe(
        frame.assign(
            created_at=frame.created_at.dt.tz_convert(tz),
            rating=frame.rating.map(ui.fmt_stars),
            status=[label("review_status", code) for code in frame.status],
            person=names,
            review_text=frame.review_text.fillna("—"),
        ),
        column_order=["person", "created_at", "rating", "status", "review_text"],
        column_config={
            "created_at": st.column_config.DatetimeColumn("Written", format="D MMM YYYY, HH:mm:ss"),
            "rating": "Rating",
            "status": "Status",
            "person": name_column("Mechanic" if other == "mechanic_name" else "Customer", pinned=True),
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
        # one above the other: side by side, five columns do not fit at 1280 px
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
        st.markdown(f"**Of {ui.escape_markdown(row.mechanic_name or 'the mechanic')}**")
        history_table(
            ui.run_query(review_queries.recent_reviews, mechanic_id=row.mechanic_id), row.id, "customer_name", tz
        )


def waited(created_at, now: dt.datetime) -> str:
    return ui.fmt_duration((now - pd.Timestamp(created_at)).total_seconds() / 60)


def suggestion_text(suggested: str, flags: list[str]) -> str:
    if suggested == "hide":
        why = next(WHY_HIDE[flag] for flag in flags if flag in WHY_HIDE)
        return f"Suggested: hide, {why}."
    if not flags:
        return "Suggested: publish; nothing flagged it."
    if suggested_reason(flags) is None:
        return "Suggested: publish; to hide it, pick a reason."
    return "Suggested: publish; a mild flag."


def card_badges(row, now: dt.datetime) -> list[str]:
    """A card's badges: how long it has waited, its flags, why it is hidden, how many found it helpful."""
    shown = [ui.status(f"Waiting {waited(row.created_at, now)}", "warning")] if row.status == "pending" else []
    shown += [ui.badge(label("review_flag", f), FLAG_COLORS.get(f, "gray"), ":material/flag:") for f in row.flags]
    if row.status == "hidden":
        shown.append(ui.status(f"Hidden: {label('hide_reason', row.hidden_reason)}", icon=":material/visibility_off:"))
    if row.helpful_count:
        shown.append(ui.status(f"{row.helpful_count:,} found it helpful", "good", icon=":material/thumb_up:"))
    return shown


def review_card(row, focus: bool, focus_next: str | None, tz: str, now: dt.datetime) -> None:
    review_id = str(row.id)
    with st.container(border=True, key=f"review_{review_id}"):
        mechanic = person_link(row.mechanic_name, mechanic_url(row.mechanic_id), "an unknown mechanic")
        author = person_link(
            row.customer_name or row.customer_email,
            customer_url(row.customer_id) if row.customer_id is not None else None,
            "a deleted account",
        )
        st.markdown(
            f"**{ui.fmt_stars(row.rating)}** for **{mechanic}** · by {author}"
            f" · written {ui.fmt_datetime(row.created_at, tz)}"
        )
        ui.badges(card_badges(row, now))
        if row.review_text:
            ui.review_text(highlight_html(row.review_text, find_spans(row.review_text)))
        else:
            st.caption("No text: a rating only.")
        suggested = suggested_action(row.flags) if row.status == "pending" else None
        with st.container(horizontal=True, vertical_alignment="center"):
            st.checkbox("Select", key=f"select_{review_id}")
            if row.status == "pending":
                st.button(
                    "Publish",
                    key=f"publish_{review_id}",
                    type="primary" if suggested == "publish" else "secondary",
                    icon=":material/check:",
                    on_click=act,
                    args=([review_id], "publish", None, focus_next),
                    shortcut="P" if focus else None,
                )
            if row.status in ("pending", "published"):
                hide_controls(
                    [review_id],
                    f"reason_{review_id}",
                    suggested_reason(row.flags),
                    "Hide",
                    primary=suggested == "hide",
                    shortcut="H" if focus else None,
                    focus_next=focus_next,
                )
            if row.status == "hidden":
                st.button(
                    "Restore",
                    key=f"restore_{review_id}",
                    icon=":material/undo:",
                    on_click=act,
                    args=([review_id], "restore", None, focus_next),
                )
            if suggested:
                st.caption(suggestion_text(suggested, row.flags))
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
        count = ui.plural(len(selected), "review")
        st.button(f"Clear {len(selected)} selected", on_click=select, args=(review_ids, False))
        if status == "pending":
            ui.confirm(
                f"Publish {len(selected)} selected",
                f"**{count}** become public on their mechanics' profiles and count in their ratings. "
                "You can undo it right after.",
                f"Publish {count}",
                act,
                (selected, "publish"),
                key="bulk_publish",
                icon=":material/done_all:",
            )
        if status in ("pending", "published"):
            hide_controls(selected, "bulk_reason", None, f"Hide {len(selected)} selected")
        if status == "hidden":
            st.button(
                f"Restore {len(selected)} selected",
                icon=":material/undo:",
                on_click=act,
                args=(selected, "restore"),
            )


def scope_text(status: str, in_period: bool, oldest, tz: str, now: dt.datetime) -> str:
    """What the list covers: waiting now (and for how long) or by date, and the period only when used."""
    what = {
        "pending": "Waiting now, oldest first",
        "published": "Published, newest first",
        "hidden": "Hidden, newest first",
    }[status]
    if status == "pending" and oldest is not None and not pd.isna(oldest):
        what += f"; the oldest has waited {waited(oldest, now)}"
    period = ui.period()
    dates = (
        f"Written {period.start:%d %b %Y} – {period.end:%d %b %Y}, the sidebar's period"
        if in_period
        else "Any date: the sidebar's period applies only with “Written in the period”"
    )
    return f"{what}. {dates}. Times in {tz}."


def moderation_setting() -> None:
    """Admins: whether every new review waits here; read from the database only while open."""
    setting = st.expander("Moderation setting", icon=":material/settings:", key="moderation_setting", on_change="rerun")
    with setting:
        if not setting.open:
            return
        with ui.write_engine().connect() as conn:
            required = moderation_required(conn)
        st.toggle(
            "Every new review waits for moderation",
            value=required,
            key="moderate_all",
            on_change=save_setting,
            help="Off: reviews without a flag are published at once. On: every review waits here.",
        )


# --- the page ---------------------------------------------------------------------------


@ui.fragment
def queue_part() -> None:
    """The filters and the reviews: a filter, a page, J/K or a ticked review reruns this part only."""
    status, flags, url_notices = url_filters()
    for notice in url_notices:
        st.warning(ui.escape_markdown(notice), icon=":material/link_off:")
    tz = ui.period().tz
    now = dt.datetime.now(dt.UTC)
    flag_counts = ui.run_query(review_queries.queue_flag_counts)
    waiting = dict(zip(flag_counts.flag, flag_counts.reviews))
    mechanics = ui.run_query(mechanic_queries.mechanic_options)
    mechanic_names = dict(zip(mechanics.user_id.astype(str), mechanics.display_name))

    st.session_state["status_pick"] = status  # the URL decides; the widgets write it back
    st.session_state["flag_pick"] = flags
    with ui.filter_bar():
        st.segmented_control(
            "Show",
            list(REVIEW_STATUSES),
            format_func=lambda code: label("review_status", code),
            required=True,
            key="status_pick",
            on_change=status_changed,
        )
        ratings = st.pills(
            "Stars",
            [1, 2, 3, 4, 5],
            selection_mode="multi",
            key="queue_ratings",
            format_func=lambda r: f"{r}★",
            on_change=restart_paging,
        )
    with ui.filter_bar():
        st.multiselect(
            "Flags",
            REVIEW_FLAGS,
            key="flag_pick",
            placeholder="Any flag",
            width=300,
            format_func=lambda flag: f"{label('review_flag', flag)} ({waiting[flag]:,} waiting)",
            on_change=flags_changed,
        )
        mechanic = st.selectbox(
            "Mechanic",
            list(mechanic_names),
            index=None,
            format_func=mechanic_names.get,
            placeholder="All mechanics",
            key="queue_mechanic",
            width=260,
            on_change=restart_paging,
        )
        in_period = st.toggle(
            "Written in the period",
            key="queue_in_period",
            help="Only reviews written in the period chosen in the sidebar; off shows every date.",
            on_change=restart_paging,
        )

    filters = dict(
        status=status,
        flags=tuple(flags),
        ratings=tuple(ratings),
        mechanic_id=uuid.UUID(mechanic) if mechanic else None,
        period=ui.period() if in_period else None,
    )
    size = ui.run_query(review_queries.queue_size, **filters)
    page, page_notice = page_of(st.query_params.get("page"), int(size.reviews.iloc[0]), PAGE_SIZE)
    if page_notice:
        st.warning(page_notice, icon=":material/link_off:")
        turn_page(page.number) if page.number > 1 else st.query_params.pop("page", None)
    queue = ui.run_query(
        review_queries.moderation_queue,
        loading="the reviews",
        oldest_first=status == "pending",
        limit=PAGE_SIZE,
        offset=page.offset,
        **filters,
    )
    filtered = bool(flags or ratings or mechanic or in_period)
    if queue.empty:
        if status == "pending" and not filtered:
            ui.empty_state(
                "The queue is clear.", "Reviews that get a flag wait here for a decision; none are waiting now."
            )
        elif not filtered:
            ui.empty_state(
                f"No {label('review_status', status).lower()} reviews yet.",
                "Reviews show here once a moderator publishes or hides them, or they pass every check.",
            )
        else:
            ui.empty_state(
                f"No {label('review_status', status).lower()} reviews match these filters.",
                "Clear a filter, or turn off “Written in the period”.",
            )
    else:
        ids = [str(rid) for rid in queue.id]
        focus = keyboard.focused(FOCUS, ids)
        with ui.pager(page, "review", turn_page, key="queue_pager"):
            keyboard.focus_buttons(FOCUS, ids, "review", past_end=functools.partial(turn_page_by, page))
        st.caption(
            scope_text(status, in_period, size.oldest.iloc[0], tz, now)
            + " Keys: J/K next/previous review, P publish, H hide, U undo."
        )
        bulk_bar(ids, status)
        ui.review_styles()
        for position, row in enumerate(queue.itertuples(index=False)):
            neighbour = ids[position + 1] if position + 1 < len(ids) else (ids[position - 1] if position else None)
            review_card(row, ids[position] == focus, neighbour, tz, now)
        keyboard.focus_ring(f"review_{focus}", FOCUS)


ui.page_header(
    "Review moderation",
    "Publish or hide what customers wrote about their mechanic; flagged reviews wait here, oldest first.",
)
ui.write_notice()
decision_notice()
queue_part()
if ui.actor().role == "admin":
    moderation_setting()
