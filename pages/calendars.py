"""Mechanic calendars & pricing: the week hour by hour with prices, weekly slots, days off,
peak multipliers and base prices, and their audit trail.

The week and the heatmaps are in the sidebar's display timezone, weekly slots and days off on
the mechanic's own clock. Managers and admins edit; anyone else reads. Every change goes through
``dashboard.domain.calendars.edits`` (role check on the server, validation, one transaction,
audit row) and is previewed first as the bookable slots and prices of the next 14 days. The
pickers and each view are fragments: changing one reruns only its part of the page.
``?mechanic=<id>`` opens that mechanic's calendar.
"""

import datetime as dt
from decimal import Decimal

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from dashboard.core.period import timezones, today_in
from dashboard.core.schema import SESSION_TYPES
from dashboard.domain.calendars.edits import (
    CALENDAR,
    EDITOR_ROLES,
    delete_override,
    parse_override,
    save_weekly_slots,
    set_base_price,
    set_mechanic_timezone,
    set_override,
    set_peak_multiplier,
)
from dashboard.domain.calendars.slots import (
    DAY_NAMES,
    MULTIPLIER_MAX,
    MULTIPLIER_MIN,
    Override,
    SlotRules,
    ValidationError,
    is_known_timezone,
    parse_multiplier,
    price_cents,
    validate_weekly_rows,
)
from dashboard.ui import components as ui
from dashboard.ui.labels import LABELS, action_label, label
from dashboard.ui.links import mechanic_url, name_column, page_url, with_name
from queries import calendars

ALL = "all"
VIEWS = ("Week", "Heatmaps", "Weekly slots", "Days off", "Peak pricing", "Base prices", "Audit trail")
VIEW_PARAMS = dict(zip(("week", "heatmaps", "slots", "days-off", "peak", "prices", "audit"), VIEWS))  # ?view=
PREVIEW_DAYS = 14
BUSIEST_SHOWN = 25
MONDAY_FIRST = (1, 2, 3, 4, 5, 6, 0)
MULTIPLIER_INPUT = {
    "min_value": float(MULTIPLIER_MIN),
    "max_value": float(MULTIPLIER_MAX),
    "step": 0.05,
    "format": "%.2f",
}


# --- writes: button callbacks, so their notice shows on the rerun they cause --------------


# The buttons' callback, with (write, done): the server checks role and input. The editors, keyed
# by ``ui.data_version()``, start again from what is stored whenever a write refreshed the queries.
write = ui.write_action(ui.run_write)


def mechanic_label(mechanic_id: str) -> str:
    if mechanic_id == ALL:
        return "All active mechanics"
    return f"{NAMES[mechanic_id]} · {ZONES[mechanic_id]}"


def local_times(values, tz: str) -> pd.Series:
    """UTC instants as wall-clock times of ``tz`` (naive, for charts and tables)."""
    return pd.to_datetime(pd.Series(values), utc=True).dt.tz_convert(tz).dt.tz_localize(None)


def daily_summary(slots: pd.DataFrame) -> pd.DataFrame:
    """Bookable starts per mechanic-local day: count, first and last start, price range."""
    if slots.empty:
        return pd.DataFrame(columns=["day", "starts", "first", "last", "prices"])
    grouped = slots.assign(day=slots.start_local.dt.date).groupby("day")
    summary = grouped.agg(
        starts=("start_utc", "size"),
        first=("start_local", "min"),
        last=("start_local", "max"),
        low=("price_cents", "min"),
        high=("price_cents", "max"),
    ).reset_index()
    summary["first"] = summary["first"].dt.strftime("%H:%M")
    summary["last"] = summary["last"].dt.strftime("%H:%M")
    summary["prices"] = [
        ui.fmt_money(lo) if lo == hi or pd.isna(lo) else f"{ui.fmt_money(lo)}–{ui.fmt_money(hi)}"
        for lo, hi in zip(summary.low, summary.high)
    ]
    return summary.drop(columns=["low", "high"])


def preview_table(before: pd.DataFrame, after: pd.DataFrame, today: dt.date) -> None:
    """The next PREVIEW_DAYS days as customers would see them after the change, beside today's offer."""
    days = pd.DataFrame({"day": [today + dt.timedelta(days=n) for n in range(PREVIEW_DAYS)]})
    now = daily_summary(before)[["day", "starts"]].rename(columns={"starts": "now"})
    table = days.merge(daily_summary(after), on="day", how="left").merge(now, on="day", how="left")
    table[["starts", "now"]] = table[["starts", "now"]].fillna(0).astype(int)
    table[["first", "last", "prices"]] = table[["first", "last", "prices"]].fillna("—")
    table["day"] = [f"{day:%a %d %b}" for day in table.day]
    st.dataframe(
        table[["day", "now", "starts", "first", "last", "prices"]],
        hide_index=True,
        height=36 * (PREVIEW_DAYS + 2),
        column_config={
            "day": "Day (mechanic's date)",
            "now": "Starts now",
            "starts": "Starts after saving",
            "first": "First start",
            "last": "Last start",
            "prices": "Price",
        },
    )


# --- the week: hours and prices in money --------------------------------------------------

