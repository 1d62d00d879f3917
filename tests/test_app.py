"""The app shell: pages per role, who may use the app, the database gate and the
period filter, with streamlit's AppTest against real databases."""

import datetime as dt
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from dashboard.core.db import make_engine
from dashboard.core.period import (
    DEFAULT_DAYS,
    Period,
    default_period,
    incomplete_buckets,
    parse_range,
    period_from_params,
    period_problem,
    preset_period,
    preset_range,
)
from dashboard.core.schema import audit_log, staff_roles
from dashboard.core.settings import ConfigError, load_settings
from dashboard.tools.demo.load import load_if_empty
from dashboard.ui import access
from dashboard.ui import components as ui
from tests.factories import HOSTILE, add_mechanic, add_session, add_user

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
DEMO_SCALE = "0.02"
SUPPORT_PAGES = [
    "Overview",
    "Review moderation",
    "Follow-ups",
    "Customer lookup",
    "Mechanic profiles",
    "Mechanic calendars & pricing",
]


def titles(role: str) -> list[str]:
    return [page.title for pages in access.pages_for_role(role).values() for page in pages]


def text(elements) -> str:
    """The elements' Markdown with escapes (and the word joiners that keep addresses unlinked) removed."""
    return re.sub(r"\\(.)", r"\1", "\n".join(str(element.value) for element in elements)).replace("\u2060", "")


