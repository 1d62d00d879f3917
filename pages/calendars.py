"""Mechanic calendars & pricing: weekly availability, days off, price multipliers and base
prices, with what customers can book.

Times are shown in the sidebar's display timezone, with the mechanic's own wall clock
beside them. Managers and admins edit; anyone else reads. Every change goes through
``dashboard.domain.calendars.edits`` (role check on the server, validation, one transaction,
audit row) and is previewed first as the bookable slots and prices of the next 14 days.
"""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from dashboard.core.period import timezones, today_in
from dashboard.core.schema import SESSION_TYPES
from dashboard.domain.calendars.edits import (
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
    validate_weekly_rows,
)
from dashboard.ui import components as ui
from queries import calendars

ALL = "all"
VIEWS = ("Week", "Heatmaps", "Weekly slots", "Days off", "Peak pricing", "Base prices", "Audit trail")
PREVIEW_DAYS = 14
TIMELINE_MECHANICS = 25
MONDAY_FIRST = (1, 2, 3, 4, 5, 6, 0)
DAY0 = dt.datetime(2000, 1, 3)  # any Monday: the week view draws every day on it
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


def _hhmm(value) -> str:
    return f"{value:%H:%M}" if isinstance(value, dt.time) else "?"


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


# --- views ------------------------------------------------------------------------------


def timeline_rows(frame: pd.DataFrame, by_day: bool) -> pd.DataFrame:
    """Bars for px.timeline from start/end in the display timezone; by day: cut at midnight and
    drawn on DAY0 with one row per day, else one row per mechanic over the week."""
    rows = []
    for row in frame.to_dict("records"):
        start, end = row["start"], row["end"]
        while start < end:
            midnight = dt.datetime.combine(start.date() + dt.timedelta(days=1), dt.time())
            cut = min(end, midnight) if by_day else end
            offset = dt.datetime.combine(start.date(), dt.time()) - DAY0 if by_day else dt.timedelta(0)
            rows.append(
                {
                    **row,
                    "row": f"{start:%a %d %b}" if by_day else row["display_name"],
                    "start": start - offset,
                    "end": cut - offset,
                }
            )
            start = cut
    return pd.DataFrame(rows)


def week_view(mechanic: str, week_start: dt.date, tz: str) -> None:
    start, end = calendars.week_bounds(week_start, tz)
    if mechanic == ALL:
        shown = ui.run_query(calendars.busiest_mechanics, start=start, end=end, limit=TIMELINE_MECHANICS)
        ids = tuple(shown.mechanic_id)
        st.caption(
            (
                "Every active mechanic"
                if len(ids) == len(NAMES)
                else f"The {len(ids)} busiest of {len(NAMES):,} active mechanics"
            )
            + " this week, one row each. Pick a mechanic above to see their week day by day."
        )
    else:
        ids = (mechanic,)
    windows = ui.run_query(calendars.availability, loading="availability", mechanic_ids=ids, start=start, end=end)
    sessions = ui.run_query(calendars.booked_sessions, mechanic_ids=ids, start=start, end=end)
    if windows.empty and sessions.empty:
        ui.empty_state(
            "No availability and no sessions this week.",
            "Pick another week, or add weekly slots in the Weekly slots view.",
        )
        return
    by_day = mechanic != ALL
    bars = pd.DataFrame(
        {
            "display_name": windows.mechanic_id.map(NAMES),
            "start": local_times(windows.start_utc, tz),
            "end": local_times(windows.end_utc, tz),
            "multiplier": windows.multiplier,
            "detail": [
                f"{row.source} hours · x{row.multiplier:.2f} · {_their_clock(row.start_utc, row.end_utc, row.timezone)}"
                for row in windows.itertuples()
            ],
        }
    )
    length = dt.timedelta(minutes=RULES.session_minutes)
    booked = pd.DataFrame(
        {
            "display_name": sessions.display_name,
            "start": local_times(sessions.scheduled_at, tz),
            "end": local_times(sessions.scheduled_at + length, tz),
            "detail": [
                f"{row.session_type} session · {row.status} · {ui.fmt_money(row.price_cents)} · "
                f"{_their_clock(row.scheduled_at, row.scheduled_at + length, ZONES[row.mechanic_id])}"
                for row in sessions.itertuples()
            ],
        }
    )
    fig = (
        px.timeline(
            timeline_rows(bars, by_day),
            x_start="start",
            x_end="end",
            y="row",
            color="multiplier",
            color_continuous_scale="Oranges",
            range_color=(0.5, 2.0),
            custom_data=["detail"],
        )
        if not bars.empty
        else go.Figure()
    )
    if not booked.empty:
        session_fig = px.timeline(
            timeline_rows(booked, by_day), x_start="start", x_end="end", y="row", custom_data=["detail"]
        )
        session_fig.update_traces(marker_color="#1F2937", width=0.35, name="Booked session", showlegend=True)
        fig.add_traces(session_fig.data)
    fig.update_traces(hovertemplate="%{customdata[0]}<extra></extra>")
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(type="date")
    if by_day:
        labels = [f"{week_start + dt.timedelta(days=n):%a %d %b}" for n in range(7)]
        fig.update_xaxes(range=[DAY0, DAY0 + dt.timedelta(days=1)], tickformat="%H:%M")
    else:
        labels = [NAMES[i] for i in ids]
    fig.update_yaxes(categoryorder="array", categoryarray=labels[::-1], range=[-0.5, len(labels) - 0.5])
    fig.update_layout(
        height=160 + 36 * len(labels),
        coloraxis_colorbar_title_text="Price<br>multiplier (×)",
        legend=dict(yanchor="bottom", y=1.0, xanchor="right", x=1),
    )
    ui.chart(
        fig,
        title="Availability (coloured by price multiplier) and booked sessions",
        x_title=f"{'Time of day' if by_day else 'Day'} ({tz})",
        y_title="Day" if by_day else "Mechanic",
    )
    if by_day and not sessions.empty:
        clock = st.column_config.DatetimeColumn(format="ddd D MMM, HH:mm")
        st.dataframe(
            pd.DataFrame(
                {
                    f"Start ({tz})": local_times(sessions.scheduled_at, tz),
                    f"Their clock ({ZONES[mechanic]})": local_times(sessions.scheduled_at, ZONES[mechanic]),
                    "Type": sessions.session_type,
                    "Status": sessions.status,
                    "Price": [ui.fmt_money(c) for c in sessions.price_cents],
                }
            ),
            hide_index=True,
            column_config={f"Start ({tz})": clock, f"Their clock ({ZONES[mechanic]})": clock},
        )


