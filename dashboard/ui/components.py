"""Shared building blocks of every page: header, KPIs, filter bar, badges, star
ratings, empty and error states, confirmations, charts in the brand colours,
cached queries with a spinner, formatters, and the request context.

A page reads its context, runs queries and renders::

    from dashboard.ui import components as ui
    from queries import reviews

    ui.page_header("Review moderation", "Publish or hide the reviews customers wrote.")
    queue = ui.run_query(reviews.moderation_queue, period=ui.period())
    if queue.empty:
        ui.empty_state("No reviews are waiting.", "Widen the date range to see older reviews.")

Writes run in a button callback decorated with ``write_action``, through ``run_write``:
it runs the write (with ``write_engine()`` and ``actor()``), refreshes the cached queries
and toasts what was done on the rerun the click causes (``show_toasts``), or keeps the
refusal's message for ``write_notice()``, which the page shows near its top on that rerun.
A part of a page that reruns on its own is a ``fragment``; a write clicked in it reruns the
whole page. Tabs build only the open one (``tabbed``).
Text from users (reviews, names, emails) goes through ``escape_markdown`` before
it reaches any Markdown, or is shown with ``st.text``/``st.dataframe``.
"""

from __future__ import annotations

import contextlib
import functools
import html
import math
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import sqlalchemy as sa
import streamlit as st
from sqlalchemy.engine import Engine

from dashboard.core.auth import Actor, vouch_for
from dashboard.core.db import explain_failure, make_engine
from dashboard.core.errors import ChangedMeanwhile, DatabaseUnavailable, PermissionDenied, Refused
from dashboard.core.period import Period, incomplete_buckets, today_in
from dashboard.core.settings import Settings
from dashboard.ui import access
from dashboard.ui.paging import Page

QUERY_TTL_SECONDS = 300
CURRENCY = "$"
NO_CHANGE = "no change"

# Brand: "pit-lane orange" first, then colours that stay apart for colour-blind viewers.
BRAND_COLORS = ["#C2410C", "#0F766E", "#1D4ED8", "#A16207", "#7E22CE", "#475569"]
FONT = '"Source Sans", sans-serif'  # the font Streamlit ships and the theme uses
# Numbers on axes as in tiles: "2,560", never "2.56k" or "2560".
_AXIS_NUMBERS = dict(automargin=True, title=dict(standoff=12), separatethousands=True, exponentformat="none")
pio.templates["pitwall"] = go.layout.Template(
    layout=dict(
        colorway=BRAND_COLORS,
        font=dict(family=FONT, size=14, color="#1F2937"),
        title=dict(font=dict(size=18), x=0, xanchor="left"),
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        margin=dict(l=16, r=16, t=56, b=16),
        xaxis=dict(showgrid=False, linecolor="#CBD5E1", ticks="outside", tickcolor="#CBD5E1", **_AXIS_NUMBERS),
        yaxis=dict(gridcolor="#E5E7EB", zerolinecolor="#CBD5E1", rangemode="tozero", **_AXIS_NUMBERS),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
        hoverlabel=dict(font=dict(family=FONT)),
        coloraxis=dict(colorbar=dict(separatethousands=True, exponentformat="none")),
    )
)
pio.templates.default = "pitwall"

# The dark theme's chart colours: the brand colours lighter (as chartCategoricalColors of
# [theme.dark] in .streamlit/config.toml), text and lines that read on the dark background.
DARK_COLORS = ["#F97316", "#2DD4BF", "#60A5FA", "#FACC15", "#C084FC", "#94A3B8"]
DARK_CHART = dict(
    colorway=DARK_COLORS,
    font=dict(color="#E5E7EB"),
    title=dict(font=dict(color="#E5E7EB")),
    xaxis=dict(linecolor="#4B5563", tickcolor="#4B5563", gridcolor="#374151", zerolinecolor="#4B5563"),
    yaxis=dict(linecolor="#4B5563", tickcolor="#4B5563", gridcolor="#374151", zerolinecolor="#4B5563"),
)

_CONTEXT_KEY = "_pitwall_context"


# --- the request context (set by dashboard/app.py before the page runs) ----------


@dataclass(frozen=True)
class Context:
    settings: Settings
    actor: Actor
    period: Period


def set_context(context: Context) -> None:
    """Called by the app before each full run of a page (not before a fragment's own run)."""
    st.session_state[_CONTEXT_KEY] = context
    st.session_state[_WRITES_DRAWN_KEY] = st.session_state.get(_WRITES_KEY, 0)


def _context() -> Context:
    return st.session_state[_CONTEXT_KEY]


def actor() -> Actor:
    """The signed-in staff member (or the demo/anonymous admin); pass it to every write."""
    return _context().actor


def settings() -> Settings:
    """The settings, read once per run by the app; the typed groups are built from them
    (``SlotRules.from_settings(ui.settings())``)."""
    return _context().settings


