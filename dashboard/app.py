"""Pitwall's entry point: ``streamlit run dashboard/app.py``.

Every run goes: settings -> who is using the app -> database ready -> menu of
the role's pages, identity and period in the sidebar -> the chosen page.
Whatever stops a run before the page (unusable settings, sign-in needed,
refused access, database down or not migrated) is shown as a page of its own
that says what is wrong and what to check, and as one line on stderr; never
as a traceback.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from streamlit.navigation.page import StreamlitPage  # noqa: E402

from dashboard.core.auth import Actor, role_for_email  # noqa: E402
from dashboard.core.db import DatabaseUnavailable, check_connection, explain_failure  # noqa: E402
from dashboard.core.migrate import current_revision, head_revision  # noqa: E402
from dashboard.core.period import (  # noqa: E402
    CUSTOM,
    EARLIEST,
    PRESETS,
    RANGE_SEPARATOR,
    Period,
    format_range,
    latest_allowed,
    parse_range,
    period_from_params,
    preset_range,
    timezones,
    today_in,
)
from dashboard.core.settings import ConfigError, Settings, load_settings  # noqa: E402
from dashboard.ui import access  # noqa: E402
from dashboard.ui import components as ui  # noqa: E402

PAGES_DIR = ROOT / "pages"
LOGO = Path(__file__).resolve().parent / "ui" / "assets" / "logo.svg"
SETTINGS_HELP = "See `.streamlit/secrets.toml.example` for every setting and where it can be set."


def stop_with_error(title: str, detail: str, checks: list[str]) -> None:
    print(f"pitwall: {title}: {detail}", file=sys.stderr)
    ui.error_state(title, detail, checks)
    st.button("Try again", type="primary", icon=":material/refresh:")  # a click reruns the app
    st.stop()


def settings_or_stop() -> Settings:
    """Every setting, read once a run; pages take them from the context (``ui.settings()``)."""
    try:
        return load_settings()
    except ConfigError as exc:
        stop_with_error(
            "Pitwall's settings are not usable",
            str(exc),
            [
                "The environment variable or the `.streamlit/secrets.toml` key named above (the environment wins).",
                SETTINGS_HELP,
            ],
        )


# --- who is using the app ----------------------------------------------------------


def sign_in_page() -> None:
    ui.page_header("Pitwall", "The staff console of the remote-mechanic marketplace.")
    st.write("Sign in with your work account to continue.")
    if st.button("Sign in", type="primary", icon=":material/login:"):
        st.login()
    st.stop()


def anonymous_refused_page(settings: Settings) -> None:
    print(
        "pitwall: refusing anonymous use of a non-demo database (configure [auth] or allow anonymous use)",
        file=sys.stderr,
    )
    ui.page_header("Sign-in required", "Pitwall shows no data from a real database to someone it does not know.")
    # Nothing of the database URL (host, user, name) is shown to someone who is not signed in.
    st.warning(
        f"Pitwall is set up for a database other than the embedded demo (in the {settings.source}), "
        "and staff sign-in is not configured.",
        icon=":material/lock:",
    )
    st.markdown(
        "Choose one of the two ways in:\n\n"
        "1. **Configure staff sign-in** (recommended): add an `[auth]` section for your OpenID Connect "
        "provider to `.streamlit/secrets.toml` and list the staff emails with their role in the "
        "`staff_roles` table.\n"
        "2. **Allow anonymous use** on a trusted network only: set `PITWALL_ALLOW_ANONYMOUS=true`, or "
        "`allow_anonymous = true` under `[pitwall]` in `.streamlit/secrets.toml`. Everyone who can open "
        "the app then acts as an admin.\n\n" + SETTINGS_HELP
    )
    st.stop()


def no_access_page(email: str, verified: bool = True) -> None:
    ui.page_header("No access", "Pitwall is open to the marketplace's staff only.")
    if verified:
        st.warning(f"**{ui.escape_markdown(email)}** is not on the staff list.", icon=":material/block:")
        st.write(
            "Ask an admin to add your email to the `staff_roles` table with the role admin, support or "
            "manager, then sign in again."
        )
    else:
        st.warning(
            f"Your sign-in provider has not verified **{ui.escape_markdown(email)}**, and Pitwall gives "
            "staff access to verified addresses only.",
            icon=":material/block:",
        )
        st.write("Verify the address with your provider (or sign in with your work account), then sign in again.")
    if st.button("Sign out", icon=":material/logout:"):
        st.logout()
    st.stop()


# --- the database ------------------------------------------------------------------


class DemoLoad:
    """The first-run load of the embedded demo, in a thread of its own: how far it has got."""

    def __init__(self) -> None:
        self.share, self.stage = 0.0, "Starting"
        self.error: BaseException | None = None
        self.done = threading.Event()

    def tell(self, share: float, stage: str) -> None:
        self.share, self.stage = share, stage


@st.cache_resource(show_spinner=False)
def prepare_embedded(url: str, scale: float) -> DemoLoad:
    """Migrate the embedded database and fill it with demo data if it is empty, once per server,
    in the background: the page shows its progress meanwhile instead of a blank spinner."""
    from dashboard.tools.demo.load import load_if_empty

    load = DemoLoad()

    def run() -> None:
        try:
            load_if_empty(ui.engine_for(url), scale=scale, progress=False, on_progress=load.tell)
        except BaseException as exc:  # shown on the page; a click on "Try again" starts over
            load.error = exc
        finally:
            load.done.set()

    threading.Thread(target=run, name="pitwall-demo-load", daemon=True).start()
    return load


def demo_ready_or_wait(settings: Settings) -> None:
    """Until the demo data is in, a page with a progress bar that follows the load (redrawn twice a
    second); then the same run goes on to the page asked for. A rerun instead would come back to the
    home page: the page a link asked for is only known once the navigation is built."""
    load = prepare_embedded(settings.database_url, settings.demo_scale)
    if not load.done.wait(timeout=0.5):
        waiting = st.empty()
        while not load.done.wait(timeout=0.5):
            with waiting.container():
                ui.page_header(
                    "Preparing the demo", "Pitwall fills its embedded database with demo data on the first start."
                )
                st.progress(load.share, text=f"{load.stage}…")
                st.caption("This takes a few seconds at the default size; the console opens by itself when it is done.")
        waiting.empty()
    if load.error is not None:
        prepare_embedded.clear()
        detail = explain_failure(load.error, settings.database_url)
        stop_with_error("The demo database could not be prepared", detail, database_checks(settings))


@st.cache_resource(show_spinner=False)
def migrated_revision(url: str) -> str:
    """The database's revision once it is the one this code needs (not cached while it is not)."""
    head = head_revision()
    current = current_revision(ui.engine_for(url))
    if current != head:
        raise ConfigError(
            f"The database is at revision {current or 'none (not migrated)'}; "
            f"this version of Pitwall needs revision {head}."
        )
    return current