def run_app(query: dict | None = None, user: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.query_params.update(query or {})
    if user is not None:
        at.user = user
    return at.run()


def url_of(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


# --- pure functions ----------------------------------------------------------------


def test_pages_per_role():
    assert titles("admin") == [page.title for page in access.PAGES]
    assert titles("support") == SUPPORT_PAGES
    assert titles("manager") == ["Overview", "Mechanic profiles", "Mechanic calendars & pricing"]
    assert list(access.pages_for_role("manager")) == ["", "Support", "Operations"]
    assert all((ROOT / "pages" / page.file).is_file() for page in access.PAGES)


def test_who_uses_the_app_without_login(tmp_path):
    def settings(secrets: str = "", **env):
        path = tmp_path / "secrets.toml"
        path.write_text(secrets)
        return load_settings(env={"PITWALL_SECRETS": str(path), **env})

    postgres = {"DATABASE_URL": "postgresql://db.example.com/platform"}
    assert access.actor_without_login(settings()) == access.DEMO_ADMIN
    assert access.actor_without_login(settings(**postgres)) is None
    assert access.actor_without_login(settings(**postgres, PITWALL_ALLOW_ANONYMOUS="true")) == access.ANONYMOUS_ADMIN
    assert access.actor_without_login(settings("[pitwall]\nallow_anonymous = true\n", **postgres)).role == "admin"
    # demo_role picks the demo's role on the embedded database only; elsewhere it is ignored
    assert access.actor_without_login(settings(PITWALL_DEMO_ROLE="support")) == access.demo_actor("support")
    assert access.actor_without_login(settings('[pitwall]\ndemo_role = "manager"\n')).role == "manager"
    assert access.actor_without_login(settings(**postgres, PITWALL_DEMO_ROLE="support")) is None
    assert (
        access.actor_without_login(settings(**postgres, PITWALL_DEMO_ROLE="manager", PITWALL_ALLOW_ANONYMOUS="true"))
        == access.ANONYMOUS_ADMIN
    )
    assert (
        access.actor_without_login(
            settings(
                '[pitwall]\ndemo_role = "support"\n[connections.sql]\nurl = "postgresql://db.example.com/platform"\n'
            )
        )
        is None
    )
    with pytest.raises(ConfigError, match="PITWALL_DEMO_ROLE must be one of"):
        settings(PITWALL_DEMO_ROLE="owner")
    assert not access.login_configured(settings())
    assert access.login_configured(settings('[auth]\nclient_id = "x"\n'))
    assert access.staff_actor(" Sam@Example.com ", "support").email == "sam@example.com"
    assert access.staff_actor("who@example.com", None) is None


def test_period_from_a_link():
    today = dt.date(2024, 6, 30)
    assert period_from_params({}, today) == (default_period("UTC", today), [])
    assert default_period("UTC", today) == Period(dt.date(2024, 6, 1), today, "UTC")
    shared = {"from": "2024-03-01", "to": "2024-03-10", "tz": "Europe/Berlin"}
    assert period_from_params(shared, today) == (Period(dt.date(2024, 3, 1), dt.date(2024, 3, 10), "Europe/Berlin"), [])

    period, notices = period_from_params({"from": "2024-03-10", "to": "2024-03-01", "tz": "Mars/Olympus"}, today)
    assert period == default_period("UTC", today)
    assert "not an IANA timezone" in notices[0] and "before the start date" in notices[1]
    for bad in (
        {"from": "yesterday", "to": "2024-03-01"},
        {"from": "2024-03-01"},
        {"from": "1999-01-01", "to": "1999-01-02"},
        {"from": "2023-01-01", "to": "2024-06-30"},
    ):
        period, notices = period_from_params(bad, today)
        assert period == default_period("UTC", today) and f"the last {DEFAULT_DAYS} days instead" in notices[0]


def test_presets_count_whole_days_up_to_today():
    today = dt.date(2024, 3, 15)
    assert preset_range("today", today) == (today, today)
    assert preset_range("last_7_days", today) == (dt.date(2024, 3, 9), today)
    assert preset_range("last_30_days", today) == (dt.date(2024, 2, 15), today)  # 2024 is a leap year
    assert preset_range("last_90_days", today) == (dt.date(2023, 12, 17), today)
    assert preset_range("this_month", today) == (dt.date(2024, 3, 1), today)
    assert preset_range("last_month", today) == (dt.date(2024, 2, 1), dt.date(2024, 2, 29))  # leap day included
    # month boundaries: the first of a month, January, a 31-day month before a 30-day one
    assert preset_range("this_month", dt.date(2024, 3, 1)) == (dt.date(2024, 3, 1), dt.date(2024, 3, 1))
    assert preset_range("last_month", dt.date(2024, 1, 10)) == (dt.date(2023, 12, 1), dt.date(2023, 12, 31))
    assert preset_range("last_month", dt.date(2023, 3, 31)) == (dt.date(2023, 2, 1), dt.date(2023, 2, 28))
    assert preset_range("last_month", dt.date(2024, 5, 31)) == (dt.date(2024, 4, 1), dt.date(2024, 4, 30))
    assert preset_range("last_7_days", dt.date(2024, 3, 3)) == (dt.date(2024, 2, 26), dt.date(2024, 3, 3))
    with pytest.raises(ValueError, match="not a relative preset"):
        preset_range("custom", today)


def test_a_preset_counts_days_in_its_timezone():
    # 23:30 on 31 March in UTC is already 1 April in Tokyo and still 31 March in New York.
    instant = dt.datetime(2024, 3, 31, 23, 30, tzinfo=dt.UTC)
    tokyo = instant.astimezone(dt.timezone(dt.timedelta(hours=9))).date()
    assert preset_period("this_month", "Asia/Tokyo", tokyo) == Period(
        dt.date(2024, 4, 1), dt.date(2024, 4, 1), "Asia/Tokyo"
    )
    assert preset_period("last_month", "Asia/Tokyo", tokyo).span == "01 Mar 2024 – 31 Mar 2024"
    period = preset_period("today", "America/New_York", dt.date(2024, 3, 10))  # the day clocks go forward
    assert period.bounds() == (
        dt.datetime(2024, 3, 10, 5, tzinfo=dt.UTC),
        dt.datetime(2024, 3, 11, 4, tzinfo=dt.UTC),  # a 23-hour day
    )
    assert period.label == "today" and period.preset == "today"


def test_a_period_says_its_scope():
    today = dt.date(2024, 6, 30)
    assert default_period("UTC", today).label == "the last 30 days"
    assert preset_period("this_month", "UTC", today).label == "this month"
    assert preset_period("last_month", "UTC", today).label == "May 2024"
    assert ui.scope_text(preset_period("today", "UTC", today)) == "today"  # not "in today"
    assert ui.scope_text(preset_period("last_month", "UTC", today)) == "in May 2024"
    custom = Period(dt.date(2024, 3, 1), dt.date(2024, 3, 10), "UTC")
    assert custom.label == "01 Mar 2024 – 10 Mar 2024"
    assert Period(dt.date(2024, 3, 1), dt.date(2024, 3, 1)).label == "01 Mar 2024"
    assert ui.scope_text(custom) == "in 01 Mar 2024 – 10 Mar 2024"
    assert ui.scope_text(default_period("UTC", today)) == "in the last 30 days"
    assert ui.scope_text(ui.NOW) == "now" and ui.scope_text(ui.ALL_TIME) == "all time"
    # how a period was chosen is not part of what it is: the same days share cached results
    assert preset_period("last_30_days", "UTC", today) == Period(dt.date(2024, 6, 1), today, "UTC")
    assert custom.includes_today(dt.date(2024, 3, 10)) and not custom.includes_today(dt.date(2024, 3, 11))


def test_a_link_keeps_a_preset_relative():
    today = dt.date(2024, 6, 30)
    link = default_period("UTC", dt.date(2024, 5, 1)).to_params()  # made on 1 May
    assert link == {"from": "2024-04-02", "to": "2024-05-01", "tz": "UTC", "preset": "last_30_days"}
    period, notices = period_from_params(link, today)  # opened on 30 June: still the last 30 days
    assert (period, period.preset, notices) == (default_period("UTC", today), "last_30_days", [])
    fixed = {"from": "2024-03-01", "to": "2024-03-10", "tz": "UTC", "preset": "custom"}
    assert period_from_params(fixed, today)[0] == Period(dt.date(2024, 3, 1), dt.date(2024, 3, 10), "UTC")
    period, notices = period_from_params({**fixed, "preset": "<b>fortnight</b>"}, today)
    assert period == Period(dt.date(2024, 3, 1), dt.date(2024, 3, 10), "UTC")
    assert "not one of the choices: using its dates" in notices[0]


def test_a_hostile_link_falls_back_with_a_short_notice():
    today = dt.date(2024, 6, 30)
    for hostile in ("x" * 10_000, "<script>alert(1)</script>", "last_30_days'; DROP TABLE users; --", "\x00"):
        period, notices = period_from_params(
            {"preset": hostile, "from": hostile, "to": "9" * 400, "tz": hostile}, today
        )
        assert period == default_period("UTC", today)
        assert len(notices) == 3 and all(len(notice) < 200 for notice in notices), notices


def test_typed_days_are_read_or_explained():
    today = dt.date(2024, 6, 30)
    march = (dt.date(2024, 3, 1), dt.date(2024, 3, 10))
    for typed in (
        "2024-03-01 – 2024-03-10",
        "2024-03-01 to 2024-03-10",
        " 2024/3/1 - 2024/03/10 ",
        "2024-03-01..2024-03-10",
    ):
        assert parse_range(typed, today) == (march, None), typed
    assert parse_range("2024-02-29", today) == ((dt.date(2024, 2, 29), dt.date(2024, 2, 29)), None)  # one day
    problems = {
        "2024-03-01 –": "Type the last day too",
        "– 2024-03-10": "Type the first day too",
        "2023-02-29 – 2023-03-01": "2023-02-29 is not a date",
        "2024-03-10 – 2024-03-01": "before the start date",
        "2023-01-01 – 2024-06-30": "the longest is 366 days",
        "1999-12-31 – 2000-01-02": "Dates must lie between 01 Jan 2000",
        "99999999-01-01 – 2024-01-01": "Type the first and the last day",
        "last week": "Type the first and the last day",
        "2024-03-01 – 2024-03-10'; DROP TABLE sessions; --": "Type the first and the last day",
        "2024-03-01\x00 – 2024-03-10": "Type the first and the last day",
        "": "Type the first and the last day",
    }
    for typed, problem in problems.items():
        chosen, message = parse_range(typed, today)
        assert chosen is None and problem in message, typed


def test_incomplete_buckets_are_the_ones_not_over_yet():
    today = dt.date(2024, 3, 13)  # a Wednesday
    days = [dt.date(2024, 3, 12), dt.date(2024, 3, 13)]
    assert incomplete_buckets(days, "day", today) == [False, True]
    weeks = [dt.date(2024, 3, 4), dt.date(2024, 3, 11)]
    assert incomplete_buckets(weeks, "week", today) == [False, True]
    assert incomplete_buckets(weeks, "week", dt.date(2024, 3, 18)) == [False, False]  # the Monday after
    months = [dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1)]
    assert incomplete_buckets(months, "month", dt.date(2024, 2, 29)) == [False, True, True]
    assert incomplete_buckets(months, "month", dt.date(2024, 3, 1)) == [False, False, True]


def test_charts_format_axes_like_the_tiles():
    import plotly.express as px

    frame = {"day": [dt.date(2024, 3, d) for d in (1, 2, 3)], "cents": [125_000, 253_611_00, 2_560_00]}
    fig = px.bar(x=frame["day"], y=[c / 100 for c in frame["cents"]])
    ui.chart(fig, title="Revenue", x_title="Day (UTC)", y_title="Revenue ($)", x_format="date", y_format="money")
    assert (fig.layout.yaxis.tickprefix, fig.layout.yaxis.tickformat) == ("$", ",.0f")  # $253,611
    assert fig.layout.yaxis.hoverformat == ",.2f" and fig.layout.xaxis.tickformat == "%d %b %Y"
    small = px.line(x=[1, 2], y=[1.5, 2.5])
    ui.chart(small, title="t", x_title="x", y_title="y ($)", y_format="money")
    assert small.layout.yaxis.tickformat == ",.2f"  # $1.50, not $2
    share = px.line(x=[1, 2], y=[0.123, 0.5])
    ui.chart(share, title="t", x_title="x", y_title="Share (%)", y_format="percent")
    assert (share.layout.yaxis.tickformat, share.layout.yaxis.hoverformat) == (".0%", ui.HOVER["percent"])
    count = px.bar(x=[1, 2], y=[2560, 253611])
    ui.chart(count, title="t", x_title="x", y_title="Sessions (count)", y_format="count")
    assert count.layout.yaxis.tickformat == ",~f"  # 253,611: never 253.611k
    template = count.layout.template.layout.yaxis
    assert (template.separatethousands, template.exponentformat) == (True, "none")  # also without a format
    with pytest.raises(ValueError, match="axis format must be one of"):
        ui.chart(px.bar(x=[1], y=[1]), title="t", x_title="x", y_title="y", y_format="dollars")


def test_a_chart_from_a_builder_is_made_once_per_data_and_stays_inert(monkeypatch):
    import pandas as pd
    import plotly.express as px

    made, sent = [], []

    def bars(frame, today):
        made.append(today)
        fig = px.bar(frame, x="value", y="group")
        ui.mark_partial(fig, [today], "day", "UTC", today=today)
        return fig

    monkeypatch.setattr(ui.st, "plotly_chart", lambda fig, **options: sent.append(fig))
    ui._finished_chart.clear()
    frame = pd.DataFrame({"group": [HOSTILE[0], "B&B"], "value": [1, 2_560]})
    today = dt.date(2024, 3, 13)
    for _ in range(2):  # a rerun with the same data reuses the finished figure
        ui.chart(bars, frame, today, title="By <b>make</b>", x_title="Sessions", y_title="Make", x_format="count")
    ui.chart(bars, frame.assign(value=[3, 4]), today, title="By <b>make</b>", x_title="Sessions", y_title="Make")
    assert made == [today, today] and sent[0] is sent[1] and sent[2] is not sent[0]
    spec = sent[0].to_dict()
    assert list(spec["data"][0]["y"]) == ['&lt;a href="https://evil.example/a"&gt;Ford&lt;/a&gt;', "B&amp;B"]
    assert spec["layout"]["title"]["text"] == "By &lt;b&gt;make&lt;/b&gt;"
    assert spec["layout"]["xaxis"]["tickformat"] == ",~f" and spec["layout"]["xaxis"]["title"]["text"] == "Sessions"
    assert [a["text"] for a in spec["layout"]["annotations"]] == ["so far"]


def test_the_bucket_not_over_yet_is_drawn_as_so_far():
    import plotly.express as px

    weeks = [dt.date(2024, 3, 4), dt.date(2024, 3, 11)]
    bars = px.bar(x=weeks, y=[100, 11])
    assert ui.mark_partial(bars, weeks, "week", "UTC", today=dt.date(2024, 3, 13))
    marker = bars.data[0].marker
    assert list(marker.opacity) == [1.0, ui.PARTIAL_OPACITY] and list(marker.pattern.shape) == ["", "/"]
    assert [a.text for a in bars.layout.annotations] == ["so far"]
    line = px.line(x=weeks, y=[1.0, 0.2])
    line.data[0].name = "SLA met"
    assert ui.mark_partial(line, weeks, "week", "UTC", today=dt.date(2024, 3, 13))
    solid, dashed = line.data
    assert list(solid.y) == [1.0, None] and (list(dashed.y), dashed.line.dash) == ([1.0, 0.2], "dash")
    assert dashed.name == "SLA met (so far)"
    stacked = px.bar(x=[weeks[0], weeks[0], weeks[1]], y=[5, 3, 2], color=["sent", "failed", "sent"])
    assert ui.mark_partial(stacked, weeks, "week", "UTC", today=dt.date(2024, 3, 13))  # "failed": no bar this week
    sent, failed = stacked.data
    assert list(sent.marker.opacity) == [1.0, ui.PARTIAL_OPACITY] and failed.marker.opacity is None
    twin = px.bar(x=weeks, y=[100, 11])
    twin.add_scatter(x=weeks, y=[4.0, 2.0], yaxis="y2", name="Median hours")
    ui.mark_partial(twin, weeks, "week", "UTC", today=dt.date(2024, 3, 13))
    assert twin.data[-1].yaxis == "y2"  # the dashed part stays on the axis of the line it continues
    done = px.bar(x=weeks, y=[100, 90])
    assert not ui.mark_partial(done, weeks, "week", "UTC", today=dt.date(2024, 3, 18))
    assert not done.layout.annotations


def test_period_problems():
    assert period_problem(dt.date(2024, 1, 1), dt.date(2024, 1, 1)) is None
    assert "before the start" in period_problem(dt.date(2024, 1, 2), dt.date(2024, 1, 1))
    assert "the longest is 366 days" in period_problem(dt.date(2023, 1, 1), dt.date(2024, 1, 2))


# --- the app -----------------------------------------------------------------------


@pytest.fixture
def app_env(monkeypatch, tmp_path):
    """An environment with no database and no secrets configured."""
    for name in (
        "DATABASE_URL",
        "DATABASE_READ_URL",
        "PITWALL_DUCKDB_PATH",
        "PITWALL_DEMO_SCALE",
        "PITWALL_ALLOW_ANONYMOUS",
        "PITWALL_DEMO_ROLE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PITWALL_SECRETS", str(tmp_path / "absent-secrets.toml"))
    return monkeypatch


@pytest.fixture(scope="module")
def demo_path(tmp_path_factory):
    """One embedded demo database for the module, with a session of its own that ended an hour
    ago on top of the demo, so the overview has a completed session in the default period
    whatever the day's demo holds."""
    path = tmp_path_factory.mktemp("demo") / "pitwall.duckdb"
    engine = make_engine(f"duckdb:///{path}")
    load_if_empty(engine, scale=float(DEMO_SCALE), progress=False)
    ended = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with engine.begin() as conn:
        add_session(conn, add_user(conn), add_mechanic(conn), ended_at=ended, started_at=ended - dt.timedelta(hours=1))
    engine.dispose()
    return path


@pytest.fixture
def demo_app(app_env, demo_path):
    app_env.setenv("PITWALL_DUCKDB_PATH", str(demo_path))
    app_env.setenv("PITWALL_DEMO_SCALE", DEMO_SCALE)
    return app_env


def test_every_page_runs_on_demo_data_as_the_demo_admin(demo_app):
    at = run_app()
    assert not at.exception
    assert "Demo admin" in text(at.sidebar.markdown)
    for page in access.PAGES:
        at.switch_page(f"../pages/{page.file}").run()
        assert not at.exception, page.file
        assert [title.value for title in at.title] == [page.title]
    at.switch_page("../pages/overview.py").run()
    labels = [metric.label for metric in at.metric]
    assert labels == [
        "Intake → session",
        "Upsell revenue",
        "Emails failed",
        "Emails uncertain",
        "Sessions completed",
        "Average rating",
    ]  # the admin's home tiles, then the period's headline numbers
    assert len(at.get("plotly_chart")) == 1  # sessions completed in the last 30 days, one of them ours


def test_demo_role_runs_the_demo_as_that_role(demo_app):
    demo_app.setenv("PITWALL_DEMO_ROLE", "manager")
    at = run_app()
    assert not at.exception
    assert "Demo manager" in text(at.sidebar.markdown)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("../pages/funnel.py")
    at.switch_page("../pages/calendars.py").run()
    assert [title.value for title in at.title] == ["Mechanic calendars & pricing"]


def test_demo_role_is_ignored_on_another_database(app_env, pg_engine):
    app_env.setenv("DATABASE_URL", url_of(pg_engine))
    app_env.setenv("PITWALL_ALLOW_ANONYMOUS", "true")
    app_env.setenv("PITWALL_DEMO_ROLE", "support")
    at = run_app()
    assert not at.exception
    assert "Anonymous admin" in text(at.sidebar.markdown)
    at.switch_page("../pages/funnel.py").run()  # an admin page: the demo role did not apply
    assert [title.value for title in at.title] == ["CRM funnel"]


def refresh_the_rollup(at: AppTest) -> AppTest:
    at.switch_page("../pages/funnel.py").run()
    return next(b for b in at.button if b.label == "Refresh the figures").click().run()


def last_audit_actor(url: str) -> tuple:
    with ui.engine_for(url).connect() as conn:  # the app's own engine: DuckDB allows one process
        return tuple(
            conn.execute(
                sa.select(audit_log.c.actor_email, audit_log.c.actor_role)
                .order_by(audit_log.c.created_at.desc())
                .limit(1)
            ).one()
        )


def test_the_demo_admin_writes_on_the_embedded_demo_without_a_staff_row(demo_app, demo_path):
    at = refresh_the_rollup(run_app())
    assert not at.exception and not at.error
    assert last_audit_actor(f"duckdb:///{demo_path}") == ("admin@pitwall.demo", "admin")


def test_the_anonymous_admin_writes_where_anonymous_use_is_allowed(app_env, pg_engine):
    app_env.setenv("DATABASE_URL", url_of(pg_engine))
    app_env.setenv("PITWALL_ALLOW_ANONYMOUS", "true")
    at = refresh_the_rollup(run_app())
    assert not at.exception and not at.error
    assert last_audit_actor(url_of(pg_engine)) == ("anonymous@pitwall.local", "admin")


def test_period_round_trips_through_the_url(demo_app):
    at = run_app({"from": "2024-03-01", "to": "2024-03-10", "tz": "Europe/Berlin"})
    assert at.selectbox(key="filter_preset").value == "custom"
    assert at.text_input(key="filter_dates").value == "2024-03-01 – 2024-03-10"
    assert at.date_input(key="filter_calendar").value == (dt.date(2024, 3, 1), dt.date(2024, 3, 10))
    assert at.selectbox(key="filter_tz").value == "Europe/Berlin"
    assert not at.warning
    at.text_input(key="filter_dates").input("2024-02-01 – 2024-03-10").run()  # typed, then Enter
    at.selectbox(key="filter_tz").set_value("Asia/Tokyo").run()
    assert at.query_params == {"from": "2024-02-01", "to": "2024-03-10", "tz": "Asia/Tokyo"}
    assert "In 01 Feb 2024 – 10 Mar 2024 (39 days, Asia/Tokyo)" in text(at.caption)


def test_a_preset_applies_at_once_and_stays_relative_in_the_url(demo_app):
    at = run_app({"from": "2024-03-01", "to": "2024-03-10", "tz": "UTC"})
    at.selectbox(key="filter_preset").set_value("last_7_days").run()
    today = dt.datetime.now(dt.UTC).date()
    week = (today - dt.timedelta(days=6), today)
    assert at.text_input(key="filter_dates").value == f"{week[0]} – {week[1]}"
    assert at.query_params == {"from": str(week[0]), "to": str(week[1]), "tz": "UTC", "preset": "last_7_days"}
    assert "The marketplace in the last 7 days" in [header.value for header in at.subheader]
    # a timezone change moves a relative period to that timezone's today
    at.selectbox(key="filter_tz").set_value("Pacific/Kiritimati").run()  # UTC+14
    kiritimati = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=14)).date()
    assert at.query_params["to"] == str(kiritimati) and at.query_params["preset"] == "last_7_days"
    # a session left open overnight: the relative period moves on to the new today
    at.session_state["filter_dates"] = "2024-01-01 – 2024-01-07"
    at.run()
    assert at.text_input(key="filter_dates").value == f"{kiritimati - dt.timedelta(days=6)} – {kiritimati}"
    # dates picked on the calendar make the period custom; the URL drops the preset
    at.date_input(key="filter_calendar").set_value((dt.date(2024, 1, 1), dt.date(2024, 1, 31))).run()
    assert at.selectbox(key="filter_preset").value == "custom"
    assert at.text_input(key="filter_dates").value == "2024-01-01 – 2024-01-31"
    assert at.query_params == {"from": "2024-01-01", "to": "2024-01-31", "tz": "Pacific/Kiritimati"}