CLOSED = "—"
WEEK_KEPT = "calendar_week_kept"
OPEN_STYLE = "background-color: rgba(33, 195, 84, 0.16)"
BOOKED_STYLE = "background-color: rgba(28, 131, 225, 0.22); font-weight: 600"


def price_text(low, high) -> str:
    if pd.isna(low):
        return "Open"
    return ui.fmt_money(low) if low == high else f"{ui.fmt_money(low)}–{ui.fmt_money(high)}"


def hour_cell(row) -> str:
    """What one hour of the week grid says: booked, the price of a session starting then, or closed."""
    if row.sessions:
        return "Booked" if row.sessions == 1 else f"{row.sessions} booked"
    if row.open_starts:
        return price_text(row.price_low_cents, row.price_high_cents)
    return CLOSED


def week_grid(prices: pd.DataFrame) -> pd.DataFrame:
    """Hours (rows, only from the first to the last hour with anything in the week) by days (columns)."""
    busy = prices[(prices.open_starts > 0) | (prices.sessions > 0)]
    if busy.empty:
        return pd.DataFrame()
    hours = range(int(busy.hour.min()), int(busy.hour.max()) + 1)
    cells = prices.assign(
        text=[hour_cell(row) for row in prices.itertuples()], day=[f"{d:%a %d %b}" for d in prices.local_date]
    )
    table = cells.pivot(index="hour", columns="day", values="text").reindex(index=hours)
    table = table[list(dict.fromkeys(cells.day))]
    table.index = [f"{hour:02d}:00" for hour in hours]
    table.index.name = "Hour"
    return table


def cell_style(text: str) -> str:
    if text == CLOSED:
        return ""
    return BOOKED_STYLE if text.endswith("ooked") else OPEN_STYLE


def session_type_picker(title: str, key: str) -> str:
    return st.segmented_control(
        title,
        SESSION_TYPES,
        default="video",
        required=True,
        format_func=lambda t: f"{label('session_type', t)} sessions",
        key=key,
    )


def change_week(days: int) -> None:
    """Previous/next week (``days`` -7 or 7), or this week (0)."""
    week = today_in(TZ) if days == 0 else st.session_state[WEEK_KEPT] + dt.timedelta(days=days)
    st.session_state[WEEK_KEPT] = st.session_state["calendar_week"] = week


def keep_week() -> None:
    st.session_state[WEEK_KEPT] = st.session_state["calendar_week"]


def week_picker() -> dt.date:
    """The week shown (its Monday): a date in it, or the previous, this or the next week."""
    st.session_state.setdefault(WEEK_KEPT, today_in(TZ))  # kept while other views are shown
    st.session_state.setdefault("calendar_week", st.session_state[WEEK_KEPT])
    with ui.filter_bar():
        st.date_input("Week of", key="calendar_week", on_change=keep_week, width=160)
        st.button("Previous week", icon=":material/chevron_left:", on_click=change_week, args=(-7,))
        st.button("This week", on_click=change_week, args=(0,))
        st.button("Next week", icon=":material/chevron_right:", icon_position="right", on_click=change_week, args=(7,))
    week_of = st.session_state[WEEK_KEPT]
    return week_of - dt.timedelta(days=week_of.weekday())


@ui.fragment
def week_view(mechanic: str, week_start: dt.date, tz: str) -> None:
    if mechanic == ALL:
        busiest_this_week(week_start, tz)
        return
    session_type = session_type_picker("Prices for", "calendar_week_type")
    week = {"mechanic_id": mechanic, "week_start": week_start, "tz": tz}
    prices = ui.run_query(calendars.week_prices, loading="the week", session_type=session_type, rules=RULES, **week)
    grid = week_grid(prices)
    if grid.empty:
        ui.empty_state(
            "No open hours and no sessions this week.",
            "Pick another week, or add weekly slots in the Weekly slots view.",
        )
        return
    if prices[prices.open_starts > 0].price_low_cents.isna().all() and prices.open_starts.sum():
        st.info(
            f"No base price is set for {label('session_type', session_type).lower()} sessions, so open hours "
            "show no price: set one in Base prices.",
            icon=":material/sell:",
        )
    st.caption(
        f"**Legend:** a price = open, what a {label('session_type', session_type).lower()} session starting in that "
        f"hour costs · **Booked** = a session starts then · **{CLOSED}** = not available. "
        f"Hours in {ui.escape_markdown(tz)}; {ui.escape_markdown(NAMES[mechanic])} works on "
        f"{ui.escape_markdown(ZONES[mechanic])} time."
    )
    st.dataframe(
        grid.style.map(cell_style),
        height=36 * (len(grid) + 1) + 3,
        column_config={"_index": st.column_config.TextColumn(f"Hour ({tz})", pinned=True)},
    )
    start, end = calendars.week_bounds(week_start, tz)
    sessions = ui.run_query(calendars.booked_sessions, mechanic_ids=(mechanic,), start=start, end=end)
    if not sessions.empty:
        st.subheader("Booked this week", anchor=False)
        clock = st.column_config.DatetimeColumn(format="ddd D MMM, HH:mm")
        st.dataframe(
            pd.DataFrame(
                {
                    f"Start ({tz})": local_times(sessions.scheduled_at, tz),
                    f"Their clock ({ZONES[mechanic]})": local_times(sessions.scheduled_at, ZONES[mechanic]),
                    "Type": [label("session_type", t) for t in sessions.session_type],
                    "Status": [label("session_status", t) for t in sessions.status],
                    "Price": [ui.fmt_money(c) for c in sessions.price_cents],
                }
            ),
            hide_index=True,
            column_config={f"Start ({tz})": clock, f"Their clock ({ZONES[mechanic]})": clock},
        )