def database_or_stop(settings: Settings) -> None:
    if settings.embedded:  # first: nothing else may touch the file while the demo loads
        demo_ready_or_wait(settings)
    urls = [settings.database_url] + ([settings.read_url] if settings.read_url else [])
    try:
        for url in urls:
            check_connection(ui.engine_for(url))
    except DatabaseUnavailable as exc:
        stop_with_error("The database is not available", str(exc), database_checks(settings))
    if settings.embedded:
        return
    try:
        migrated_revision(settings.database_url)
    except ConfigError as exc:
        stop_with_error(
            "The database needs migrating",
            str(exc),
            [
                "Run `python -m dashboard migrate` against this database (it is safe to run again).",
            ],
        )


def write_failure_notice() -> None:
    """Say once that the change clicked last was not saved because the database did not answer."""
    detail = ui.write_failure()
    if detail:
        ui.error_state(
            "Your change was not saved",
            detail,
            ["Once the database answers again, check the page and make the change again."],
        )


def database_checks(settings: Settings) -> list[str]:
    if settings.embedded:
        return [
            "Only one process can open the embedded DuckDB file: stop other Pitwall apps or jobs using it.",
            "`PITWALL_DUCKDB_PATH` points at a folder you can write to.",
        ]
    return [
        "The database server is running and reachable from this machine.",
        f"The URL in `DATABASE_URL` or `[connections.sql] url` (source: {settings.source}). {SETTINGS_HELP}",
    ]