def period() -> Period:
    """The period chosen in the sidebar: whole days in the display timezone."""
    return _context().period


@st.cache_resource(show_spinner=False)
def engine_for(url: str) -> Engine:
    """One engine (and connection pool) per database URL for the whole server."""
    return make_engine(url)


def write_engine() -> Engine:
    """The primary database, for writes. Every write re-reads the signed-in staff member's
    role from ``staff_roles``; the actor who comes from configuration instead (the embedded
    demo's, or the anonymous admin where allowed) is vouched for on this engine."""
    context = _context()
    engine = engine_for(context.settings.database_url)
    if not access.login_configured(context.settings) and context.actor == access.actor_without_login(context.settings):
        return vouch_for(engine, context.actor)
    return engine


# --- queries -----------------------------------------------------------------------


@st.cache_data(ttl=QUERY_TTL_SECONDS, max_entries=512, show_spinner=False)
def _cached_query(url: str, name: str, filters: dict, _fn: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    try:
        with engine_for(url).connect() as conn:
            return _fn(conn, **filters)
    except sa.exc.OperationalError as exc:
        raise DatabaseUnavailable(explain_failure(exc, url)) from exc


def run_query(fn: Callable[..., pd.DataFrame], loading: str = "the data", **filters) -> pd.DataFrame:
    """Run ``fn(conn, **filters)`` from ``queries/`` on the read engine.

    ``fn`` is a module-level function (its module and name key the cache, so
    no lambdas). Results are cached for ``QUERY_TTL_SECONDS`` per database,
    function and filters (dates, strings, numbers, tuples, UUIDs, a Period).
    A query that takes longer than half a second shows "Loading ``loading``…"
    with the time spent. A database that stops answering raises
    ``DatabaseUnavailable``, which the app shows as its error page.
    """
    url = _context().settings.query_url
    name = f"{fn.__module__}.{fn.__qualname__}"
    if _recently_cached(url, name, filters):  # a warm rerun: no spinner (an element, a timer thread) per query
        return _cached_query(url, name, filters, _fn=fn)
    with st.spinner(f"Loading {loading}…", show_time=True):
        return _cached_query(url, name, filters, _fn=fn)


_SEEN: dict[tuple, float] = {}  # (url, query, filters) -> when this process last ran it through the cache


def _recently_cached(url: str, name: str, filters: dict) -> bool:
    """Whether the query's result is in the cache for certain (run within its time to live, in this
    process); noted for the next call. A key that cannot be told apart cheaply counts as not cached."""
    try:
        key = (url, name, tuple(sorted((k, repr(v)) for k, v in filters.items())))
    except Exception:
        return False
    now = time.monotonic()
    seen = _SEEN.get(key)
    if len(_SEEN) > 4096:
        _SEEN.clear()
    _SEEN[key] = now if seen is None or now - seen > QUERY_TTL_SECONDS * 0.9 else seen
    return seen is not None and now - seen < QUERY_TTL_SECONDS * 0.9


def query_later(fn: Callable[..., pd.DataFrame], **filters) -> Callable[[], pd.DataFrame]:
    """``run_query`` for data made when a button is clicked (``st.download_button`` with a
    callable): that runs outside the page's run, without its context, so the database is
    chosen now."""
    url = _context().settings.query_url
    return lambda: _cached_query(url, f"{fn.__module__}.{fn.__qualname__}", filters, _fn=fn)


def clear_query_cache() -> None:
    """Forget every cached query result; call after a write commits."""
    _cached_query.clear()
    _SEEN.clear()


# --- writes ------------------------------------------------------------------------

UNREACHABLE_ERRORS = (DatabaseUnavailable, sa.exc.OperationalError, sa.exc.InterfaceError)
_WRITE_FAILED_KEY = "_pitwall_write_failed"
_WRITES_KEY = "_pitwall_writes"  # how many write callbacks this session ran
_WRITES_DRAWN_KEY = "_pitwall_writes_drawn"  # ... when the page last ran in full
_TOASTS_KEY = "_pitwall_toasts"  # (text, icon) of the writes done since the last toast


def write_action(callback: Callable) -> Callable:
    """Decorate a button callback that writes. Callbacks run before the app's script, where
    no error page can catch them: a database that does not answer would show a traceback.
    Decorated, the failed write (one transaction, rolled back) is reported by the next
    ``write_failure()`` instead."""

    @functools.wraps(callback)
    def run(*args, **kwargs):
        st.session_state[_WRITES_KEY] = st.session_state.get(_WRITES_KEY, 0) + 1
        try:
            return callback(*args, **kwargs)
        except UNREACHABLE_ERRORS as exc:
            detail = explain_failure(exc, _context().settings.database_url)
            print(f"pitwall: a change was not saved: {detail}", file=sys.stderr)
            st.session_state[_WRITE_FAILED_KEY] = detail

    return run


def show_toasts() -> None:
    """Toast what the writes clicked last did (``run_write`` keeps it: a toast made in a callback
    is lost when the click reruns the whole page from a ``fragment``). The app calls this before
    each page, and each ``fragment`` before its part."""
    for text, icon in st.session_state.pop(_TOASTS_KEY, []):
        st.toast(text, icon=icon)


def fragment(part: Callable) -> Callable:
    """``st.fragment`` for a part of a page: a widget in it reruns only that part (not the sidebar,
    nor the rest of the page). A write clicked in it (a ``write_action`` callback, done or refused)
    reruns the whole page instead, so the figures, notices and toasts outside the part follow."""

    @st.fragment
    @functools.wraps(part)
    def run(*args, **kwargs):
        state = st.session_state
        if _WRITES_DRAWN_KEY in state and state[_WRITES_DRAWN_KEY] != state.get(_WRITES_KEY, 0):
            st.rerun()
        show_toasts()
        return part(*args, **kwargs)

    return run


def write_failure() -> str | None:
    """Why the change clicked last was not saved (once), or None."""
    return st.session_state.pop(_WRITE_FAILED_KEY, None)


T = TypeVar("T")
WRITE_REFUSALS = (Refused, PermissionDenied)
_NOTICE_KEY = "_pitwall_write_notice"
_VERSION_KEY = "_pitwall_data_version"


def run_write(
    write: Callable[[], T],
    done: str | Callable[[T], str] | None = None,
    *,
    icon: str = ":material/check_circle:",
    refusals: tuple[type[Exception], ...] = (),
) -> T | None:
    """Run ``write`` from a button callback. Done: the cached queries are refreshed and
    ``done`` (text, or made from the result) is toasted; returns the result. Refused (the
    error family, PermissionDenied or one of ``refusals``): nothing was written, the message
    waits for ``write_notice()``; returns None. A write refused because the view was out of
    date (ChangedMeanwhile) refreshes the queries too, so the rerun shows what is stored now."""
    try:
        result = write()
    except (*WRITE_REFUSALS, *refusals) as exc:
        keep_notice(str(exc), getattr(exc, "row_errors", None))
        if isinstance(exc, ChangedMeanwhile):
            _refresh()
        return None
    _refresh()
    if done is not None:
        st.session_state.setdefault(_TOASTS_KEY, []).append((done(result) if callable(done) else done, icon))
    return result


def _refresh() -> None:
    """Every cached query read again, and ``data_version()`` moved on."""
    clear_query_cache()
    st.session_state[_VERSION_KEY] = data_version() + 1


def data_version() -> int:
    """Moves on whenever a write refreshed the queries: widgets keyed by it start again from what is stored."""
    return st.session_state.get(_VERSION_KEY, 0)


def keep_notice(message: str, row_errors: dict[int, list[str]] | None = None) -> None:
    """Keep why a write was refused (and each row's problems) for ``write_notice()``."""
    st.session_state[_NOTICE_KEY] = (message, dict(row_errors or {}))


def write_notice(show: Callable = st.error) -> None:
    """Show, once, why the last write was refused: its message, then each row's problems."""
    notice = st.session_state.pop(_NOTICE_KEY, None)
    if notice:
        message, row_errors = notice
        show(escape_markdown(message), icon=":material/error:")
        for position, messages in row_errors.items():
            st.caption(f"Row {position + 1}: {escape_markdown(' '.join(messages))}")


# --- formatting --------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


# Streamlit's Markdown turns a bare www.…, http(s)://… or name@host into a live link even
# when every character is escaped (the link is found after the escapes are read). A word
# joiner (U+2060, invisible) inside each such pattern keeps the text as it reads, unlinked.
_WORD_JOINER = "\u2060"
_AUTOLINK_START = re.compile(r"(?i)(www)(?=\.)|(:)(?=//)|(@)")


def escape_markdown(text: object) -> str:
    """``text`` with every Markdown (and Streamlit directive) character escaped, and the
    addresses Markdown would link broken up invisibly: user text stays inert."""
    unlinked = _AUTOLINK_START.sub(lambda m: m.group(0) + _WORD_JOINER, str(text))
    return _MARKDOWN_SPECIAL.sub(r"\\\1", unlinked)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_count(value) -> str:
    return "—" if _missing(value) else f"{int(value):,}"


def fmt_money(cents) -> str:
    """Integer cents as currency, e.g. ``$1,234.50``."""
    return "—" if _missing(cents) else f"{'-' if cents < 0 else ''}{CURRENCY}{abs(cents) / 100:,.2f}"


def fmt_percent(ratio) -> str:
    return "—" if _missing(ratio) else f"{ratio * 100:.1f}%"


def percent_column(label: str, help: str | None = None):
    """A table column of ratios (0.123) shown like ``fmt_percent`` (12.3%); scale the
    column with ``in_percent`` first."""
    return st.column_config.NumberColumn(label, format="%.1f%%", help=help)


def in_percent(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` with the ratio ``columns`` in percent, for ``percent_column``."""
    return frame.assign(**{column: frame[column] * 100 for column in columns})


def fmt_points(ratio_change) -> str:
    """A change of a ratio, in percentage points."""
    return f"{ratio_change * 100:.1f} pp"


def fmt_rating(value) -> str:
    return "—" if _missing(value) else f"{value:.2f} ★"


def fmt_stars(rating: int) -> str:
    """A 1..5 rating as stars with the number, e.g. ``★★★★☆ 4/5`` (the number is for screen readers)."""
    return "★" * rating + "☆" * (5 - rating) + f" {rating}/5"


def fmt_datetime(timestamp, tz: str, date_only: bool = False) -> str:
    """A UTC instant in the display timezone, e.g. ``08 Jul 2026, 23:27``; a dash when missing."""
    if timestamp is None or pd.isna(timestamp):
        return "—"
    return pd.Timestamp(timestamp).tz_convert(tz).strftime("%d %b %Y" if date_only else "%d %b %Y, %H:%M")


def fmt_duration(minutes) -> str:
    """A length of time for people: ``3d 4h``, ``2h 05m``, ``45m`` or ``30s``; a dash when missing."""
    if _missing(minutes):
        return "—"
    total = abs(minutes)
    if total < 1:
        return f"{round(total * 60)}s"
    total = int(total)
    days, hours, mins = total // 1440, total % 1440 // 60, total % 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins:02d}m" if hours else f"{mins}m"


def plural(count: int, noun: str) -> str:
    """``1 review``, ``2 reviews``, ``1,234 reviews``."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


# --- scope: what every number covers ------------------------------------------------

NOW = "now"  # a snapshot: what is true at this moment, whatever the period
ALL_TIME = "all time"  # every row ever, whatever the period


def scope_text(scope: Period | str) -> str:
    """A number's scope as its tile says it: "in the last 30 days", "today", "in 01 Mar 2024 –
    10 Mar 2024", "now" or "all time" (a Period, ``NOW``, ``ALL_TIME`` or words of your own)."""
    return scope.scope if isinstance(scope, Period) else scope


def _sentence(text: str) -> str:
    """``text`` with its first letter in capitals (and nothing else changed)."""
    return text[:1].upper() + text[1:]


_SCOPE_ICONS = {NOW: ":material/schedule:", ALL_TIME: ":material/history:"}


def scope_caption(scope: Period | str, note: str | None = None) -> None:
    """One line under numbers or a table saying what they cover: the period (its days and
    timezone), ``NOW`` or ``ALL_TIME`` (both say the sidebar's period does not apply).
    ``note`` (Markdown) follows it."""
    if isinstance(scope, Period):
        text = f":material/date_range: {_sentence(scope_text(scope))}"
        if scope.preset != "custom":
            text += f": {scope.span}"
        text += f" ({scope.tz})."
    else:
        text = f"{_SCOPE_ICONS.get(scope, ':material/info:')} {_sentence(scope)}, whatever the period in the sidebar."
    st.caption(text + (f" {note}" if note else ""))


def code_label(code: str) -> str:
    """A stored code such as ``paid_search`` as people read it: "Paid search"."""
    return code.replace("_", " ").capitalize()


def specialty_label(specialty: str) -> str:
    return "HVAC" if specialty == "hvac" else code_label(specialty)


def change(current, previous, fmt: Callable[[float], str]) -> str | None:
    """The signed change from ``previous`` to ``current`` for ``st.metric``,
    formatted with ``fmt``; None when either side is missing."""
    if _missing(current) or _missing(previous):
        return None
    diff = current - previous
    if diff == 0:
        return NO_CHANGE
    return ("+" if diff > 0 else "-") + fmt(abs(diff))


# --- layout ------------------------------------------------------------------------


def page_header(title: str, purpose: str) -> None:
    """The page title and one sentence on what the page is for."""
    st.title(title, anchor=False)
    st.caption(purpose)


@dataclass(frozen=True)
class Kpi:
    label: str
    value: str
    delta: str | None = None  # from change(); None hides it
    help: str | None = None
    lower_is_better: bool = False
    scope: Period | str | None = None  # what the value covers (``scope_text``), shown under the label


KPIS_PER_ROW = 4  # more would cut values short at 1280 px


def _metric(kpi, border: bool) -> None:
    flat = kpi.delta == NO_CHANGE
    st.metric(
        kpi.label,
        kpi.value,
        kpi.delta,
        help=kpi.help,
        border=border,
        height="stretch" if border else "content",
        delta_color="off" if flat else ("inverse" if kpi.lower_is_better else "normal"),
        delta_arrow="off" if flat else "auto",
    )


def _scope_line(scope: Period | str) -> None:
    icon = _SCOPE_ICONS.get(scope, ":material/date_range:") if isinstance(scope, str) else ":material/date_range:"
    st.caption(f"{icon} {_sentence(scope_text(scope))}")


def kpi_row(kpis: Sequence[Kpi]) -> None:
    """KPIs side by side, each with its change against the previous period and, when given, its
    scope on a line of its own; more than ``KPIS_PER_ROW`` go on balanced rows of one grid
    (five: three, then two)."""
    rows = math.ceil(len(kpis) / KPIS_PER_ROW)
    per_row = math.ceil(len(kpis) / rows)
    columns = [column for _ in range(rows) for column in st.columns(per_row)]
    for column, kpi in zip(columns, kpis):
        if kpi.scope is None:
            with column:
                _metric(kpi, border=True)
            continue
        with column.container(border=True, height="stretch", gap="small"):
            _metric(kpi, border=False)
            _scope_line(kpi.scope)


PAGES_DIR = Path(__file__).resolve().parents[2] / "pages"


@dataclass(frozen=True)
class HomeTile:
    """A tile of a role's home: a figure, what it covers, what needs doing about it now, and
    the link to the page behind it, filtered (``page`` under pages/, ``query_params`` per the
    page's link contract in docs/ui.md)."""

    label: str
    value: str
    scope: Period | str  # what the value covers (``scope_text``)
    todo: str  # one short sentence (Markdown): what needs doing now
    page: str
    link: str  # the link's words, e.g. "Open the queue"
    query_params: dict[str, str] = field(default_factory=dict)
    tone: str = "neutral"  # a key of TONES: "bad" when something is late, "good" when all is done
    delta: str | None = None
    lower_is_better: bool = False
    help: str | None = None


TILES_PER_ROW = 3  # a tile holds a sentence and a link too: four would cut "$12,380.88" short at 1280 px


def home_tiles(tiles: Sequence[HomeTile]) -> None:
    """Tiles side by side on balanced rows of at most ``TILES_PER_ROW`` (four: two and two), each
    a bordered card: the figure, its scope, one sentence on what to do, and one link that opens
    the page behind it."""
    rows = math.ceil(len(tiles) / TILES_PER_ROW)
    per_row = math.ceil(len(tiles) / rows) if rows else 0
    for start in range(0, len(tiles), per_row or 1):
        row = tiles[start : start + per_row]
        for column, tile in zip(st.columns(len(row)), row):
            with column.container(border=True, height="stretch", gap="small"):
                _metric(tile, border=False)
                _scope_line(tile.scope)
                color, icon = TONES[tile.tone]
                st.markdown(f":{color}[{icon}] {tile.todo}" if icon else tile.todo)
                st.page_link(
                    PAGES_DIR / tile.page,
                    label=tile.link,
                    icon=":material/arrow_forward:",
                    query_params=tile.query_params or None,
                )


def comparison_caption(period: Period) -> None:
    """Under a KPI row: which days the values cover and what the changes compare with."""
    scope = _sentence(scope_text(period))
    days = f"{period.span}, " if period.preset != "custom" else ""
    st.caption(
        f":material/date_range: {scope} ({days}{plural(period.days, 'day')}, {period.tz}); "
        f"changes compare with {period.previous().span}."
    )


def tabbed(views: dict[str, Callable[[], None]], *, key: str, on_change: Callable | None = None) -> None:
    """Tabs (label -> what draws it) that build only the open one: a hidden tab's queries, charts
    and widgets cost nothing. Picking a tab reruns the page (in a ``fragment``: that part), after
    ``on_change`` if given; ``st.session_state[key]`` is the open tab's label (set it before the
    tabs are drawn to open another)."""
    tabs = st.tabs(list(views), key=key, on_change=on_change or "rerun")
    for tab, draw in zip(tabs, views.values()):
        if tab.open:
            with tab:
                draw()


@contextlib.contextmanager
def pager(page: Page, noun: str, turn: Callable[[int], None], key: str):
    """A row with the page's range ("21–40 of 29,775 reviews") and Previous/Next page, which call
    ``turn`` with the page number; what the caller draws inside goes on the same row."""
    with st.container(horizontal=True, vertical_alignment="center", key=key):
        st.markdown(f"**{page.range_text(noun)}**", width="content")
        st.button(
            "Previous page",
            icon=":material/chevron_left:",
            disabled=not page.has_previous,
            on_click=turn,
            args=(page.number - 1,),
        )
        st.button(
            "Next page",
            icon=":material/chevron_right:",
            icon_position="right",
            disabled=not page.has_next,
            on_click=turn,
            args=(page.number + 1,),
        )
        yield


def filter_bar():
    """A row of filters that wraps onto a second line on narrow screens; give each widget a ``width``."""
    return st.container(horizontal=True, vertical_alignment="bottom", gap="medium")


# Tone -> (badge colour, default icon). The badge always says its state in words too.
TONES = {
    "good": ("green", ":material/check_circle:"),
    "warning": ("orange", ":material/schedule:"),
    "bad": ("red", ":material/error:"),
    "info": ("blue", ":material/info:"),
    "neutral": ("gray", None),
}


def badge(text: str, color: str, icon: str | None = None) -> str:
    """A badge as Markdown (``text`` escaped), what ``st.badge`` draws: put several side by side with
    ``badges``, one element however many there are (a badge each costs the browser a lot more to draw)."""
    return f":{color}-badge[{f'{icon} ' if icon else ''}{escape_markdown(text)}]"


def status(text: str, tone: str = "neutral", icon: str | None = None) -> str:
    """A state as a coloured badge that also says it in words (``text`` is escaped), for ``badges``."""
    color, default_icon = TONES[tone]
    return badge(text, color, icon or default_icon)


def badges(parts: Iterable[str]) -> None:
    """Badges (``badge``, ``status``) side by side on one line; nothing when there are none."""
    line = "\u2003".join(parts)  # an em space apart: the gap they had each in a row of their own
    if line:
        st.markdown(line)


def status_badge(text: str, tone: str = "neutral", icon: str | None = None) -> None:
    """A state as a coloured badge that also says it in words (``text`` is escaped)."""
    badges([status(text, tone, icon)])


def specialty_badges(specialties: Iterable[str]) -> None:
    """A mechanic's specialties as badges, in one row."""
    badges(badge(specialty_label(specialty), "blue", ":material/build:") for specialty in specialties)


_REVIEW_STYLE = """<style>
.pw-review { white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.55; margin: 0.25rem 0; }
.pw-review mark { background: #FDE68A; color: inherit; padding: 0 0.15em; border-radius: 0.2em; }
.pw-review mark.flag-personal_data, .pw-review mark.flag-profanity { background: #FECACA; }
</style>"""


def review_styles() -> None:
    """The look of ``review_text``, once on a page of reviews (not once in each: every style sheet
    added makes the browser restyle the page)."""
    st.html(_REVIEW_STYLE)


def review_text(markup: str) -> None:
    """A review's text, already escaped into safe HTML (``dashboard.domain.reviews.highlight_html``),
    drawn as ``review_styles`` says."""
    st.html(f'<div class="pw-review">{markup}</div>')


def confirm(
    label: str,
    question: str,
    confirm_label: str,
    on_confirm: Callable,
    args: tuple = (),
    *,
    key: str,
    icon: str | None = None,
    disabled: bool = False,
    inputs: Callable[[], object] | None = None,
    open_key: str | None = None,
) -> None:
    """A destructive action in two clicks: ``label`` opens a popover that says what will
    happen (``question``, Markdown), draws ``inputs()`` if given (e.g. a reason), and holds
    the button ``key`` that calls ``on_confirm(*args)``. With ``open_key`` (the popover's
    key: ``True`` in the session while open) the popover's content is built only while it
    is open, which saves the server its widgets on every rerun of a page with many of them."""
    popover = st.popover(label, icon=icon, disabled=disabled, key=open_key, on_change="rerun" if open_key else "ignore")
    with popover:
        if open_key and not popover.open:
            return
        st.markdown(question)
        if inputs:
            inputs()
        st.button(confirm_label, key=key, icon=icon, on_click=on_confirm, args=args)


def empty_state(what: str, action: str) -> None:
    """Nothing to show: what that means, and the one thing to do about it (Markdown)."""
    st.info(f"**{what}**  \n{action}", icon=":material/inbox:")


def error_state(title: str, detail: str, checks: Sequence[str] = ()) -> None:
    """Something is wrong: what (``detail`` is shown as plain text) and what to check."""
    st.error(f"**{title}**  \n{escape_markdown(detail)}", icon=":material/error:")
    if checks:
        st.markdown("**What to check**\n" + "\n".join(f"- {check}" for check in checks))


# Axis formats (d3) that read like the fmt_* helpers: ``"count"`` 2,560; ``"money"`` $1,234 (whole
# dollars; $1.50 below $10) of values in dollars, not cents; ``"percent"`` 12% of ratios (0.12);
# ``"date"`` 08 Jul 2026. HOVER has the matching hover formats, for hovertemplates:
# ``"%{y:" + ui.HOVER["money"] + "}"`` shows $1,234.50 like fmt_money.
HOVER = {"count": ",", "money": "$,.2f", "percent": ".1%", "date": "%d %b %Y", "rating": ".2f"}
AXIS_FORMATS = ("count", "money", "percent", "date", "rating")


def _axis_format(kind: str, values: Sequence) -> dict:
    if kind not in AXIS_FORMATS:
        raise ValueError(f"axis format must be one of {', '.join(AXIS_FORMATS)}, not {kind!r}")
    if kind == "date":
        return dict(tickformat="%d %b %Y", hoverformat=HOVER["date"])
    if kind == "percent":
        return dict(tickformat=".0%", hoverformat=HOVER["percent"])
    if kind == "rating":
        return dict(tickformat=".1f", hoverformat=HOVER["rating"])
    if kind == "money":
        largest = max((abs(v) for v in values if isinstance(v, (int, float)) and not _missing(v)), default=0)
        return dict(tickprefix=CURRENCY, tickformat=",.2f" if largest < 10 else ",.0f", hoverformat=",.2f")
    return dict(tickformat=",~f", hoverformat=",")


def _axis_values(fig: go.Figure, axis: str) -> list:
    values = []
    for trace in fig.data:
        data = trace[axis] if axis in trace else None
        if data is not None:
            values.extend(v for v in np.asarray(data, dtype=object).ravel().tolist() if isinstance(v, (int, float)))
    return values


def chart(
    fig: go.Figure | Callable[..., go.Figure],
    *args,
    title: str,
    x_title: str,
    y_title: str,
    x_format: str | None = None,
    y_format: str | None = None,
) -> None:
    """Render a plotly figure in the brand template; axis titles carry units. ``x_format`` and
    ``y_format`` (``AXIS_FORMATS``: count, money, percent, date, rating) format that axis's ticks
    and hover values like the fmt_* helpers; without them numbers still get thousands separators
    and never an SI suffix. The data's text is made inert first (``inert_figure``), so pages pass
    names and labels as they are. Colours follow the viewer's light or dark theme.

    ``fig`` is a figure, or (better) a module-level function that makes it from ``args`` (the
    query's frame, the chart's options; the same args make the same figure, e.g. ``today`` passed
    in rather than read): the finished figure is then made once per distinct args, titles and
    theme, and every rerun and session reuses it (making one costs 50-200 ms)."""
    look = (title, x_title, y_title, x_format, y_format, _dark_theme())
    if isinstance(fig, go.Figure):
        finished = _finish(fig, *look)
    else:
        finished = _finished_chart(f"{fig.__module__}.{fig.__qualname__}", args, look, _build=fig)
    st.plotly_chart(finished, theme=None, config={"displaylogo": False})


def _finish(fig: go.Figure, title, x_title, y_title, x_format, y_format, dark: bool) -> go.Figure:
    """``fig`` in the brand template with its titles and axis formats, its text inert."""
    fig.update_layout(
        template="pitwall", title_text=_inert(title), xaxis_title=_inert(x_title), yaxis_title=_inert(y_title)
    )
    for axis, kind in (("x", x_format), ("y", y_format)):
        if kind is not None:
            fig.update_layout({f"{axis}axis": _axis_format(kind, _axis_values(fig, axis))})
    if dark:
        _in_dark_colours(fig)
    return inert_figure(fig)


class _FinishedFigure(go.Figure):
    """A finished figure that is never changed again: its dict (what st.plotly_chart sends) is
    made once, not on every run that draws it."""

    def __init__(self, fig: go.Figure):
        super().__init__(fig)
        self._spec = super().to_dict()

    def to_dict(self) -> dict:
        spec = getattr(self, "_spec", None)  # None while the constructor runs
        return super().to_dict() if spec is None else spec


@st.cache_resource(ttl=QUERY_TTL_SECONDS, max_entries=256, show_spinner=False)
def _finished_chart(name: str, args: tuple, look: tuple, _build: Callable[..., go.Figure]) -> go.Figure:
    """``_build(*args)`` finished (``_finish``), shared by every run with the same key; ``name``
    (the builder's module and name) keys the builder."""
    return _FinishedFigure(_finish(_build(*args), *look))


def _in_dark_colours(fig: go.Figure) -> None:
    """The figure's brand colours (bars, lines, markers) swapped for their dark-theme peers."""
    fig.update_layout(DARK_CHART)
    dark = dict(zip(BRAND_COLORS, DARK_COLORS))
    for trace in fig.data:
        for part in ("marker", "line"):
            holder = getattr(trace, part, None)
            color = getattr(holder, "color", None) if holder is not None else None
            if isinstance(color, str) and color in dark:
                holder.color = dark[color]


def _dark_theme() -> bool:
    try:
        return st.context.theme.type == "dark"
    except AttributeError:  # outside a browser session (tests), or an older Streamlit
        return False


PARTIAL_OPACITY = 0.45
SO_FAR = "so far"


def mark_partial(fig: go.Figure, buckets: Sequence, grain: str, tz: str, *, today=None) -> bool:
    """Draw the buckets that are not complete yet (``grain`` day, week or month starting on
    ``buckets``, local dates in ``tz``; usually the current one) apart from the complete ones:
    bars lighter and hatched, a line dashed from its last complete point, each with "so far"
    in the hover and a "so far" note over it. ``buckets`` are the x values of the figure's
    traces. Returns True when a bucket was marked (say so in the chart's caption, e.g.
    "The last week is not over: its bar shows it so far.")."""
    partial = {_day(b) for b, flag in zip(buckets, incomplete_buckets(buckets, grain, today or today_in(tz))) if flag}
    if not partial:
        return False
    new_traces = []
    for index, trace in enumerate(fig.data):
        if trace.type not in ("bar", "scatter") or trace.x is None:
            continue
        marks = [_day(x) in partial for x in trace.x]
        if not any(marks):
            continue
        color = _given(trace.marker.color, BRAND_COLORS[index % len(BRAND_COLORS)])
        if trace.type == "bar":
            trace.update(
                marker=dict(
                    color=color,
                    opacity=[PARTIAL_OPACITY if mark else 1.0 for mark in marks],
                    pattern=dict(shape=["/" if mark else "" for mark in marks], fillmode="overlay"),
                )
            )
            continue
        color = _given(trace.line.color, color)
        ys, start = list(trace.y), max(marks.index(True) - 1, 0)
        new_traces.append(
            go.Scatter(
                x=list(trace.x)[start:],
                y=ys[start:],
                mode=trace.mode or "lines",
                name=f"{trace.name} ({SO_FAR})" if trace.name else SO_FAR.capitalize(),
                line=dict(color=color, dash="dash"),
                hovertemplate=trace.hovertemplate,
                xaxis=trace.xaxis,  # on the same axes as the line it continues (e.g. a second y axis)
                yaxis=trace.yaxis,
            )
        )
        trace.update(y=[None if mark else y for y, mark in zip(ys, marks)], line_color=color)
    for trace in new_traces:
        fig.add_trace(trace)
    for bucket in sorted(partial):
        fig.add_annotation(x=bucket, y=1, yref="paper", text=SO_FAR, showarrow=False, yanchor="top", font=dict(size=12))
    return True


def _day(value):
    """A bucket's x value (a date, a timestamp, an ISO string) as a date, to compare buckets."""
    try:
        return pd.Timestamp(value).date()
    except (ValueError, TypeError):
        return value


def _given(color, fallback):
    """A trace's colour when it has one (a colour or a list of them), else ``fallback``."""
    return fallback if color is None else color


# Plotly draws a subset of HTML (<a href>, <b>, <br>, ...) found in labels, hovers, legends and
# tick labels, and shows HTML entities as their characters: escaped, user text reads as typed.
_TRACE_TEXT = ("x", "y", "text", "hovertext", "customdata", "labels", "parents")
_AXIS_TEXT = ("categoryarray", "ticktext")


def _inert(values):
    if isinstance(values, str):
        return html.escape(values, quote=False)
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "OUS":
            return np.vectorize(_inert, otypes=[object])(values) if values.size else values
        return values
    if isinstance(values, (list, tuple)):
        return type(values)(_inert(v) for v in values)
    return values


def inert_figure(fig: go.Figure) -> go.Figure:
    """``fig`` with every text of its data (values, hovers, trace names, category tick labels)
    HTML-escaped, so plotly shows it as text and never as markup or a link."""
    for trace in fig.data:
        updates = {name: _inert(trace[name]) for name in _TRACE_TEXT if name in trace and trace[name] is not None}
        if getattr(trace, "name", None):
            updates["name"] = _inert(trace.name)
        trace.update(updates)
    for axis in (fig.layout[key] for key in fig.layout if key.startswith(("xaxis", "yaxis"))):
        axis.update({name: _inert(axis[name]) for name in _AXIS_TEXT if axis[name] is not None})
    return fig


# --- a notice with Undo (the review queue's decisions) ------------------------------

_UNDO_TOAST_STYLE = """<style>
.st-key-{key} {{
  position: fixed; right: 1.5rem; bottom: 1.5rem; z-index: 999990; width: auto; max-width: 32rem;
  padding: 0.5rem 0.75rem; border-radius: 0.6rem; background: #1F2937; box-shadow: 0 8px 24px rgba(0,0,0,.25);
}}
.st-key-{key} [data-testid="stMarkdown"] p {{ color: #F9FAFB; margin: 0; }}
</style>"""


def undo_toast(message: str, *, key: str, on_undo: Callable | None, on_dismiss: Callable) -> None:
    """A toast that stays until dismissed, with Undo (key U) when ``on_undo`` is given: what a
    write did (``message``, escaped), bottom right over the page, wherever the reader scrolled."""
    st.html(_UNDO_TOAST_STYLE.format(key=key))
    with st.container(horizontal=True, vertical_alignment="center", key=key):
        st.markdown(f":material/check_circle: {escape_markdown(message)}", width="content")
        if on_undo is not None:
            st.button("Undo", key=f"{key}_undo", icon=":material/undo:", shortcut="U", on_click=on_undo)
        st.button("Dismiss", key=f"{key}_dismiss", icon=":material/close:", on_click=on_dismiss)