def test_invalid_link_falls_back_to_defaults_with_a_notice(demo_app):
    at = run_app({"from": "2024-03-10", "to": "not-a-date", "tz": "Mars/Olympus"})
    assert not at.exception
    notices = text(at.warning)
    assert "not an IANA timezone" in notices and f"Showing the last {DEFAULT_DAYS} days" in notices
    expected = default_period("UTC")
    assert at.query_params == expected.to_params()
    assert [title.value for title in at.title] == ["Overview"]


@pytest.mark.parametrize(
    "typed, problem",
    [
        ("2024-03-10 – 2024-02-20", "before the start date"),
        ("2024-03-01 –", "Type the last day too"),
        ("2024-02-30 – 2024-03-01", "2024-02-30 is not a date"),
        ("<b>yesterday</b>", "Type the first and the last day"),
    ],
)
def test_an_invalid_range_is_explained_beside_the_control_and_the_page_stays(demo_app, typed, problem):
    at = run_app({"from": "2024-03-01", "to": "2024-03-10", "tz": "UTC"})
    metrics = [(metric.label, metric.value) for metric in at.metric]
    at.text_input(key="filter_dates").input(typed).run()
    assert not at.exception
    assert problem in text(at.sidebar.warning) and "Showing 01 Mar 2024 – 10 Mar 2024" in text(at.sidebar.warning)
    assert not at.main.warning
    assert [title.value for title in at.title] == ["Overview"]  # the page keeps its title and figures
    assert [(metric.label, metric.value) for metric in at.metric] == metrics
    assert at.query_params["from"] == "2024-03-01" and at.query_params["to"] == "2024-03-10"
    at.text_input(key="filter_dates").input("2024-03-02 – 2024-03-10").run()  # corrected
    assert not at.sidebar.warning and at.query_params["from"] == "2024-03-02"