def actor_or_stop(settings: Settings) -> Actor:
    claimed = st.user.get("email") or ""
    email = access.verified_email(st.user)
    if claimed and email is None:
        no_access_page(claimed, verified=False)
    with ui.engine_for(settings.query_url).connect() as conn:
        role = role_for_email(conn, email) if email else None
    actor = access.staff_actor(email or "", role, st.user.get("name"))
    if actor is None:
        no_access_page(email or "Your account (the sign-in gave no email)")
    return actor


# --- sidebar -----------------------------------------------------------------------


def navigation(role: str) -> StreamlitPage:
    sections = {
        area: [
            st.Page(PAGES_DIR / page.file, title=page.title, icon=page.icon, default=page.file == "overview.py")
            for page in pages
        ]
        for area, pages in access.pages_for_role(role).items()
    }
    return st.navigation(sections)


def identity_sidebar(actor: Actor, login: bool) -> None:
    with st.sidebar:
        if access.is_demo(actor):
            st.badge(f"Demo {actor.role}", icon=":material/science:", color="orange")
            st.caption("Embedded demo data; nothing here is real.")
        elif actor == access.ANONYMOUS_ADMIN:
            st.badge("Anonymous admin", icon=":material/warning:", color="red")
            st.caption("Anonymous use is allowed by configuration.")
        else:
            st.markdown(f"**{ui.escape_markdown(actor.name or actor.email)}** · {actor.role}")
            st.caption(ui.escape_markdown(actor.email))
        if login and st.button("Sign out", icon=":material/logout:"):
            st.logout()


PERIOD_KEY = "_pitwall_period"  # the last valid period: what the pages show while a choice is not valid


def _show_range(start, end) -> None:
    """Put two days in both date widgets (from a callback, before they are drawn)."""
    st.session_state.update(filter_dates=format_range(start, end), filter_calendar=(start, end))


def _preset_chosen() -> None:
    """A preset replaces the dates at once ("Custom" keeps them for editing); after a timezone
    change, a preset's days follow that timezone's today."""
    state = st.session_state
    if state.filter_preset != CUSTOM:
        _show_range(*preset_range(state.filter_preset, today_in(state.filter_tz)))


def _custom_unless_preset(start, end) -> None:
    state = st.session_state
    if state.filter_preset != CUSTOM and (start, end) != preset_range(state.filter_preset, today_in(state.filter_tz)):
        state.filter_preset = CUSTOM


def _dates_typed() -> None:
    """Typed dates (applied on Enter) make the period custom, unless they are the preset's days."""
    state = st.session_state
    chosen, _ = parse_range(state.filter_dates, today_in(state.filter_tz))
    if chosen:
        state.filter_calendar = chosen
        _custom_unless_preset(*chosen)


def _calendar_picked() -> None:
    """Days picked on the calendar go into the text field; one day picked waits for the second."""
    state = st.session_state
    picked = tuple(day for day in state.filter_calendar or () if day is not None)
    if len(picked) == 2:
        state.filter_dates = format_range(*picked)
        _custom_unless_preset(*picked)
    else:
        state.filter_dates = f"{picked[0].isoformat()}{RANGE_SEPARATOR}" if picked else ""