def busiest_this_week(week_start: dt.date, tz: str) -> None:
    start, end = calendars.week_bounds(week_start, tz)
    shown = ui.run_query(calendars.busiest_mechanics, start=start, end=end, limit=BUSIEST_SHOWN)
    st.caption(
        (
            "Every active mechanic"
            if len(shown) == len(NAMES)
            else f"The {len(shown)} busiest of {len(NAMES):,} active mechanics"
        )
        + " this week. Pick a mechanic above to see their week hour by hour with prices."
    )
    st.dataframe(
        pd.DataFrame(
            {
                "Mechanic": [with_name(mechanic_url(i), n) for i, n in zip(shown.mechanic_id, shown.display_name)],
                "Calendar": [page_url("calendars.py", mechanic=i) for i in shown.mechanic_id],
                "Timezone": shown.timezone,
                "Sessions booked": shown.sessions,
            }
        ),
        hide_index=True,
        column_config={
            "Mechanic": name_column("Mechanic", help="Opens their profile.", pinned=True),
            "Calendar": st.column_config.LinkColumn("Calendar", display_text="Open calendar"),
        },
    )


HEATMAPS = {  # column -> colour scale, cell format, the scale's bounds
    "multiplier": ("Oranges", ".2f", (0.5, 2.0)),
    "utilisation": ("Teal", ".0%", (0, 1)),
}


def heatmap_figure(grid: pd.DataFrame, column: str) -> go.Figure:
    """``column`` of the hour grid by day (rows) and hour (columns), each cell labelled."""
    scale, fmt, (low, high) = HEATMAPS[column]
    labels = [f"{day:%a %d %b}" for day in grid.local_date]
    table = grid.assign(day=labels).pivot(index="day", columns="hour", values=column)
    table = table.reindex(list(dict.fromkeys(labels)))
    fig = px.imshow(table, text_auto=fmt, aspect="auto", color_continuous_scale=scale, zmin=low, zmax=high)
    fig.update_traces(hovertemplate="%{y} %{x}:00 · %{z:" + fmt + "}<extra></extra>")
    fig.update_xaxes(dtick=1)
    return fig


def heatmaps(mechanic: str, week_start: dt.date, tz: str) -> None:
    grid = ui.run_query(
        calendars.hour_grid,
        loading="the hour grid",
        mechanic_ids=None if mechanic == ALL else (mechanic,),
        week_start=week_start,
        tz=tz,
        session_minutes=RULES.session_minutes,
    )
    available = grid.available_minutes.sum()
    if available == 0:
        ui.empty_state("No availability this week.", "Pick another week, or add weekly slots in the Weekly slots view.")
        return
    booked = grid.booked_minutes.sum()
    ui.kpi_row(
        [
            ui.Kpi("Available hours", f"{available / 60:,.1f}", help="Hours open for booking, summed over mechanics."),
            ui.Kpi(
                "Booked hours",
                f"{booked / 60:,.1f}",
                help=f"Sessions not cancelled x {RULES.session_minutes} minutes, counted in the hour they start.",
            ),
            ui.Kpi("Utilisation", ui.fmt_percent(booked / available), help="Booked hours / available hours."),
            ui.Kpi(
                "Average multiplier",
                f"x{(grid.multiplier * grid.available_minutes).sum() / available:.2f}",
                help="Weighted by available minutes.",
            ),
        ]
    )
    for column, title in (
        ("multiplier", "Price multiplier by hour (mean over open mechanics)"),
        ("utilisation", "Utilisation by hour (booked / available)"),
    ):
        ui.chart(heatmap_figure, grid, column, title=title, x_title=f"Hour of day ({tz})", y_title="Day")
    st.caption(
        "Empty cells have no availability. Hours are in the display timezone; each mechanic's hours "
        "are set on their own clock."
    )


# --- the weekly slot editor ------------------------------------------------------------------
#
# The editor shows a draft kept in session state: each edit the grid reports is applied to the
# draft and the grid is drawn afresh from it (a new key), so the read-only columns beside the
# multiplier (the resulting prices, the problem of each row) follow every edit. Streamlit's grid
# styles only read-only cells and checks a typed value by refusing it, so a bad multiplier is
# marked in its own cell with MARK and explained in the row's Problem cell, highlighted.

EDIT_COLUMNS = ["slot_id", "day", "start", "end", "available", "multiplier"]
MARK = "⚠"
GRIDS_DRAWN = "calendar_grids_drawn"
PROBLEM_STYLE = "background-color: rgba(255, 75, 75, 0.2)"


