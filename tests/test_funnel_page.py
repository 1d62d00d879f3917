"""The CRM funnel page with streamlit's AppTest on the hand-built funnel (``crm_db``, tests/funnel_scenario.py),
on both databases: the numbers, each tab, bad input, the roll-up button, the CSV."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.core import schema as s
from dashboard.core.auth import Actor, PermissionDenied
from dashboard.core.period import Period
from dashboard.domain.funnel.rollups import refresh
from dashboard.ui import components as ui
from tests.factories import staff_fixture
from tests.funnel_scenario import NY, C, utc
from tests.page_support import open_any_page

PAGE = Path(__file__).resolve().parents[1] / "pages" / "funnel.py"
ADMIN = Actor("ada@pitwall.test", "admin", "Ada Admin")
staff = staff_fixture(ADMIN)


def open_page(engine, period: Period = NY, actor: Actor = ADMIN) -> AppTest:
    return open_any_page(engine, period, actor, PAGE)


@pytest.fixture
def page_db(crm_db, monkeypatch, tmp_path):
    monkeypatch.setenv("PITWALL_SECRETS", str(tmp_path / "absent.toml"))
    ui.clear_query_cache()  # PostgreSQL tests share one database URL, and with it the query cache
    return crm_db


def captions(at) -> str:
    return "\n".join(caption.value for caption in at.caption)


def metrics(at) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def test_the_funnel_by_hand(page_db):
    at = open_page(page_db)
    assert [t.value for t in at.title] == ["CRM funnel"]
    assert metrics(at) == {"Entered": "8", "Converted": "1", "Conversion": "12.5%", "Biggest drop": "50.0% lost"}
    steps = at.dataframe[0].value
    assert steps.customers.tolist() == [8, 6, 3, 2, 1]
    assert steps["median"].tolist() == ["—", "1d 0h", "0s", "1d 10h", "0s"]
    assert steps["previous"].tolist() == ["—", "75.0%", "50.0%", "66.7%", "50.0%"]
    assert "until these figures are first refreshed" in captions(at)
    assert "roll-up" not in captions(at).lower()  # no internals in the copy
    assert [t.label for t in at.tabs] == ["Breakdown", "Time to convert", "Trend", "Drop-off list"]
    assert len(at.get("plotly_chart")) == 2  # the funnel and the open tab's breakdown: hidden tabs are not built
    breakdown = at.dataframe[1].value
    assert breakdown.intake.sum() == 8 and "(other)" not in breakdown.group.tolist()
    assert sorted(breakdown.group.tolist()) == ["Premium", "Standard", "Unknown"]  # labels, not the stored codes


def open_tab(at: AppTest, label: str) -> AppTest:
    at.session_state["funnel_tab"] = label  # what a click on the tab sets
    at.run()
    assert not at.exception
    return at


def test_tabs_follow_their_controls(page_db):
    at = open_page(page_db)
    at.selectbox(key="funnel_breakdown").set_value("specialty")
    at.slider(key="funnel_top_n").set_value(2)
    at.run()
    assert not at.exception
    assert at.dataframe[1].value.group.tolist() == ["No session", "Unknown", "Other"]

    open_tab(at, "Trend").segmented_control(key="funnel_grain").set_value("day").run()
    assert not at.exception and not at.dataframe[1:]  # the breakdown's table is not built while hidden
    trend = json.loads(at.get("plotly_chart")[1].proto.spec)["data"][0]
    assert len(trend["x"]) > 1  # entries by day

    open_tab(at, "Drop-off list").selectbox(key="funnel_drop_step").set_value(2).run()
    assert not at.exception
    drop = at.dataframe[1].value
    assert sorted(drop.email) == ["c@example.com", "e@example.com", "j@example.com"]
    assert str(drop.reached_at.dt.tz) == "America/New_York"
    by_email = drop.set_index("email")
    assert by_email.loc["c@example.com", ["plan", "acquisition_channel"]].tolist() == ["Standard", "Paid search"]
    assert by_email.loc["j@example.com", ["plan", "acquisition_channel"]].tolist() == ["—", "—"]  # no profile
    assert by_email.loc["c@example.com", "customer"] == f"customers?customer={C['C']}#Customer C"  # a link
    assert [b.label for b in at.get("download_button")] == ["Download (CSV)"]


def test_a_funnel_without_a_roll_up_and_bad_steps(page_db):
    at = open_page(page_db)
    at.multiselect(key="funnel_steps").set_value(["intake", "purchase"]).run()
    assert metrics(at)["Converted"] == "2"  # A and J bought
    assert "Counted from every interaction for these steps" in captions(at)
    assert not at.button  # nothing to refresh
    at.multiselect(key="funnel_steps").set_value(["intake"]).run()
    assert not at.exception
    assert "Choose 2 to 6 steps" in at.warning[0].value
    assert not at.metric and not at.get("plotly_chart")


def test_empty_period(page_db):
    at = open_page(page_db, Period(dt.date(2023, 1, 1), dt.date(2023, 1, 31), "UTC"))
    assert "No customer started the funnel with “Intake request” in this period" in at.info[0].value
    assert not at.metric


def test_the_admin_refreshes_the_roll_up(page_db):
    at = open_page(page_db)
    at.button[0].click().run()
    assert not at.exception
    assert "Figures as of" in captions(at)
    assert metrics(at)["Entered"] == "8"
    with page_db.connect() as conn:
        audit = conn.execute(sa.select(s.audit_log.c.action, s.audit_log.c.actor_email)).all()
    assert audit == [("funnel_rollup.refresh", ADMIN.email)]
    with pytest.raises(PermissionDenied):
        refresh(page_db, actor=Actor("sam@pitwall.test", "support"))


def test_a_vehicle_make_with_markup_is_drawn_as_text(page_db):
    with page_db.begin() as conn:  # D's latest request before entry now names a "make" with a link
        conn.execute(
            s.requests.insert().values(
                customer_id=C["D"], created_at=utc(2024, 1, 2), vehicle_make='<a href="https://evil.example">Ford</a>'
            )
        )
    at = open_page(page_db)
    at.selectbox(key="funnel_breakdown").set_value("vehicle_make").run()
    assert not at.exception
    assert '<a href="https://evil.example">Ford</a>' in at.dataframe[1].value.group.tolist()  # tables show text
    drawn = [json.dumps(json.loads(chart.proto.spec)["data"]) for chart in at.get("plotly_chart")]
    assert not [data for data in drawn if "<a href" in data]
    assert any('&lt;a href=\\"https://evil.example\\"&gt;Ford&lt;/a&gt;' in data for data in drawn)


@pytest.fixture
def downloads(monkeypatch):
    """The download buttons a page draws: file name -> the function that makes the file."""
    made = {}
    draw = st.download_button

    def recording(label, data, *args, **kwargs):
        made[kwargs.get("file_name")] = data
        return draw(label, data, *args, **kwargs)

    monkeypatch.setattr(st, "download_button", recording)
    return made


def test_the_drop_off_file_has_names_labels_and_times_to_the_second(page_db, downloads):
    at = open_tab(open_page(page_db), "Drop-off list")
    at.selectbox(key="funnel_drop_step").set_value(4).run()
    assert not at.exception
    (csv,) = [make for name, make in downloads.items() if name.startswith("drop-off-step-4-")]
    # B entered with the intake of 4 March 09:00 UTC and clicked on 8 March 09:00 UTC (EST, UTC-5)
    assert csv().decode().splitlines() == [
        "Name,Email,Plan,Channel,Entered (America/New_York),Reached the step (America/New_York)",
        'Customer B,b@example.com,Standard,Paid search,"04 Mar 2024, 04:00:00","08 Mar 2024, 04:00:00"',
    ]
