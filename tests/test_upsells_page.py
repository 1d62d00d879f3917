"""The Upsells page with streamlit's AppTest on the customers of ``upsell_db``
(tests/upsells_scenario.py), on both databases: performance numbers, the catalogue form (saved
and audited, refused when invalid), read-only use."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from dashboard.core import schema as s
from dashboard.core.auth import Actor
from dashboard.core.period import Period
from dashboard.domain.upsells import refresh_recommendations
from dashboard.ui import components as ui
from queries import upsells as q
from tests.factories import HOSTILE, add_mechanic, staff_fixture
from tests.page_support import open_any_page
from tests.upsells_scenario import ADMIN, NOW, SUPPORT, S

staff = staff_fixture(ADMIN, SUPPORT)

PAGE = Path(__file__).resolve().parents[1] / "pages" / "upsells.py"
PERIOD = Period(dt.date(2024, 5, 1), dt.date(2024, 6, 30), "UTC")


@pytest.fixture
def sold(upsell_db, monkeypatch, tmp_path):
    monkeypatch.setenv("PITWALL_SECRETS", str(tmp_path / "absent.toml"))
    ui.clear_query_cache()
    refresh_recommendations(upsell_db, now=NOW)  # 8 recommendations shown on 1 June
    rec = s.upsell_recommendations
    with upsell_db.begin() as conn:  # P1 clicks and buys the $19 follow-up
        conn.execute(
            rec.update()
            .where(rec.c.session_id == S["s1"])
            .values(clicked_at=NOW + dt.timedelta(hours=1), purchased_at=NOW + dt.timedelta(hours=2))
        )
    return upsell_db


def open_page(engine, actor: Actor = ADMIN, tab: str | None = None) -> AppTest:
    """The page as ``actor`` sees it, on its first tab or on ``tab`` (what a click on it sets)."""
    at = open_any_page(engine, PERIOD, actor, PAGE)
    if tab is not None:
        at.session_state["upsell_tab"] = tab
        at.run()
        assert not at.exception, at.exception
    return at


def test_performance_by_hand(sold):
    with sold.connect() as conn:
        by_type = q.performance(conn, period=PERIOD).set_index("recommendation_type")
        weeks = q.trend(conn, period=PERIOD)
    # 8 from the engine plus P5's open follow-up shown on 20 May
    assert by_type.shown.to_dict() == {"follow_up": 4, "maintenance_plan": 2, "premium_upgrade": 3}
    assert by_type.loc["follow_up", ["clicked", "purchased", "revenue_cents"]].tolist() == [1, 1, 1900]
    assert by_type.loc["follow_up", "revenue_per_shown"] == pytest.approx(1900 / 4)
    assert weeks.shown.sum() == 9 and weeks.set_index("bucket").loc[dt.date(2024, 5, 27), "shown"] == 8
    at = open_page(sold)
    assert [t.value for t in at.title] == ["Upsells"]
    assert {m.label: m.value for m in at.metric} == {
        "Shown": "9",
        "Click rate": "11.1%",
        "Conversion": "11.1%",
        "Revenue": "$19.00",
        "Revenue per shown": "$2.11",
    }
    by_type = at.dataframe[0].value
    assert by_type.shown.sum() == 9
    assert sorted(by_type.recommendation_type) == ["Follow-up session", "Maintenance plan", "Premium upgrade"]
    assert len(at.dataframe) == 1 and not at.info  # the other tabs are built only when opened
    assert "There are no mechanics yet" in open_page(sold, tab="By mechanic").info[0].value


def test_admin_adds_a_service_from_the_form(sold):
    at = open_page(sold, tab="Catalogue (now)")
    at.text_input(key="service_title_new").input("Repair check call")
    at.number_input(key="service_price_new").set_value(29.5)
    at.button(key="FormSubmitter:service_new-Save").click().run()
    assert not at.exception and not at.error
    svc = s.upsell_services
    with sold.connect() as conn:
        row = conn.execute(sa.select(svc).where(svc.c.title == "Repair check call")).mappings().one()
        audits = conn.execute(sa.select(s.audit_log.c.action)).scalars().all()
    assert (row["price_cents"], row["is_active"], row["updated_by"]) == (2950, True, ADMIN.email)
    assert sorted(audits) == ["upsell_service.create", "upsell_service.update"]
    assert "Repair check call" in at.dataframe[-1].value.title.tolist()


def test_an_invalid_service_is_refused_with_its_reason(sold):
    at = open_page(sold, tab="Catalogue (now)")
    at.text_input(key="service_title_new").input("No price")
    at.button(key="FormSubmitter:service_new-Save").click().run()
    assert "Price is required" in at.error[0].value
    with sold.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.audit_log)).scalar_one() == 0


def test_support_reads_the_catalogue_without_editing(sold):
    at = open_page(sold, SUPPORT, tab="Catalogue (now)")
    assert not at.get("form") and "Follow-up call" in at.dataframe[-1].value.title.tolist()


def test_the_leaderboard_lists_every_mechanic_with_a_link_to_the_profile(sold):
    with sold.begin() as conn:
        ann = add_mechanic(conn, "Ann Wrench")
        quiet = [add_mechanic(conn, f"Quiet {n}") for n in range(3)]
        add_mechanic(conn, "Gone", is_active=False)  # inactive, nothing shown: left out
        conn.execute(s.sessions.update().where(s.sessions.c.id == S["s1"]).values(mechanic_id=ann))
    with sold.connect() as conn:
        listed = q.by_mechanic(conn, period=PERIOD)
    assert listed.display_name.tolist() == ["Ann Wrench", "Quiet 0", "Quiet 1", "Quiet 2"]
    assert listed.revenue_cents.tolist() == [1900, 0, 0, 0] and listed.conversion.isna().tolist()[1:] == [True] * 3
    at = open_page(sold, tab="By mechanic")
    board = at.dataframe[0].value
    assert board.mechanic.tolist() == [f"mechanics?mechanic={ann}#Ann Wrench"] + [
        f"mechanics?mechanic={m}#Quiet {n}" for n, m in enumerate(quiet)
    ]
    assert board.revenue.tolist() == [19.0, 0.0, 0.0, 0.0] and board.shown.tolist() == [1, 0, 0, 0]
    assert any("All 4 mechanics" in c.value and "01 May 2024 – 30 Jun 2024" in c.value for c in at.caption)


def test_each_service_is_previewed_as_the_customers_card_and_stays_text(sold):
    with sold.begin() as conn:
        conn.execute(
            s.upsell_services.update()
            .where(s.upsell_services.c.recommendation_type == "premium_upgrade")
            .values(title=HOSTILE[0][:80], description="<img src=x onerror=alert(1)> **big** [x](http://evil.test)")
        )
    at = open_page(sold, tab="Catalogue (now)")
    catalogue = at.dataframe[-1].value
    assert set(catalogue.recommendation_type) == {"Follow-up session", "Maintenance plan", "Premium upgrade"}
    calls = [
        re.search(r">([^<]*)</div>", h.proto.body).group(1) for h in at.get("html") if "pw-card-call" in h.proto.body
    ]
    assert len(calls) == len(catalogue)  # one card per service, each with the button the customer taps
    assert set(calls) == {"Book the follow-up", "Start the plan", "Upgrade now"}
    assert set(catalogue.updated_by) <= {"Database upgrade", "—"}  # who changed it, not "migration 16"
    texts = [m.value for m in at.markdown if "-badge[" not in m.value]  # the badges are the page's own
    assert f"**{ui.escape_markdown(HOSTILE[0][:80])}**" in texts  # the title, escaped: drawn as typed
    assert ui.escape_markdown("<img src=x onerror=alert(1)> **big** [x](http://evil.test)") in texts
    assert not [text for text in texts if re.search(r"(?<!\\)[<\[]", text)]  # no markup left unescaped
    assert "### $9.99" in texts and "### $19.00" in texts


def test_overview_and_upsells_show_the_same_revenue(sold):
    """One definition: the upsells bought in the period, whenever they were shown. $19 (P1, bought
    on 1 June) + $15 (shown in April, bought on 10 May); the $20 shown in June and bought in July
    is outside the period, so the cohort's $39 ($19 + $20) is not the revenue."""
    rec = s.upsell_recommendations
    with sold.begin() as conn:
        customer = conn.execute(sa.select(rec.c.customer_id).where(rec.c.session_id == S["s1"])).scalar()
        for cents, shown, bought in (
            (1500, dt.datetime(2024, 4, 20, tzinfo=dt.UTC), dt.datetime(2024, 5, 10, tzinfo=dt.UTC)),
            (2000, dt.datetime(2024, 6, 20, tzinfo=dt.UTC), dt.datetime(2024, 7, 5, tzinfo=dt.UTC)),
        ):
            conn.execute(
                rec.insert().values(
                    customer_id=customer,
                    recommendation_type="maintenance_plan",
                    service_title="Plan",
                    price_cents=cents,
                    shown_at=shown,
                    purchased_at=bought,
                )
            )
    with sold.connect() as conn:  # the admin home's tile shows this function's figure (tests/test_overview.py)
        assert q.revenue(conn, period=PERIOD).loc["current", "revenue_cents"] == 3400
    upsells = open_page(sold)
    assert {m.label: m.value for m in upsells.metric}["Revenue"] == "$34.00"