def slot_rows(table: pd.DataFrame) -> list[dict]:
    """The slots table's rows as ``save_weekly_slots`` reads them."""
    return [
        {
            "id": r["slot_id"],
            "day_of_week": r["day"],
            "start_time": r["start"],
            "end_time": r["end"],
            "is_available": r["available"],
            "price_multiplier": r["multiplier"],
        }
        for r in table.to_dict("records")
    ]


def stored_draft(slots: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "slot_id": slots.slot_id,
            "day": [DAY_NAMES[d] for d in slots.day_of_week],
            "start": slots.start_time,
            "end": slots.end_time,
            "available": slots.is_available.astype(bool),
            "multiplier": [f"{m:.2f}" for m in slots.price_multiplier],
        },
        columns=EDIT_COLUMNS,
    )


def _cell(column: str, value):
    """A value the grid sent, as the draft keeps it (times as times, the multiplier as its text)."""
    if value is None:
        return None
    if column in ("start", "end"):
        if isinstance(value, dt.time):
            return value
        try:
            return pd.Timestamp(str(value)).time()  # the grid sends "09:30:00.000"
        except (ValueError, TypeError, OverflowError):
            return None
    if column == "multiplier":
        return str(value).replace(MARK, "").strip()
    if column == "available":
        return bool(value)
    return str(value)


def apply_edits(draft: pd.DataFrame, state: dict) -> pd.DataFrame:
    """``draft`` with the grid's edit state (edited, deleted and added rows) applied."""
    rows = draft.to_dict("records")
    for position, changes in (state.get("edited_rows") or {}).items():
        if 0 <= int(position) < len(rows):
            rows[int(position)].update({k: _cell(k, v) for k, v in changes.items() if k in EDIT_COLUMNS[1:]})
    deleted = {int(position) for position in state.get("deleted_rows") or []}
    rows = [row for position, row in enumerate(rows) if position not in deleted]
    for added in state.get("added_rows") or []:
        new = {"slot_id": None, "day": None, "start": None, "end": None, "available": True, "multiplier": "1.00"}
        new.update({k: _cell(k, v) for k, v in added.items() if k in EDIT_COLUMNS[1:]})
        rows.append(new)
    return pd.DataFrame(rows, columns=EDIT_COLUMNS)


def _multiplier_or_none(value) -> Decimal | None:
    try:
        return parse_multiplier(value)
    except ValidationError:
        return None


def checked_draft(draft: pd.DataFrame, prices: dict[str, int]) -> tuple[pd.DataFrame, ValidationError | None]:
    """The draft as the grid shows it: a bad multiplier marked, the resulting price of each
    session type with a base price, and each row's problem; and the validation error, if any."""
    try:
        validate_weekly_rows(slot_rows(draft))
        problem = None
    except ValidationError as exc:
        problem = exc
    errors = problem.row_errors if problem is not None else {}
    multipliers = [_multiplier_or_none(m) for m in draft.multiplier]
    shown = draft.copy()
    shown["multiplier"] = [
        text if m is not None or text is None else f"{MARK} {text}" for text, m in zip(draft.multiplier, multipliers)
    ]
    for session_type, base in prices.items():
        shown[f"{session_type}_price"] = [
            ui.fmt_money(price_cents(base, m)) if m is not None else "—" for m in multipliers
        ]
    shown["problem"] = [" ".join(errors.get(position, [])) for position in range(len(draft))]
    return shown, problem


def changes_between(seen: pd.DataFrame, draft: pd.DataFrame) -> int:
    """How many slots the draft adds, changes or removes."""
    before = {row["id"]: row for row in slot_rows(seen)}
    after = slot_rows(draft)
    kept = {row["id"] for row in after if row["id"] in before}
    added = sum(row["id"] not in before for row in after)
    changed = sum(row != before[row["id"]] for row in after if row["id"] in before)
    return added + changed + len(set(before) - kept)


def draft_key(mechanic: str, version: int) -> str:
    return f"slots_draft_{mechanic}_{version}"


def next_grid_key(mechanic: str) -> str:
    """A key no grid of this session had: a grid drawn afresh must not take up an old one's edits."""
    st.session_state[GRIDS_DRAWN] = st.session_state.get(GRIDS_DRAWN, 0) + 1
    return f"slots_{mechanic}_{st.session_state[GRIDS_DRAWN]}"


def discard(mechanic: str, version: int) -> None:
    st.session_state.pop(draft_key(mechanic, version), None)
    st.toast("Changes discarded: the saved weekly slots are back.", icon=":material/undo:")