def test_one_day_picked_on_the_calendar_waits_for_the_second(demo_app):
    at = run_app({"from": "2024-03-01", "to": "2024-03-10", "tz": "UTC"})
    at.date_input(key="filter_calendar").set_value((dt.date(2024, 4, 1),)).run()
    assert at.text_input(key="filter_dates").value == "2024-04-01 – "
    assert "Type the last day too" in text(at.sidebar.warning)
    assert at.query_params["from"] == "2024-03-01"
    assert [title.value for title in at.title] == ["Overview"]


def test_postgres_without_login_is_refused(app_env, empty_pg_url):
    app_env.setenv("DATABASE_URL", empty_pg_url)
    at = run_app()
    assert not at.exception
    assert [title.value for title in at.title] == ["Sign-in required"]
    page = text(at.markdown)
    assert "[auth]" in page and "PITWALL_ALLOW_ANONYMOUS=true" in page and "allow_anonymous = true" in page
    assert not at.metric and not at.date_input


def test_sign_in_required_page_shows_nothing_of_the_database_url(app_env, capfd):
    app_env.setenv("DATABASE_URL", "postgresql://dbuser@db-host.internal:5432/payments?password=hunter2")
    at = run_app()
    assert [title.value for title in at.title] == ["Sign-in required"]
    shown = text(at.warning) + text(at.markdown) + text(at.caption) + capfd.readouterr().err
    for part in ("db-host.internal", "dbuser", "payments", "hunter2"):
        assert part not in shown