def _their_clock(start, end, zone: str) -> str:
    """A stretch of time on the mechanic's own clock, e.g. "their time Mon 14:30–22:30 (Asia/Kolkata)"."""
    if not is_known_timezone(zone):
        return f"their timezone {zone!r} is not valid"
    tz = ZoneInfo(zone)
    return f"their time {start.astimezone(tz):%a %H:%M}–{end.astimezone(tz):%H:%M} ({zone})"


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
    labels = [f"{day:%a %d %b}" for day in grid.local_date]
    for column, title, scale, fmt, bounds in (
        ("multiplier", "Price multiplier by hour (mean over open mechanics)", "Oranges", ".2f", (0.5, 2.0)),
        ("utilisation", "Utilisation by hour (booked / available)", "Teal", ".0%", (0, 1)),
    ):
        table = grid.assign(day=labels).pivot(index="day", columns="hour", values=column)
        table = table.reindex(list(dict.fromkeys(labels)))
        fig = px.imshow(
            table, text_auto=fmt, aspect="auto", color_continuous_scale=scale, zmin=bounds[0], zmax=bounds[1]
        )
        fig.update_traces(hovertemplate="%{y} %{x}:00 · %{z:" + fmt + "}<extra></extra>")
        fig.update_xaxes(dtick=1)
        ui.chart(fig, title=title, x_title=f"Hour of day ({tz})", y_title="Day")
    st.caption(
        "Empty cells have no availability. Hours are in the display timezone; each mechanic's hours "
        "are set on their own clock."
    )


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