@ui.fragment
def weekly_slots(mechanic: str, editable: bool) -> None:
    ui.write_notice()
    version = ui.data_version()
    zone = ZONES[mechanic]
    st.caption(
        f"Hours on {ui.escape_markdown(NAMES[mechanic])}'s own clock ({ui.escape_markdown(zone)}); "
        "a slot cannot cross midnight, so split it in two."
    )
    if editable:
        with st.expander("Mechanic's timezone", expanded=not is_known_timezone(zone)):
            chosen = st.selectbox(
                "Their hours are read in",
                timezones(),
                index=timezones().index(zone) if zone in timezones() else 0,
                key=f"calendar_tz_{mechanic}_{version}",
            )
            st.button(
                "Save timezone",
                disabled=chosen == zone,
                on_click=write,
                args=(
                    lambda: set_mechanic_timezone(ui.write_engine(), ACTOR, mechanic, chosen, seen=zone),
                    lambda r: f"Timezone set to {r}.",
                ),
            )
    key = draft_key(mechanic, version)
    if key not in st.session_state:
        stored = stored_draft(ui.run_query(calendars.weekly_slots, mechanic_id=mechanic))
        st.session_state[key] = {"seen": stored, "rows": stored, "grid": next_grid_key(mechanic)}
    draft = st.session_state[key]
    pending = st.session_state.get(draft["grid"]) or {}
    if any(pending.get(part) for part in ("edited_rows", "added_rows", "deleted_rows")):
        draft.update(rows=apply_edits(draft["rows"], pending), grid=next_grid_key(mechanic))
    editor_key = draft["grid"]
    st.session_state["calendar_editor_key"] = editor_key  # the grid on screen (the page tests edit it)
    prices = {
        row.session_type: int(row.price_cents)
        for row in ui.run_query(calendars.base_prices).itertuples()
        if pd.notna(row.price_cents)
    }
    shown, problem = checked_draft(draft["rows"], prices)
    changed = changes_between(draft["seen"], draft["rows"])
    rows, seen = slot_rows(draft["rows"]), slot_rows(draft["seen"])
    if editable:
        with st.container(horizontal=True, vertical_alignment="center", gap="small"):
            st.button(
                "Save weekly slots",
                type="primary",
                disabled=not changed or problem is not None,
                icon=":material/save:",
                help="Fix the rows marked ⚠ first." if problem is not None else None,
                on_click=write,
                args=(
                    lambda: save_weekly_slots(ui.write_engine(), ACTOR, mechanic, rows, seen=seen),
                    lambda r: f"Weekly slots saved: {r.created} added, {r.updated} changed, {r.deleted} removed.",
                ),
            )
            st.button(
                "Discard changes",
                disabled=not changed,
                icon=":material/undo:",
                on_click=discard,
                args=(mechanic, version),
            )
            st.caption(f"{ui.plural(changed, 'unsaved change')}." if changed else "No unsaved changes.")
    if problem is not None:
        st.error(
            f"**{ui.escape_markdown(problem)}** Nothing is saved until every row is valid. "
            + " ".join(
                f"Row {position + 1}: {ui.escape_markdown(' '.join(messages))}"
                for position, messages in list(problem.row_errors.items())[:3]
            ),
            icon=":material/error:",
        )
    price_columns = {
        f"{t}_price": st.column_config.TextColumn(
            f"{label('session_type', t)} price",
            disabled=True,
            width=75,
            help=f"Base price {ui.fmt_money(base)} x the multiplier.",
        )
        for t, base in prices.items()
    }
    st.data_editor(
        shown.style.map(lambda text: PROBLEM_STYLE if text else "", subset=["problem"]),
        key=editor_key,
        num_rows="dynamic" if editable else "fixed",
        disabled=not editable,
        hide_index=True,
        column_order=["day", "start", "end", "available", "multiplier", *price_columns, "problem"],
        column_config={
            "day": st.column_config.SelectboxColumn(
                "Day", options=[DAY_NAMES[d] for d in MONDAY_FIRST], required=True, width=90
            ),
            "start": st.column_config.TimeColumn(
                "Start", format="HH:mm", step=dt.timedelta(minutes=15), required=True, width=60
            ),
            "end": st.column_config.TimeColumn(
                "End", format="HH:mm", step=dt.timedelta(minutes=15), required=True, width=60
            ),
            "available": st.column_config.CheckboxColumn(
                "Available", default=True, width=85, help="Unticked: the hours are kept but not bookable."
            ),
            # Text, so any value typed stays visible with its problem instead of being refused or clamped.
            "multiplier": st.column_config.TextColumn(
                "Multiplier",
                default="1.00",
                width=95,
                help=f"From {MULTIPLIER_MIN} to {MULTIPLIER_MAX}, two decimals at most.",
            ),
            **price_columns,
            "problem": st.column_config.TextColumn("Problem", disabled=True, width=300),
        },
    )
    if not prices:
        st.caption("No base prices yet, so no prices beside the multipliers: set them in Base prices.")
    if problem is not None:
        return
    if is_known_timezone(zone):
        session_type = session_type_picker("Preview prices for", "calendar_preview_type")
        now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        current = ui.run_query(
            calendars.bookable,
            mechanic_ids=(mechanic,),
            days=PREVIEW_DAYS,
            session_type=session_type,
            now=now,
            rules=RULES,
        )
        after = (
            ui.run_query(
                calendars.preview,
                loading="the preview",
                mechanic_id=mechanic,
                days=PREVIEW_DAYS,
                session_type=session_type,
                now=now,
                rules=RULES,
                slots=tuple(validate_weekly_rows(rows)),
            )
            if changed
            else current
        )
        st.subheader("Next 14 days as customers will see them", anchor=False)
        preview_table(current, after, today_in(zone))
    else:
        st.warning(
            "No preview: this mechanic's timezone is not an IANA name, so they offer no slots. "
            "Set it under Mechanic's timezone.",
            icon=":material/schedule:",
        )