def period_control() -> Period:
    """The period picker in the sidebar: a preset, the days (typed, applied on Enter, or picked on
    a calendar) and the display timezone. On a session's first run it starts from the link's
    ``preset``, ``from``, ``to`` and ``tz``.

    Days that are not a usable period yet (one day picked, the end before the start, a typo,
    too long) are explained under the field, and the pages keep the last valid period meanwhile."""
    state = st.session_state
    if PERIOD_KEY not in state:
        period, notices = period_from_params(st.query_params.to_dict())
        state.update({PERIOD_KEY: period, "filter_preset": period.preset, "filter_tz": period.tz})
        _show_range(period.start, period.end)
        for notice in notices:
            st.warning(ui.escape_markdown(notice), icon=":material/link_off:")
    elif any(key not in state for key in ("filter_preset", "filter_dates", "filter_tz")):
        # A run that stopped before the sidebar (the database down) drops the widgets' state:
        # they start again from the period last applied.
        kept = state[PERIOD_KEY]
        state.update({"filter_preset": kept.preset, "filter_tz": kept.tz})
        _show_range(kept.start, kept.end)
    today = today_in(state.filter_tz)
    if state.filter_preset != CUSTOM:  # a relative period moves on at midnight, also in an open session
        shown, _ = parse_range(state.filter_dates, today)
        if shown and shown != preset_range(state.filter_preset, today):
            _show_range(*preset_range(state.filter_preset, today))
    with st.sidebar:
        st.selectbox("Period", list(PRESETS), format_func=PRESETS.get, key="filter_preset", on_change=_preset_chosen)
        with st.container(horizontal=True, vertical_alignment="bottom", gap="small"):
            st.text_input(
                "Days",
                key="filter_dates",
                on_change=_dates_typed,
                max_chars=60,
                placeholder="YYYY-MM-DD – YYYY-MM-DD",
                help="Type the first and the last day and press Enter, or pick them on the calendar.",
            )
            with st.popover("", icon=":material/calendar_month:", help="Pick the days on a calendar"):
                st.date_input(
                    "First and last day",
                    key="filter_calendar",
                    min_value=EARLIEST,
                    max_value=latest_allowed(today),
                    format="YYYY-MM-DD",
                    on_change=_calendar_picked,
                )
        chosen, problem = parse_range(state.filter_dates, today)
        if problem:
            st.warning(f"**Not applied.** {problem} Showing {state[PERIOD_KEY].span}.", icon=":material/date_range:")
        tz = st.selectbox(
            "Display timezone",
            timezones(),
            key="filter_tz",
            on_change=_preset_chosen,
            help="Days start at midnight in this timezone, and times are shown in it.",
        )
    kept = state[PERIOD_KEY]
    start, end = chosen or (kept.start, kept.end)
    preset = state.filter_preset if chosen else kept.preset
    state[PERIOD_KEY] = Period(start, end, tz, preset)
    return state[PERIOD_KEY]


def period_in_url(period: Period) -> Period:
    """Write the period to the URL so the view can be shared (only when it changed)."""
    params = period.to_params()
    stale = [key for key in ("preset",) if key not in params and key in st.query_params]
    if stale or any(st.query_params.get(key) != value for key, value in params.items()):
        for key in stale:
            del st.query_params[key]
        st.query_params.update(params)
    return period


def main() -> None:
    st.set_page_config(page_title="Pitwall", page_icon=":material/build:", layout="wide")
    st.logo(LOGO)
    settings = settings_or_stop()
    login = access.login_configured(settings)
    if login and not st.user.get("is_logged_in"):
        sign_in_page()
    actor = None if login else access.actor_without_login(settings)
    if not login and actor is None:
        anonymous_refused_page(settings)
    write_failure_notice()
    ui.show_toasts()
    database_or_stop(settings)
    if login:
        actor = actor_or_stop(settings)
    page = navigation(actor.role)
    period = period_in_url(period_control())  # first under the menu, so its messages stay in view
    identity_sidebar(actor, login)
    ui.set_context(ui.Context(settings=settings, actor=actor, period=period))
    try:
        page.run()
    except ui.UNREACHABLE_ERRORS as exc:  # also from pages that read on a connection of their own
        stop_with_error(
            "The database stopped answering", explain_failure(exc, settings.database_url), database_checks(settings)
        )


main()