def weekly_slots(mechanic: str, editable: bool, version: int) -> None:
    zone = ZONES[mechanic]
    st.caption(
        f"Hours are {ui.escape_markdown(NAMES[mechanic])}'s own clock ({ui.escape_markdown(zone)}). "
        "A slot may not cross midnight: split it. Touching slots join up, so splitting a slot into price "
        "bands never removes a start time; a session is priced by the slot it starts in."
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
    slots = ui.run_query(calendars.weekly_slots, mechanic_id=mechanic)
    table = pd.DataFrame(
        {
            "slot_id": slots.slot_id,
            "day": [DAY_NAMES[d] for d in slots.day_of_week],
            "start": slots.start_time,
            "end": slots.end_time,
            "available": slots.is_available,
            "multiplier": slots.price_multiplier,
        }
    )
    key = f"slots_{mechanic}_{version}"
    edited = st.data_editor(
        table,
        key=key,
        num_rows="dynamic" if editable else "fixed",
        disabled=not editable,
        hide_index=True,
        column_order=["day", "start", "end", "available", "multiplier"],
        column_config={
            "day": st.column_config.SelectboxColumn("Day", options=[DAY_NAMES[d] for d in MONDAY_FIRST], required=True),
            "start": st.column_config.TimeColumn("Start", format="HH:mm", step=dt.timedelta(minutes=15), required=True),
            "end": st.column_config.TimeColumn("End", format="HH:mm", step=dt.timedelta(minutes=15), required=True),
            "available": st.column_config.CheckboxColumn(
                "Available", default=True, help="Unticked: the hours are kept but not bookable."
            ),
            # No min/max here: an out-of-range value gets the validation message below instead of a silent clamp.
            "multiplier": st.column_config.NumberColumn(
                "Multiplier",
                default=1.0,
                step=0.01,
                format="%.2f",
                help=f"Price = base price x multiplier ({MULTIPLIER_MIN}-{MULTIPLIER_MAX}).",
            ),
        },
    )
    rows, seen = slot_rows(edited), slot_rows(table)
    state = st.session_state.get(key, {})
    changed = any(state.get(part) for part in ("edited_rows", "added_rows", "deleted_rows"))
    try:
        new = tuple(validate_weekly_rows(rows))
    except ValidationError as exc:
        st.error(f"**{ui.escape_markdown(exc)}** Nothing is saved until every row is valid.", icon=":material/error:")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "Row": position + 1,
                        "Day": rows[position]["day_of_week"],
                        "Hours": f"{_hhmm(rows[position]['start_time'])}–{_hhmm(rows[position]['end_time'])}",
                        "Problem": " ".join(messages),
                    }
                    for position, messages in exc.row_errors.items()
                ]
            ),
            hide_index=True,
        )
        return
    if is_known_timezone(zone):
        session_type = st.segmented_control(
            "Preview prices for", SESSION_TYPES, default="video", required=True, key="calendar_preview_type"
        )
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
                slots=new,
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
    if editable:
        st.button(
            "Save weekly slots",
            type="primary",
            disabled=not changed,
            icon=":material/save:",
            on_click=write,
            args=(
                lambda: save_weekly_slots(ui.write_engine(), ACTOR, mechanic, rows, seen=seen),
                lambda r: f"Weekly slots saved: {r.created} added, {r.updated} changed, {r.deleted} removed.",
            ),
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
        st.info(str(exc), icon=":material/edit_note:")
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
            repriced[["display_name", "slots_repriced", "hours_repriced", "slots_split_off"]],
            hide_index=True,
            column_config={
                "display_name": "Mechanic",
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
        "A slot's price is the base price x its multiplier, rounded half up to whole cents. "
        "Sessions already booked keep the price they were booked at."
    )
    prices = ui.run_query(calendars.base_prices)
    for column, row in zip(st.columns(len(prices)), prices.itertuples()):
        with column.container(border=True):
            current = None if pd.isna(row.price_cents) else int(row.price_cents)
            st.metric(f"{row.session_type.capitalize()} session", ui.fmt_money(current) if current else "Not set")
            if current:
                st.caption(
                    f"Set by {ui.escape_markdown(row.updated_by or 'the platform')} on "
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
                        lambda cents, t=row.session_type: f"{t.capitalize()} base price set to {ui.fmt_money(cents)}.",
                    ),
                )


def audit_trail(mechanic: str, tz: str) -> None:
    trail = ui.run_query(calendars.pricing_audit, mechanic_id=None if mechanic == ALL else mechanic)
    if trail.empty:
        ui.empty_state("No calendar or price changes yet.", "Changes made here are listed with who made them.")
        return
    st.dataframe(
        pd.DataFrame(
            {
                f"When ({tz})": local_times(trail.created_at, tz),
                "Who": trail.actor_email,
                "Role": trail.actor_role,
                "Action": trail.action,
                "Mechanic or type": trail.subject,
                "Change": trail.change,
                "Note": trail.reason.fillna(""),
            }
        ),
        hide_index=True,
        column_config={f"When ({tz})": st.column_config.DatetimeColumn(format="D MMM YYYY, HH:mm")},
    )
    st.caption(f"The latest {len(trail):,} change{'' if len(trail) == 1 else 's'}, newest first.")


# --- the page -----------------------------------------------------------------------------

ui.page_header(
    "Mechanic calendars & pricing",
    "Who is available when, at what price, and what customers can book: edit weekly hours, "
    "days off and multipliers, and preview the next 14 days before saving.",
)
ACTOR = ui.actor()
EDITABLE = ACTOR.role in EDITOR_ROLES
TZ = ui.period().tz
RULES = SlotRules.from_settings(ui.settings())

ui.write_notice()
if not EDITABLE:
    st.info(
        f"Read-only: only {' and '.join(EDITOR_ROLES)} staff can change calendars and prices.",
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

left, right = st.columns([3, 1])
mechanic = left.selectbox("Mechanic", [ALL, *NAMES], format_func=mechanic_label, key="calendar_mechanic")
week_of = right.date_input("Week of", value=today_in(TZ), key="calendar_week")
week_start = week_of - dt.timedelta(days=week_of.weekday())
view = st.segmented_control("View", VIEWS, default="Week", required=True, key="calendar_view")
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
    weekly_slots(mechanic, EDITABLE, version)
else:
    days_off(mechanic, EDITABLE, version)