def seen_override(upcoming: pd.DataFrame, day: dt.date) -> Override | None:
    """The override of ``day`` this view shows, as the calendar edits compare it (None: none)."""
    shown = upcoming[upcoming.date == day]
    if shown.empty:
        return None
    row = shown.iloc[0]
    hours = pd.notna(row.start_time)
    return Override(
        row.date,
        bool(row.is_available),
        row.start_time if hours else None,
        row.end_time if hours else None,
        Decimal(f"{row.price_multiplier:.2f}"),
        row.reason,
    )


def days_off(mechanic: str, editable: bool, version: int) -> None:
    zone = ZONES[mechanic]
    if not is_known_timezone(zone):
        st.warning(
            "This mechanic's timezone is not an IANA name: set it in Weekly slots first.", icon=":material/schedule:"
        )
        return
    today = today_in(zone)
    upcoming = ui.run_query(calendars.overrides, mechanic_id=mechanic, first_day=today)
    st.subheader("Upcoming overrides", anchor=False)
    if upcoming.empty:
        st.caption("None: the weekly hours apply every day.")
    else:
        st.dataframe(
            pd.DataFrame(
                {
                    "Date": [f"{d:%a %d %b %Y}" for d in upcoming.date],
                    "What": [
                        "Time off"
                        if not row.is_available
                        else f"Only {row.start_time:%H:%M}–{row.end_time:%H:%M} at x{row.price_multiplier:.2f}"
                        if pd.notna(row.start_time)
                        else "Weekly hours"
                        for row in upcoming.itertuples()
                    ],
                    "Reason": upcoming.reason,
                }
            ),
            hide_index=True,
        )
    if not editable:
        return
    st.subheader("Add or replace an override", anchor=False)
    left, right = st.columns(2)
    day = left.date_input(
        "Date (mechanic's calendar)",
        value=today + dt.timedelta(days=1),
        min_value=today,
        key=f"override_date_{version}",
    )
    hours = (
        right.radio(
            "Kind",
            ["Time off (whole day)", "Available only in these hours"],
            horizontal=True,
            key=f"override_kind_{version}",
        )
        != "Time off (whole day)"
    )
    start = end = None
    multiplier = "1.00"
    if hours:
        a, b, c = st.columns(3)
        start = a.time_input("From", dt.time(9), step=dt.timedelta(minutes=15), key=f"override_start_{version}")
        end = b.time_input("To", dt.time(17), step=dt.timedelta(minutes=15), key=f"override_end_{version}")
        multiplier = (
            f"{c.number_input('Multiplier', value=1.0, key=f'override_multiplier_{version}', **MULTIPLIER_INPUT):.2f}"
        )
    reason = st.text_input(
        "Reason", max_chars=200, placeholder="Holiday, training, family event…", key=f"override_reason_{version}"
    )
    try:
        override = parse_override(day, is_available=hours, start=start, end=end, multiplier=multiplier, reason=reason)
    except ValidationError as exc:
        st.info(ui.escape_markdown(exc), icon=":material/edit_note:")
        override = None
    if override is not None:
        now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
        after = ui.run_query(
            calendars.preview,
            mechanic_id=mechanic,
            days=PREVIEW_DAYS,
            session_type="video",
            now=now,
            rules=RULES,
            override=override,
        )
        current = ui.run_query(
            calendars.bookable, mechanic_ids=(mechanic,), days=PREVIEW_DAYS, session_type="video", now=now, rules=RULES
        )
        preview_table(current, after, today)
        start_utc, end_utc = calendars.week_bounds(day, zone, days=1)
        held = ui.run_query(calendars.booked_sessions, mechanic_ids=(mechanic,), start=start_utc, end=end_utc)
        if not held.empty:
            st.warning(
                f"{ui.plural(len(held), 'session')} booked that day. They stay booked: contact the "
                "customers if they need to move.",
                icon=":material/event_busy:",
            )
        st.button(
            "Save override",
            type="primary",
            icon=":material/save:",
            on_click=write,
            args=(
                lambda: set_override(
                    ui.write_engine(),
                    ACTOR,
                    mechanic,
                    day,
                    is_available=hours,
                    start=start,
                    end=end,
                    multiplier=multiplier,
                    reason=reason,
                    seen=seen_override(upcoming, day),
                ),
                lambda r: f"Override saved for {r.date:%a %d %b}.",
            ),
        )
    if not upcoming.empty:
        st.subheader("Remove an override", anchor=False)
        removed = st.selectbox(
            "Date", list(upcoming.date), format_func=lambda d: f"{d:%a %d %b %Y}", key=f"override_remove_{version}"
        )
        ui.confirm(
            "Remove override…",
            f"The override of **{removed:%a %d %b %Y}** is deleted and the weekly hours apply that day again.",
            "Remove override",
            write,
            (
                lambda: delete_override(
                    ui.write_engine(), ACTOR, mechanic, removed, seen=seen_override(upcoming, removed)
                ),
                lambda r: "Override removed: the weekly hours apply again.",
            ),
            key=f"override_remove_button_{version}",
            icon=":material/delete:",
        )