def test_error_page_and_stderr_hide_a_password_given_as_query_parameter(app_env, capfd):
    app_env.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nowhere?password=hunter2")
    app_env.setenv("PITWALL_ALLOW_ANONYMOUS", "true")
    at = run_app()
    assert "The database is not available" in text(at.error)
    assert "hunter2" not in text(at.error) + text(at.markdown) + capfd.readouterr().err


def test_allow_anonymous_runs_as_a_visible_anonymous_admin(app_env, pg_engine):
    app_env.setenv("DATABASE_URL", url_of(pg_engine))
    app_env.setenv("PITWALL_ALLOW_ANONYMOUS", "true")
    at = run_app()
    assert not at.exception
    assert "Anonymous admin" in text(at.sidebar.markdown)
    assert [title.value for title in at.title] == ["Overview"]
    assert "No sessions were completed" in text(at.info)


def test_unmigrated_database_says_how_to_migrate(app_env, empty_pg_url):
    app_env.setenv("DATABASE_URL", empty_pg_url)
    app_env.setenv("PITWALL_ALLOW_ANONYMOUS", "true")
    at = run_app()
    assert not at.exception
    assert "needs migrating" in text(at.error)
    assert "python -m dashboard migrate" in text(at.markdown)


def test_unreachable_database_shows_the_error_page(app_env, capfd):
    app_env.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nowhere")
    app_env.setenv("PITWALL_ALLOW_ANONYMOUS", "true")
    at = run_app()
    assert not at.exception
    assert "The database is not available" in text(at.error)
    assert "Cannot reach the database at postgresql+psycopg://postgres@127.0.0.1:1/nowhere" in text(at.error)
    assert not at.title
    err = capfd.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("pitwall:")] == [
        f"pitwall: The database is not available: {text(at.error).splitlines()[1]}"
    ]
    assert "Traceback" not in err