def peak_pricing(mechanic: str, editable: bool, version: int) -> None:
    st.caption(
        "Sets one multiplier on a window of the week for several mechanics at once, on each mechanic's "
        "own clock. Slots that stick out of the window are split; hours without a slot stay closed."
    )
    everyone = st.toggle("All active mechanics", key=f"peak_all_{version}")
    chosen = (
        list(NAMES)
        if everyone
        else st.multiselect(
            "Mechanics",
            list(NAMES),
            default=[] if mechanic == ALL else [mechanic],
            format_func=mechanic_label,
            key=f"peak_mechanics_{version}",
        )
    )
    days = st.segmented_control(
        "Days",
        MONDAY_FIRST,
        selection_mode="multi",
        default=MONDAY_FIRST[:5],
        format_func=lambda d: DAY_NAMES[d][:3],
        key=f"peak_days_{version}",
    )
    a, b, c = st.columns(3)
    start = a.time_input("From", dt.time(17), step=dt.timedelta(minutes=15), key=f"peak_start_{version}")
    end = b.time_input("To", dt.time(20), step=dt.timedelta(minutes=15), key=f"peak_end_{version}")
    multiplier = c.number_input("Multiplier", value=1.5, key=f"peak_multiplier_{version}", **MULTIPLIER_INPUT)
    if not chosen or not days or start >= end:
        st.info("Choose mechanics, at least one day, and a start before the end.", icon=":material/edit_note:")
        return
    value = Decimal(f"{multiplier:.2f}")
    preview = ui.run_query(
        calendars.peak_preview,
        mechanic_ids=tuple(chosen),
        days=tuple(sorted(days)),
        start=start,
        end=end,
        multiplier=value,
    )
    repriced = preview[preview.slots_repriced > 0]
    st.markdown(
        f"**{repriced.slots_repriced.sum():,} slots** of **{len(repriced):,} of {len(preview):,} "
        f"mechanics** will cost x{value} ({repriced.hours_repriced.sum():,.1f} hours a week); "
        f"{repriced.slots_split_off.sum():,} new slots keep the old multiplier where slots are split."
    )
    if not repriced.empty:
        st.dataframe(
            repriced.assign(
                display_name=[
                    with_name(mechanic_url(i), n) for i, n in zip(repriced.mechanic_id, repriced.display_name)
                ]
            )[["display_name", "slots_repriced", "hours_repriced", "slots_split_off"]],
            hide_index=True,
            column_config={
                "display_name": name_column("Mechanic", help="Opens their profile.", pinned=True),
                "slots_repriced": "Slots repriced",
                "hours_repriced": st.column_config.NumberColumn("Hours a week", format="%.1f"),
                "slots_split_off": "Slots split off",
            },
        )
    if editable:
        st.button(
            f"Apply x{value} to {len(repriced):,} mechanics",
            type="primary",
            disabled=repriced.empty,
            icon=":material/bolt:",
            on_click=write,
            args=(
                lambda: set_peak_multiplier(ui.write_engine(), ACTOR, chosen, days, start, end, value),
                lambda r: f"Peak multiplier set: {r.updated} slots repriced, {r.created} split off.",
            ),
        )


def base_prices(editable: bool, version: int) -> None:
    st.caption(
        "A slot's price is the base price times its multiplier, to the cent. "
        "Sessions already booked keep the price they were booked at."
    )
    prices = ui.run_query(calendars.base_prices)
    for column, row in zip(st.columns(len(prices)), prices.itertuples()):
        with column.container(border=True):
            current = None if pd.isna(row.price_cents) else int(row.price_cents)
            st.metric(
                f"{label('session_type', row.session_type)} session", ui.fmt_money(current) if current else "Not set"
            )
            if current:
                st.caption(
                    f"Set by {ui.escape_markdown(who_label(row.updated_by or 'platform'))} on "
                    f"{ui.fmt_datetime(row.updated_at, TZ, date_only=True)}"
                )
            if editable:
                key = f"price_{row.session_type}_{version}"
                st.number_input(
                    "New price (USD)",
                    min_value=0.0,
                    max_value=1000.0,
                    step=1.0,
                    format="%.2f",
                    value=(current or 0) / 100,
                    key=key,
                )
                st.button(
                    "Save price",
                    key=f"save_price_{row.session_type}",
                    on_click=write,
                    args=(
                        lambda t=row.session_type, k=key, seen=current: set_base_price(
                            ui.write_engine(), ACTOR, t, f"{st.session_state[k]:.2f}", seen_cents=seen
                        ),
                        lambda cents, t=row.session_type: (
                            f"{label('session_type', t)} base price set to {ui.fmt_money(cents)}."
                        ),
                    ),
                )


def who_label(email: str) -> str:
    """Staff by their email; the platform's own writers (a migration, the intake job) by their label."""
    return label("actor", email) if email in LABELS["actor"] else email


def audit_trail(mechanic: str, tz: str) -> None:
    trail = ui.run_query(calendars.pricing_audit, mechanic_id=None if mechanic == ALL else mechanic)
    if trail.empty:
        ui.empty_state("No calendar or price changes yet.", "Changes made here are listed with who made them.")
        return
    subjects = [
        with_name(mechanic_url(entity), subject)
        if kind == CALENDAR
        else with_name(page_url("calendars.py"), f"{label('session_type', subject)} sessions")
        for kind, entity, subject in zip(trail.entity_type, trail.entity_id, trail.subject)
    ]
    notes = trail.reason.fillna("")
    st.dataframe(
        pd.DataFrame(
            {
                f"When ({tz})": local_times(trail.created_at, tz),
                "Who": [who_label(email) for email in trail.actor_email],
                "What": [action_label(a) for a in trail.action],
                "Mechanic or price": subjects,
                "Change": trail.change,
                "Note": notes,
            }
        ),
        hide_index=True,
        column_order=None if notes.any() else [f"When ({tz})", "Who", "What", "Mechanic or price", "Change"],
        column_config={
            f"When ({tz})": st.column_config.DatetimeColumn(format="D MMM YYYY, HH:mm:ss", pinned=True, width=145),
            "Who": st.column_config.TextColumn(width=170),
            "What": st.column_config.TextColumn(width=140),
            "Mechanic or price": name_column("Mechanic or price", help="A mechanic's name opens their profile."),
            "Change": st.column_config.TextColumn(width=240),
            "Note": st.column_config.TextColumn(width=100),
        },
    )
    ui.scope_caption(ui.ALL_TIME, f"The latest {len(trail):,} change{'' if len(trail) == 1 else 's'}, newest first.")


# --- the page -----------------------------------------------------------------------------

ui.page_header(
    "Mechanic calendars & pricing",
    "When each mechanic can be booked and at what price; changes are previewed before they are saved.",
)
ACTOR = ui.actor()
EDITABLE = ACTOR.role in EDITOR_ROLES
TZ = ui.period().tz
RULES = SlotRules.from_settings(ui.settings())

if not EDITABLE:
    st.info(
        f"Read-only: only {' and '.join(label('role', r).lower() for r in EDITOR_ROLES)} staff can change "
        "calendars and prices.",
        icon=":material/visibility:",
    )

mechanics = ui.run_query(calendars.mechanics)
if mechanics.empty:
    ui.empty_state("There are no active mechanics.", "Mechanics appear here once the platform has activated them.")
    st.stop()
NAMES = dict(zip(mechanics.mechanic_id, mechanics.display_name))
ZONES = dict(zip(mechanics.mechanic_id, mechanics.timezone))
unknown = [NAMES[i] for i in NAMES if not is_known_timezone(ZONES[i])]
if unknown:
    st.warning(
        f"{ui.plural(len(unknown), 'mechanic')} with a timezone that is not an IANA name offer no slots "
        f"until it is fixed: {ui.escape_markdown(', '.join(unknown[:10]))}.",
        icon=":material/schedule:",
    )
# A link opens one mechanic's calendar (``?mechanic=<id>``) and a view (``?view=heatmaps``); the
# choices are kept in the URL.
if "calendar_mechanic" not in st.session_state and st.query_params.get("mechanic") in NAMES:
    st.session_state["calendar_mechanic"] = st.query_params["mechanic"]
if "calendar_view" not in st.session_state and st.query_params.get("view") in VIEW_PARAMS:
    st.session_state["calendar_view"] = VIEW_PARAMS[st.query_params["view"]]


@ui.fragment
def calendar() -> None:
    """The mechanic, week and view pickers and the chosen view: changing them reruns only this part."""
    ui.write_notice()
    mechanic = st.selectbox("Mechanic", [ALL, *NAMES], format_func=mechanic_label, key="calendar_mechanic", width=420)
    if mechanic == ALL:
        st.query_params.pop("mechanic", None)
    elif st.query_params.get("mechanic") != mechanic:
        st.query_params["mechanic"] = mechanic
    view = st.segmented_control("View", VIEWS, default="Week", required=True, key="calendar_view")
    wanted = next(param for param, name in VIEW_PARAMS.items() if name == view)
    if st.query_params.get("view") != wanted:
        st.query_params["view"] = wanted
    week_start = None
    if view in ("Week", "Heatmaps"):
        week_start = week_picker()
        ui.scope_caption(
            f"week of {week_start:%a %d %b} – {week_start + dt.timedelta(days=6):%a %d %b %Y} "
            f"in {ui.escape_markdown(TZ)}",
            f"[Open {ui.escape_markdown(NAMES[mechanic])}'s profile]({mechanic_url(mechanic)})"
            if mechanic != ALL
            else None,
        )
    version = ui.data_version()
    if view == "Week":
        week_view(mechanic, week_start, TZ)
    elif view == "Heatmaps":
        heatmaps(mechanic, week_start, TZ)
    elif view == "Peak pricing":
        peak_pricing(mechanic, EDITABLE, version)
    elif view == "Base prices":
        base_prices(EDITABLE, version)
    elif view == "Audit trail":
        audit_trail(mechanic, TZ)
    elif mechanic == ALL:
        ui.empty_state(
            "Pick a mechanic to see their weekly slots and days off.",
            "Choose one in Mechanic above; Peak pricing and Base prices work across mechanics.",
        )
    elif view == "Weekly slots":
        weekly_slots(mechanic, EDITABLE)
    else:
        days_off(mechanic, EDITABLE, version)


calendar()