@pytest.fixture
def login_app(app_env, pg_engine, oidc_secrets):
    app_env.setenv("DATABASE_URL", url_of(pg_engine))
    with pg_engine.begin() as conn:
        conn.execute(staff_roles.insert().values(email="sam@example.com", role="support", display_name="Sam"))
    return pg_engine


def test_login_asks_to_sign_in_first(login_app):
    at = run_app(user={"is_logged_in": False})
    assert not at.exception
    assert [button.label for button in at.button] == ["Sign in"]
    assert not at.metric


def test_unknown_email_gets_no_access_and_can_sign_out(login_app):
    at = run_app(user={"is_logged_in": True, "email": "stranger@example.com", "email_verified": True})
    assert not at.exception
    assert [title.value for title in at.title] == ["No access"]
    assert "stranger@example.com" in text(at.warning)
    assert [button.label for button in at.button] == ["Sign out"]


def test_an_unverified_email_gets_no_staff_role(login_app):
    at = run_app(user={"is_logged_in": True, "email": "sam@example.com", "email_verified": False})
    assert not at.exception
    assert [title.value for title in at.title] == ["No access"]
    assert "has not verified" in text(at.warning) and not at.sidebar.markdown


def test_staff_sees_the_pages_of_their_role(login_app):
    at = run_app(user={"is_logged_in": True, "email": "Sam@Example.com", "email_verified": True, "name": "Sam Support"})
    assert not at.exception
    assert "**Sam Support** · support" in text(at.sidebar.markdown)
    at.switch_page("../pages/reviews.py").run()
    assert [title.value for title in at.title] == ["Review moderation"]
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("../pages/funnel.py")
    with login_app.begin() as conn:  # revoked access applies on the next run
        conn.execute(sa.delete(staff_roles))
    at.run()
    assert [title.value for title in at.title] == ["No access"]


def test_the_server_skips_a_full_garbage_collection_after_each_run():
    """Streamlit's default ``gc.collect(2)`` after every script run held each answer (and every
    other session) for as long as a full collection over the query caches takes."""
    import tomllib

    config = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
